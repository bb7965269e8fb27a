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
 * does (always for a missing key). Values may hold policy variables
 * (iam-variables.ts), resolved from the same request.
 */
import { BlockList, isIP } from 'node:net';
import { expand, fixedText, hasVariables, joined, type PolicyText } from './iam-variables.js';

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

type Compare = (requestValue: string, policyValue: PolicyText) => boolean;

const COMPARATORS: Record<string, { compare: Compare; negated: boolean }> = {
  StringEquals: { compare: (a, b) => a === joined(b), negated: false },
  StringNotEquals: { compare: (a, b) => a === joined(b), negated: true },
  StringEqualsIgnoreCase: { compare: (a, b) => a.toLowerCase() === joined(b).toLowerCase(), negated: false },
  StringNotEqualsIgnoreCase: { compare: (a, b) => a.toLowerCase() === joined(b).toLowerCase(), negated: true },
  StringLike: { compare: (a, b) => wildcardPattern(b, '').test(a), negated: false },
  StringNotLike: { compare: (a, b) => wildcardPattern(b, '').test(a), negated: true },
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
  Bool: { compare: (a, b) => a.toLowerCase() === joined(b).toLowerCase(), negated: false },
  BinaryEquals: { compare: (a, b) => Buffer.from(a, 'base64').equals(Buffer.from(joined(b), 'base64')), negated: false },
  IpAddress: { compare: (a, b) => inRange(a, joined(b)), negated: false },
  NotIpAddress: { compare: (a, b) => inRange(a, joined(b)), negated: true },
  ArnEquals: { compare: arnMatch, negated: false },
  ArnLike: { compare: arnMatch, negated: false },
  ArnNotEquals: { compare: arnMatch, negated: true },
  ArnNotLike: { compare: arnMatch, negated: true },
};

/**
 * Every condition of a statement's Condition block; throws
 * UnsupportedConditionError for an operator it cannot evaluate. With
 * `variables` (a policy of Version 2012-10-17), `${...}` in a value is a
 * policy variable.
 */
export function parseConditions(block: unknown, resolve: (value: unknown) => string, variables = false): Condition[] {
  if (!block || typeof block !== 'object' || Array.isArray(block)) throw new UnsupportedConditionError('Condition is not an object');
  const conditions: Condition[] = [];
  for (const [operator, keys] of Object.entries(block)) {
    if (!keys || typeof keys !== 'object' || Array.isArray(keys)) throw new UnsupportedConditionError(`${operator} does not map keys to values`);
    for (const [key, raw] of Object.entries(keys)) {
      const values = (Array.isArray(raw) ? raw : [raw]).map(resolve);
      conditions.push({ text: `${operator} ${key}`, key: key.toLowerCase(), values, test: compile(operator, key.toLowerCase(), values, variables) });
    }
  }
  return conditions;
}

function compile(operator: string, key: string, values: string[], variables: boolean): (context: RequestContext) => boolean {
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
  const fixed = values.map((value) => (variables && hasVariables(value) ? undefined : fixedText(value)));
  const allFixed = fixed.every((value) => value !== undefined) ? (fixed as PolicyText[]) : undefined;
  // A value whose variable cannot be resolved is no value: it matches nothing.
  const policyValues = (context: RequestContext) =>
    allFixed ?? values.map((value, index) => fixed[index] ?? expand(value, context)).filter((value): value is PolicyText => value !== undefined);

  return (context) => {
    const resolved = policyValues(context);
    const matchesAny = (requestValue: string) => resolved.some((policyValue) => compare(requestValue, policyValue));
    const holdsFor = (requestValue: string) => matchesAny(requestValue) !== negated;
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

/** `*` any run of characters, `?` one character, everything else (and all a variable put there) itself. */
export function wildcardPattern(pattern: string | PolicyText, flags: string): RegExp {
  const pieces = typeof pattern === 'string' ? fixedText(pattern) : pattern;
  const source = pieces.map((piece) => (piece.literal ? escapeRegExp(piece.text) : escapeRegExp(piece.text).replace(/\\\*/g, '.*').replace(/\\\?/g, '.'))).join('');
  return new RegExp(`^${source}$`, flags);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** ArnLike on plain text: `value` against `pattern`, whose `*` and `?` are wildcards within each of an ARN's parts. */
export function arnLike(value: string, pattern: string): boolean {
  return arnMatch(value, fixedText(pattern));
}

/** An ARN's six colon-separated parts are matched each on its own, so a wildcard never spans a colon between them. */
function arnMatch(value: string, pattern: PolicyText): boolean {
  const valueParts = value.split(':');
  const patternParts = splitPieces(pattern, ':');
  if (valueParts.length < 6 || patternParts.length < 6) return false;
  const lastValue = valueParts.slice(5).join(':');
  const lastPattern = patternParts.slice(5).flatMap((part, index) => (index === 0 ? part : [{ text: ':', literal: true }, ...part]));
  return [...patternParts.slice(0, 5), lastPattern].every((part, index) => wildcardPattern(part, '').test(index < 5 ? valueParts[index]! : lastValue));
}

/** Policy text cut at every `separator`, each part keeping which of its characters are literal. */
function splitPieces(text: PolicyText, separator: string): PolicyText[] {
  const parts: Array<{ text: string; literal: boolean }[]> = [[]];
  for (const piece of text) {
    piece.text.split(separator).forEach((chunk, index) => {
      if (index > 0) parts.push([]);
      parts[parts.length - 1]!.push({ text: chunk, literal: piece.literal });
    });
  }
  return parts;
}

const ranges = new Map<string, BlockList | null>();

/** Whether an IPv4 or IPv6 address lies in a CIDR range (or is the address a range without `/` names); a malformed range holds nothing. */
function inRange(address: string, range: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  let list = ranges.get(range);
  if (list === undefined) {
    list = blockOf(range);
    ranges.set(range, list);
  }
  return list !== null && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

function blockOf(range: string): BlockList | null {
  const [network = '', prefix] = range.split('/');
  const family = isIP(network);
  const bits = prefix === undefined ? (family === 6 ? 128 : 32) : Number(prefix);
  if (family === 0 || !Number.isInteger(bits) || bits < 0 || bits > (family === 6 ? 128 : 32)) return null;
  const list = new BlockList();
  list.addSubnet(network, bits, family === 6 ? 'ipv6' : 'ipv4');
  return list;
}

function numeric(compare: (a: number, b: number) => boolean): Compare {
  return (a, policyValue) => {
    const b = joined(policyValue);
    const [x, y] = [Number(a), Number(b)];
    return a.trim() !== '' && b.trim() !== '' && Number.isFinite(x) && Number.isFinite(y) && compare(x, y);
  };
}

/** ISO 8601 dates or epoch seconds, as IAM accepts both. */
function dates(compare: (a: number, b: number) => boolean): Compare {
  const time = (text: string) => (/^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text));
  return (a, b) => {
    const [x, y] = [time(a), time(joined(b))];
    return Number.isFinite(x) && Number.isFinite(y) && compare(x, y);
  };
}
