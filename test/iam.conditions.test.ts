/**
 * The Condition operators as IAM documents them, each against request
 * contexts that hold, fail, or lack the key.
 */
import { describe, expect, it } from 'vitest';
import { parseConditions, UnsupportedConditionError, type RequestContext } from '../scripts/emulator/iam-conditions.js';

/** Whether the Condition block `block` holds for a request with these keys. */
function holds(block: Record<string, Record<string, string | string[]>>, keys: Record<string, string | string[]>): boolean {
  const context: RequestContext = new Map(Object.entries(keys).map(([key, value]) => [key.toLowerCase(), Array.isArray(value) ? value : [value]]));
  return parseConditions(block, String).every((condition) => condition.test(context));
}

describe('string operators', () => {
  it('compares StringEquals case-sensitively, any of its values matching, the key name case-insensitively', () => {
    expect(holds({ StringEquals: { 'aws:RequestedRegion': ['eu-west-1', 'us-east-1'] } }, { 'AWS:requestedregion': 'us-east-1' })).toBe(true);
    expect(holds({ StringEquals: { 'aws:RequestedRegion': 'us-east-1' } }, { 'aws:RequestedRegion': 'US-EAST-1' })).toBe(false);
    expect(holds({ StringEqualsIgnoreCase: { 'aws:RequestedRegion': 'us-east-1' } }, { 'aws:RequestedRegion': 'US-EAST-1' })).toBe(true);
  });

  it('matches StringLike with * and ? and StringNotLike as its negation', () => {
    const arn = 'arn:aws:iam::000000000000:role/chat-ConnectRole';
    expect(holds({ StringLike: { 'aws:PrincipalArn': 'arn:aws:iam::*:role/chat-*' } }, { 'aws:PrincipalArn': arn })).toBe(true);
    expect(holds({ StringLike: { 'aws:PrincipalArn': 'arn:aws:iam::*:role/chat-?' } }, { 'aws:PrincipalArn': arn })).toBe(false);
    expect(holds({ StringNotLike: { 'aws:PrincipalArn': 'arn:aws:iam::*:role/admin-*' } }, { 'aws:PrincipalArn': arn })).toBe(true);
    expect(holds({ StringNotEquals: { 'aws:PrincipalArn': [arn, 'other'] } }, { 'aws:PrincipalArn': arn })).toBe(false);
  });

  it('makes a missing key false for positive operators and true for negated ones', () => {
    expect(holds({ StringEquals: { 'aws:username': 'alice' } }, {})).toBe(false);
    expect(holds({ StringNotEquals: { 'aws:username': 'alice' } }, {})).toBe(true);
    expect(holds({ ArnNotLike: { 'aws:SourceArn': 'arn:aws:s3:::*' } }, {})).toBe(true);
  });
});

describe('IfExists and Null', () => {
  it('makes ...IfExists true without the key and an ordinary check with it', () => {
    expect(holds({ StringEqualsIfExists: { 'dynamodb:Select': 'COUNT' } }, {})).toBe(true);
    expect(holds({ StringEqualsIfExists: { 'dynamodb:Select': 'COUNT' } }, { 'dynamodb:Select': 'COUNT' })).toBe(true);
    expect(holds({ StringEqualsIfExists: { 'dynamodb:Select': 'COUNT' } }, { 'dynamodb:Select': 'ALL_ATTRIBUTES' })).toBe(false);
  });

  it('asks Null whether the key is absent ("true") or present ("false")', () => {
    expect(holds({ Null: { 'aws:SourceIp': 'true' } }, {})).toBe(true);
    expect(holds({ Null: { 'aws:SourceIp': 'true' } }, { 'aws:SourceIp': '10.0.0.1' })).toBe(false);
    expect(holds({ Null: { 'dynamodb:LeadingKeys': 'false' } }, { 'dynamodb:LeadingKeys': 'a' })).toBe(true);
  });
});

describe('set qualifiers over a multivalued key', () => {
  const leading = ['alice', 'bob'];
  it('holds ForAllValues when every request value matches, and when the key is missing', () => {
    expect(holds({ 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['alice', 'bob', 'carol'] } }, { 'dynamodb:LeadingKeys': leading })).toBe(true);
    expect(holds({ 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['alice'] } }, { 'dynamodb:LeadingKeys': leading })).toBe(false);
    expect(holds({ 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['alice'] } }, {})).toBe(true);
  });

  it('holds ForAnyValue when one request value matches, never when the key is missing', () => {
    expect(holds({ 'ForAnyValue:StringLike': { 'dynamodb:Attributes': ['b*'] } }, { 'dynamodb:Attributes': leading })).toBe(true);
    expect(holds({ 'ForAnyValue:StringLike': { 'dynamodb:Attributes': ['c*'] } }, { 'dynamodb:Attributes': leading })).toBe(false);
    expect(holds({ 'ForAnyValue:StringLike': { 'dynamodb:Attributes': ['*'] } }, {})).toBe(false);
  });

  it('applies a negated operator to each value under ForAllValues', () => {
    expect(holds({ 'ForAllValues:StringNotEquals': { 'dynamodb:Attributes': ['secret'] } }, { 'dynamodb:Attributes': ['id', 'note'] })).toBe(true);
    expect(holds({ 'ForAllValues:StringNotEquals': { 'dynamodb:Attributes': ['secret'] } }, { 'dynamodb:Attributes': ['id', 'secret'] })).toBe(false);
  });
});

describe('numeric, date, Bool and ARN operators', () => {
  it('compares numbers as numbers and refuses what is not one', () => {
    expect(holds({ NumericLessThan: { 'aws:EpochTime': '1000' } }, { 'aws:EpochTime': '999' })).toBe(true);
    expect(holds({ NumericGreaterThanEquals: { 'aws:EpochTime': '1000' } }, { 'aws:EpochTime': '999' })).toBe(false);
    expect(holds({ NumericEquals: { 'aws:EpochTime': '10' } }, { 'aws:EpochTime': 'ten' })).toBe(false);
  });

  it('compares aws:CurrentTime against ISO dates and epoch seconds', () => {
    const now = '2026-12-01T18:00:00Z';
    expect(holds({ DateGreaterThan: { 'aws:CurrentTime': '2026-01-01T00:00:00Z' } }, { 'aws:CurrentTime': now })).toBe(true);
    expect(holds({ DateLessThan: { 'aws:CurrentTime': '2026-01-01T00:00:00Z' } }, { 'aws:CurrentTime': now })).toBe(false);
    expect(holds({ DateLessThan: { 'aws:CurrentTime': String(Date.parse('2027-01-01') / 1000) } }, { 'aws:CurrentTime': now })).toBe(true);
  });

  it('reads Bool case-insensitively', () => {
    expect(holds({ Bool: { 'aws:SecureTransport': 'true' } }, { 'aws:SecureTransport': 'TRUE' })).toBe(true);
    expect(holds({ Bool: { 'aws:SecureTransport': 'false' } }, { 'aws:SecureTransport': 'true' })).toBe(false);
  });

  it('matches ArnLike part by part, so a wildcard does not cross into the next part', () => {
    const role = 'arn:aws:iam::000000000000:role/chat';
    expect(holds({ ArnLike: { 'aws:PrincipalArn': 'arn:aws:iam::*:role/*' } }, { 'aws:PrincipalArn': role })).toBe(true);
    expect(holds({ ArnLike: { 'aws:PrincipalArn': 'arn:*:role/chat' } }, { 'aws:PrincipalArn': role })).toBe(false);
    expect(holds({ ArnEquals: { 'aws:PrincipalArn': role } }, { 'aws:PrincipalArn': role })).toBe(true);
    expect(holds({ ArnNotEquals: { 'aws:PrincipalArn': role } }, { 'aws:PrincipalArn': role })).toBe(false);
  });

  it('requires every operator and every key of the block', () => {
    const block = { StringEquals: { 'aws:RequestedRegion': 'us-east-1', 'aws:PrincipalAccount': '1' }, Bool: { 'aws:SecureTransport': 'true' } };
    expect(holds(block, { 'aws:RequestedRegion': 'us-east-1', 'aws:PrincipalAccount': '1', 'aws:SecureTransport': 'true' })).toBe(true);
    expect(holds(block, { 'aws:RequestedRegion': 'us-east-1', 'aws:PrincipalAccount': '2', 'aws:SecureTransport': 'true' })).toBe(false);
  });

  it('refuses an operator it does not evaluate, by name', () => {
    expect(() => parseConditions({ IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } }, String)).toThrow(UnsupportedConditionError);
    expect(() => parseConditions({ IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } }, String)).toThrow(/IpAddress/);
  });
});
