/**
 * DynamoDB's own condition keys, as far as a request carries them:
 * dynamodb:LeadingKeys (the partition key values it touches),
 * dynamodb:Attributes (the top-level attribute names it reads or writes,
 * where it names them), dynamodb:Select, dynamodb:ReturnValues and
 * dynamodb:ReturnConsumedCapacity. A key the request does not carry is left
 * out, as AWS leaves it out: a Scan has no leading keys, a read without a
 * projection names no attributes.
 */

type Item = Record<string, unknown>;

/** One table's part of a request: the keys or items it names, and its own parameters. */
export interface TableRequest {
  keys?: Item[];
  items?: Item[];
  input: Record<string, unknown>;
}

export function dynamoConditionKeys(operation: string, request: TableRequest, keyNames: string[] | undefined): Record<string, string[]> {
  const { input } = request;
  const found: Record<string, string[]> = {};
  const partitionKey = keyNames?.[0];
  const leading = new Set<string>();
  if (partitionKey) {
    for (const item of [...(request.keys ?? []), ...(request.items ?? [])]) {
      const value = scalar(item[partitionKey]);
      if (value !== undefined) leading.add(value);
    }
    if (operation === 'Query') {
      const value = queriedPartition(input, partitionKey);
      if (value !== undefined) leading.add(value);
    }
  }
  if (leading.size > 0) found['dynamodb:LeadingKeys'] = [...leading];

  const attributes = attributesOf(operation, request, keyNames ?? []);
  if (attributes.size > 0) found['dynamodb:Attributes'] = [...attributes];
  for (const [parameter, key] of [
    ['Select', 'dynamodb:Select'],
    ['ReturnValues', 'dynamodb:ReturnValues'],
    ['ReturnConsumedCapacity', 'dynamodb:ReturnConsumedCapacity'],
  ] as const) {
    if (typeof input[parameter] === 'string') found[key] = [input[parameter] as string];
  }
  return found;
}

function attributesOf(operation: string, request: TableRequest, keyNames: string[]): Set<string> {
  const { input } = request;
  const names = (input.ExpressionAttributeNames ?? {}) as Record<string, string>;
  const found = new Set<string>();
  for (const item of request.items ?? []) for (const name of Object.keys(item)) found.add(name);
  if (operation === 'UpdateItem') {
    for (const name of keyNames) found.add(name);
    for (const name of Object.keys((input.AttributeUpdates ?? {}) as object)) found.add(name);
    for (const name of topLevelPaths(input.UpdateExpression, names, /\b(?:SET|REMOVE|ADD|DELETE)\b/i)) found.add(name);
  }
  for (const name of topLevelPaths(input.ProjectionExpression, names)) found.add(name);
  for (const name of Array.isArray(input.AttributesToGet) ? (input.AttributesToGet as unknown[]) : []) found.add(String(name));
  return found;
}

/**
 * The first name of each path an expression lists (`#a.b[0], c` gives a and
 * c; `SET x = :v REMOVE y` gives x and y): the first name of each
 * comma-separated part, a value (`:v`) or a function name never being one.
 */
function topLevelPaths(expression: unknown, names: Record<string, string>, clauses?: RegExp): string[] {
  if (typeof expression !== 'string') return [];
  const text = clauses ? expression.replace(new RegExp(clauses.source, 'gi'), ',') : expression;
  const found: string[] = [];
  for (const part of text.split(',')) {
    const token = /(?<![:\w#.])#?[A-Za-z_][\w-]*(?![\w-]*\s*\()/.exec(part)?.[0];
    if (token) found.push(token.startsWith('#') ? (names[token] ?? token) : token);
  }
  return found;
}

/** The partition key value of a Query, from `KeyConditionExpression` (`#pk = :v`) or the older `KeyConditions`. */
function queriedPartition(input: Record<string, unknown>, partitionKey: string): string | undefined {
  const legacy = (input.KeyConditions as Record<string, { AttributeValueList?: unknown[] }> | undefined)?.[partitionKey];
  if (legacy) return scalar(legacy.AttributeValueList?.[0]);
  const expression = input.KeyConditionExpression;
  if (typeof expression !== 'string') return undefined;
  const names = (input.ExpressionAttributeNames ?? {}) as Record<string, string>;
  const values = (input.ExpressionAttributeValues ?? {}) as Record<string, unknown>;
  for (const match of expression.matchAll(/(#?[\w-]+)\s*=\s*(:[\w-]+)|(:[\w-]+)\s*=\s*(#?[\w-]+)/g)) {
    const [name, value] = match[1] ? [match[1], match[2]!] : [match[4]!, match[3]!];
    if ((name.startsWith('#') ? names[name] : name) === partitionKey) return scalar(values[value]);
  }
  return undefined;
}

/** An attribute value's text: S, N or B. */
function scalar(value: unknown): string | undefined {
  const typed = value as { S?: unknown; N?: unknown; B?: unknown } | undefined;
  const text = typed?.S ?? typed?.N ?? typed?.B;
  return typeof text === 'string' ? text : undefined;
}
