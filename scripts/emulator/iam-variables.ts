/**
 * Policy variables (`${aws:PrincipalAccount}`, `${aws:username, 'nobody'}`)
 * in a statement's Resource and Condition values, replaced from the request's
 * context each time a call is evaluated, as IAM does in policies of Version
 * 2012-10-17 (older versions read them as plain text). A variable whose key
 * the request lacks, or holds several values of, cannot be resolved: the
 * resource or value that holds it then matches nothing, unless the variable
 * gives a default after a comma. `${*}`, `${?}` and `${$}` stand for those
 * characters, and whatever a variable brings in is never a wildcard
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).
 */
import type { RequestContext } from './iam-conditions.js';

/** A stretch of policy text; `literal` when a variable put it there, so its `*` and `?` are themselves. */
export interface TextPiece {
  text: string;
  literal: boolean;
}

export type PolicyText = readonly TextPiece[];

/** The policy version that has variables; in any other, `${...}` is text. */
export const VARIABLES_VERSION = '2012-10-17';

const VARIABLE = /\$\{([^}]*)\}/g;
const SPECIAL: Record<string, string> = { '*': '*', '?': '?', $: '$' };
/** `key` or `key, 'default'`, spaces around either ignored; `''` in a default is one quote. */
const KEY_AND_DEFAULT = /^\s*([^\s,']+)\s*(?:,\s*'((?:[^']|'')*)'\s*)?$/;

export function hasVariables(text: string): boolean {
  return /\$\{[^}]*\}/.test(text);
}

/** Policy text without variables, as pieces. */
export function fixedText(text: string): PolicyText {
  return [{ text, literal: false }];
}

/** `text` with its variables replaced from `context`; undefined when one of them cannot be resolved. */
export function expand(text: string, context: RequestContext): PolicyText | undefined {
  const pieces: TextPiece[] = [];
  let end = 0;
  for (const match of text.matchAll(VARIABLE)) {
    if (match.index > end) pieces.push({ text: text.slice(end, match.index), literal: false });
    const value = variableValue(match[1]!, context);
    if (value === undefined) return undefined;
    pieces.push({ text: value, literal: true });
    end = match.index + match[0].length;
  }
  if (end < text.length) pieces.push({ text: text.slice(end), literal: false });
  return pieces;
}

export function joined(text: PolicyText): string {
  return text.map((piece) => piece.text).join('');
}

function variableValue(inside: string, context: RequestContext): string | undefined {
  const special = SPECIAL[inside];
  if (special !== undefined) return special;
  const parsed = KEY_AND_DEFAULT.exec(inside);
  if (!parsed) return undefined;
  const values = context.get(parsed[1]!.toLowerCase());
  // A multivalued key is no variable (dynamodb:LeadingKeys, aws:TagKeys): only its default can stand in.
  if (values && values.length === 1) return values[0];
  return parsed[2]?.replace(/''/g, "'");
}
