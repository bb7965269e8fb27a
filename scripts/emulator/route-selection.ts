/**
 * API Gateway's route selection expression, evaluated on a frame as API
 * Gateway's rules state: `$request.body.a.b` or `${request.body.a.b}`
 * variables (several are allowed, with literal text between them, e.g.
 * `${request.body.service}/${request.body.action}`), `\$` for a literal
 * dollar, one pass of evaluation. A frame that is not JSON, lacks a property,
 * or evaluates to a key no route has goes to `$default`.
 */
import { TemplateError } from '../aws-template.js';

export const DEFAULT_ROUTE = '$default';

type Part = { literal: string } | { path: string[] };

const compiled = new Map<string, Part[]>();

/** The expression as literal text and body paths; anything but `request.body` variables is refused by name. */
export function compileSelectionExpression(expression: string): Part[] {
  const cached = compiled.get(expression);
  if (cached) return cached;
  const parts: Part[] = [];
  let literal = '';
  for (let i = 0; i < expression.length; ) {
    if (expression.startsWith('\\$', i)) {
      literal += '$';
      i += 2;
      continue;
    }
    if (expression[i] !== '$') {
      literal += expression[i++];
      continue;
    }
    let variable: string;
    if (expression[i + 1] === '{') {
      const end = expression.indexOf('}', i);
      if (end < 0) throw new TemplateError(`RouteSelectionExpression ${JSON.stringify(expression)}: "\${" without "}"`);
      variable = expression.slice(i + 2, end);
      i = end + 1;
    } else {
      const match = /^[A-Za-z0-9_.]+/.exec(expression.slice(i + 1));
      variable = match?.[0] ?? '';
      i += 1 + variable.length;
    }
    const path = /^request\.body\.(.+)$/.exec(variable)?.[1];
    if (!path) {
      throw new TemplateError(`RouteSelectionExpression ${JSON.stringify(expression)}: the emulator supports $request.body variables only, not "$${variable}"`);
    }
    if (literal) parts.push({ literal });
    literal = '';
    parts.push({ path: path.split('.') });
  }
  if (literal) parts.push({ literal });
  compiled.set(expression, parts);
  return parts;
}

export function selectRoute(expression: string, body: string, routeKeys: ReadonlySet<string>): string {
  const parts = compileSelectionExpression(expression);
  let parsed: unknown;
  if (parts.some((part) => 'path' in part)) {
    try {
      parsed = JSON.parse(body);
    } catch {
      return DEFAULT_ROUTE;
    }
  }
  let key = '';
  for (const part of parts) {
    if ('literal' in part) {
      key += part.literal;
      continue;
    }
    const value = lookup(parsed, part.path);
    if (value === undefined) return DEFAULT_ROUTE;
    key += value;
  }
  return routeKeys.has(key) && !key.startsWith('$') ? key : DEFAULT_ROUTE;
}

function lookup(value: unknown, path: readonly string[]): string | undefined {
  for (const key of path) {
    if (!value || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
}
