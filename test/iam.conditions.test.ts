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

  it('refuses an operator IAM does not have, by name', () => {
    expect(() => parseConditions({ StringEqualsAnyCase: { 'aws:RequestedRegion': 'us-east-1' } }, String)).toThrow(UnsupportedConditionError);
    expect(() => parseConditions({ StringEqualsAnyCase: { 'aws:RequestedRegion': 'us-east-1' } }, String)).toThrow(/StringEqualsAnyCase/);
  });
});

describe('IpAddress and BinaryEquals', () => {
  it('matches an IPv4 or IPv6 address against CIDR ranges and single addresses, NotIpAddress as its negation', () => {
    expect(holds({ IpAddress: { 'aws:SourceIp': ['192.0.2.0/24', '10.0.0.0/8'] } }, { 'aws:SourceIp': '10.20.30.40' })).toBe(true);
    expect(holds({ IpAddress: { 'aws:SourceIp': '192.0.2.0/24' } }, { 'aws:SourceIp': '192.0.3.1' })).toBe(false);
    expect(holds({ IpAddress: { 'aws:SourceIp': '203.0.113.7' } }, { 'aws:SourceIp': '203.0.113.7' })).toBe(true);
    expect(holds({ IpAddress: { 'aws:SourceIp': '2001:db8::/32' } }, { 'aws:SourceIp': '2001:db8:1::5' })).toBe(true);
    expect(holds({ IpAddress: { 'aws:SourceIp': '2001:db8::/32' } }, { 'aws:SourceIp': '2001:db9::5' })).toBe(false);
    expect(holds({ NotIpAddress: { 'aws:SourceIp': '10.0.0.0/8' } }, { 'aws:SourceIp': '192.0.2.1' })).toBe(true);
    expect(holds({ NotIpAddress: { 'aws:SourceIp': '10.0.0.0/8' } }, { 'aws:SourceIp': '10.1.1.1' })).toBe(false);
  });

  it('holds nothing for a malformed range or address, and reads a missing key as for any operator', () => {
    expect(holds({ IpAddress: { 'aws:SourceIp': '10.0.0.0/33' } }, { 'aws:SourceIp': '10.0.0.1' })).toBe(false);
    expect(holds({ IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } }, { 'aws:SourceIp': 'localhost' })).toBe(false);
    expect(holds({ IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } }, {})).toBe(false);
    expect(holds({ NotIpAddress: { 'aws:SourceIp': '10.0.0.0/8' } }, {})).toBe(true);
    expect(holds({ IpAddressIfExists: { 'aws:SourceIp': '10.0.0.0/8' } }, {})).toBe(true);
  });

  it('compares BinaryEquals by the bytes its base64 stands for', () => {
    const bytes = Buffer.from([0, 1, 2, 250]).toString('base64');
    expect(holds({ BinaryEquals: { 'test:Blob': bytes } }, { 'test:Blob': bytes })).toBe(true);
    expect(holds({ BinaryEquals: { 'test:Blob': bytes } }, { 'test:Blob': Buffer.from([0, 1, 2, 251]).toString('base64') })).toBe(false);
  });
});

describe('policy variables in condition values', () => {
  const variables = (block: Record<string, Record<string, string | string[]>>, keys: Record<string, string | string[]>) => {
    const context: RequestContext = new Map(Object.entries(keys).map(([key, value]) => [key.toLowerCase(), Array.isArray(value) ? value : [value]]));
    return parseConditions(block, String, true).every((condition) => condition.test(context));
  };

  it('replaces a variable with the request\'s own value of its key, and only in a policy that has variables', () => {
    const block = { StringLike: { 'dynamodb:LeadingKeys': '${aws:PrincipalAccount}-*' } };
    expect(variables(block, { 'aws:PrincipalAccount': '123', 'dynamodb:LeadingKeys': '123-notes' })).toBe(true);
    expect(variables(block, { 'aws:PrincipalAccount': '123', 'dynamodb:LeadingKeys': '456-notes' })).toBe(false);
    expect(holds(block, { 'aws:PrincipalAccount': '123', 'dynamodb:LeadingKeys': '${aws:PrincipalAccount}-x' })).toBe(true);
  });

  it('leaves a value whose variable the request lacks matching nothing, unless the variable gives a default', () => {
    expect(variables({ StringEquals: { 'dynamodb:LeadingKeys': '${aws:username}' } }, { 'dynamodb:LeadingKeys': '' })).toBe(false);
    expect(variables({ StringNotEquals: { 'dynamodb:LeadingKeys': '${aws:username}' } }, { 'dynamodb:LeadingKeys': 'x' })).toBe(true);
    expect(variables({ StringEquals: { 'dynamodb:LeadingKeys': "${aws:username, 'guest''s'}" } }, { 'dynamodb:LeadingKeys': "guest's" })).toBe(true);
  });

  it('treats what a variable brings in, and ${*}, ${?} and ${$}, as the characters themselves, never as wildcards', () => {
    expect(variables({ StringLike: { 'test:Name': 'a${*}b' } }, { 'test:Name': 'a*b' })).toBe(true);
    expect(variables({ StringLike: { 'test:Name': 'a${*}b' } }, { 'test:Name': 'axxb' })).toBe(false);
    expect(variables({ StringLike: { 'test:Name': '${test:Pattern}' } }, { 'test:Pattern': 'a?', 'test:Name': 'ab' })).toBe(false);
    expect(variables({ StringEquals: { 'test:Name': '${$}{x}' } }, { 'test:Name': '${x}' })).toBe(true);
    expect(variables({ ArnLike: { 'aws:SourceArn': 'arn:aws:lambda:*:${aws:PrincipalAccount}:function:*' } }, { 'aws:PrincipalAccount': '123', 'aws:SourceArn': 'arn:aws:lambda:us-east-1:123:function:f' })).toBe(true);
    expect(variables({ ArnLike: { 'aws:SourceArn': 'arn:aws:lambda:*:${aws:PrincipalAccount}:function:*' } }, { 'aws:PrincipalAccount': '123', 'aws:SourceArn': 'arn:aws:lambda:us-east-1:999:function:f' })).toBe(false);
  });

  it('resolves nothing from a multivalued key', () => {
    expect(variables({ StringEquals: { 'test:Name': '${dynamodb:LeadingKeys}' } }, { 'dynamodb:LeadingKeys': ['a', 'b'], 'test:Name': 'a' })).toBe(false);
  });
});
