/**
 * API Gateway's route selection: `$request.body.a.b` (or `${request.body.a.b}`)
 * is looked up in the frame parsed as JSON; a frame that is not JSON, lacks the
 * property, or names no route goes to `$default`.
 */
export const DEFAULT_ROUTE = '$default';

export function selectRoute(expression: string, body: string, routeKeys: ReadonlySet<string>): string {
  const path = bodyPath(expression);
  if (!path) return DEFAULT_ROUTE;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return DEFAULT_ROUTE;
  }
  for (const key of path) {
    if (!value || typeof value !== 'object' || Array.isArray(value)) return DEFAULT_ROUTE;
    value = (value as Record<string, unknown>)[key];
  }
  const routeKey = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
  return routeKey !== undefined && routeKeys.has(routeKey) && !routeKey.startsWith('$') ? routeKey : DEFAULT_ROUTE;
}

/** ['action'] for `$request.body.action`; undefined for expressions that do not read the body. */
function bodyPath(expression: string): string[] | undefined {
  const match = /^\$\{?request\.body\.([^}]+)\}?$/.exec(expression.trim());
  return match ? match[1]!.split('.') : undefined;
}
