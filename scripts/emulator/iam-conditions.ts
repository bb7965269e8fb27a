/**
 * A statement's Condition block, evaluated as IAM evaluates it: every
 * operator must hold, and within one operator every key; a key holds when
 * the request's value matches any of the policy's values. Keys are
 * case-insensitive, values case-sensitive unless the operator says
 * otherwise. A key the request does not carry makes a condition false,
 * except with a negated operator (StringNotEquals, ArnNotLike, ...), which it
 * makes true; `...IfExists` makes it true whatever the operator, and `Null`
 * asks exactly whether it is there. `ForAnyValue:` holds when some request
 * value matches (never for a missing key), `ForAllValues:` when every one
 * does (always for a missing key).
 */

/** The request's values of each condition key, by lower-cased key name; a key absent here is not in the request. */
export type RequestContext = ReadonlyMap<string, readonly string[]>;

export interface Condition {
  /** As written, for the log: e.g. `ForAllValues:StringLike dynamodb:LeadingKeys`. */
  text: string;
  key: string;
  values: string[];
  test: (context: RequestContext) => boolean;
}

/** An operator this evaluator does not know: reported at start, its statement left out. */
export class UnsupportedConditionError extends Error {}

type Compare = (requestValue: string, policyValue: string) => boolean;

const COMPARATORS: Record<string, { compare: Compare; negated: boolean }> = {
  StringEquals: { compare: (a, b) => a === b, negated: false },
  StringNotEquals: { compare: (a, b) => a === b, negated: true },
  StringEqualsIgnoreCase: { compare: (a, b) => a.toLowerCase() === b.toLowerCase(), negated: false },
  StringNotEqualsIgnoreCase: { compare: (a, b) => a.toLowerCase() === b.toLowerCase(), negated: true },
  StringLike: { compare: (a, b) => wildcardMatch(a, b), negated: false },
  StringNotLike: { compare: (a, b) => wildcardMatch(a, b), negated: true },
  NumericEquals: { compare: numeric((a, b) => a === b), negated: false },
  NumericNotEquals: { compare: numeric((a, b) => a === b), negated: true },
  NumericLessThan: { compare: numeric((a, b) => a < b), negated: false },
  NumericLessThanEquals: { compare: numeric((a, b) => a <= b), negated: false },
  NumericGreaterThan: { compare: numeric((a, b) => a > b), negated: false },
  NumericGreaterThanEquals: { compare: numeric((a, b) => a >= b), negated: false },
  DateEquals: { compare: dates((a, b) => a === b), negated: false },
  DateNotEquals: { compare: dates((a, b) => a === b), negated: true },
  DateLessThan: { compare: dates((a, b) => a < b), negated: false },
  DateLessThanEquals: { compare: dates((a, b) => a <= b), negated: false },
  DateGreaterThan: { compare: dates((a, b) => a > b), negated: false },
  DateGreaterThanEquals: { compare: dates((a, b) => a >= b), negated: false },
  Bool: { compare: (a, b) => a.toLowerCase() === b.toLowerCase(), negated: false },
  ArnEquals: { compare: arnMatch, negated: false },
  ArnLike: { compare: arnMatch, negated: false },
  ArnNotEquals: { compare: arnMatch, negated: true },
  ArnNotLike: { compare: arnMatch, negated: true },
};

/** Every condition of a statement's Condition block; throws UnsupportedConditionError for an operator it cannot evaluate. */
export function parseConditions(block: unknown, resolve: (value: unknown) => string): Condition[] {
  if (!block || typeof block !== 'object' || Array.isArray(block)) throw new UnsupportedConditionError('Condition is not an object');
  const conditions: Condition[] = [];
  for (const [operator, keys] of Object.entries(block)) {
    if (!keys || typeof keys !== 'object' || Array.isArray(keys)) throw new UnsupportedConditionError(`${operator} does not map keys to values`);
    for (const [key, raw] of Object.entries(keys)) {
      const values = (Array.isArray(raw) ? raw : [raw]).map(resolve);
      conditions.push({ text: `${operator} ${key}`, key: key.toLowerCase(), values, test: compile(operator, key.toLowerCase(), values) });
    }
  }
  return conditions;
}

function compile(operator: string, key: string, values: string[]): (context: RequestContext) => boolean {
  const qualifier = /^(ForAllValues|ForAnyValue):/.exec(operator)?.[1];
  let name = qualifier ? operator.slice(qualifier.length + 1) : operator;
  const ifExists = name.endsWith('IfExists');
  if (ifExists) name = name.slice(0, -'IfExists'.length);

  if (name === 'Null') {
    if (qualifier || ifExists) throw new UnsupportedConditionError(`${operator}: Null takes neither a set qualifier nor IfExists`);
    // "true": the key must be absent; "false": present. Several values: any one of them may hold.
    return (context) => values.some((value) => (value.toLowerCase() === 'true') === !context.has(key));
  }
  const comparator = COMPARATORS[name];
  if (!comparator) throw new UnsupportedConditionError(`condition operator ${operator} is not evaluated by the emulator`);
  const { compare, negated } = comparator;
  const matchesAny = (requestValue: string) => values.some((policyValue) => compare(requestValue, policyValue));
  const holdsFor = (requestValue: string) => matchesAny(requestValue) !== negated;

  return (context) => {
    const present = context.get(key);
    if (!present || present.length === 0) {
      if (ifExists) return true;
      if (qualifier === 'ForAllValues') return true;
      if (qualifier === 'ForAnyValue') return false;
      return negated;
    }
    if (qualifier === 'ForAllValues') return present.every(holdsFor);
    if (qualifier === 'ForAnyValue') return present.some(holdsFor);
    // A single-valued operator over a multivalued key: positive when some value matches, negated when none does.
    return negated ? !present.some(matchesAny) : present.some(matchesAny);
  };
}

/** `*` any run of characters, `?` one character, everything else itself, case-sensitively. */
export function wildcardMatch(value: string, pattern: string): boolean {
  return wildcardPattern(pattern, '').test(value);
}

export function wildcardPattern(pattern: string, flags: string): RegExp {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, flags);
}

/** An ARN's six colon-separated parts are matched each on its own, so a wildcard never spans a colon between them. */
function arnMatch(value: string, pattern: string): boolean {
  const valueParts = arnParts(value);
  const patternParts = arnParts(pattern);
  if (!valueParts || !patternParts) return false;
  return patternParts.every((part, index) => wildcardMatch(valueParts[index]!, part));
}

function arnParts(arn: string): string[] | undefined {
  const parts = arn.split(':');
  if (parts.length < 6) return undefined;
  return [...parts.slice(0, 5), parts.slice(5).join(':')];
}

function numeric(compare: (a: number, b: number) => boolean): Compare {
  return (a, b) => {
    const [x, y] = [Number(a), Number(b)];
    return a.trim() !== '' && b.trim() !== '' && Number.isFinite(x) && Number.isFinite(y) && compare(x, y);
  };
}

/** ISO 8601 dates or epoch seconds, as IAM accepts both. */
function dates(compare: (a: number, b: number) => boolean): Compare {
  const time = (text: string) => (/^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text));
  return (a, b) => {
    const [x, y] = [time(a), time(b)];
    return Number.isFinite(x) && Number.isFinite(y) && compare(x, y);
  };
}
