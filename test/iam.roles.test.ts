/**
 * The role the emulator reads for each function of a template, decided
 * call by call: managed policies by ARN and the template's own, policies
 * attached with AWS::IAM::Policy, SAM policy templates, permissions
 * boundaries, and what it cannot read (allowing nothing, or for a Deny,
 * refusing regardless).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Template } from '../scripts/aws-template.js';
import { dynamoConditionKeys } from '../scripts/emulator/dynamo-condition-keys.js';
import { decide, deniedMessage, type RolePolicy } from '../scripts/emulator/iam.js';
import { readStack } from '../scripts/emulator/stack.js';

let code: string;
beforeAll(async () => {
  code = await mkdtemp(join(tmpdir(), 'cloudsocket-roles-'));
  await writeFile(join(code, 'app.mjs'), 'export const handler = async () => ({ statusCode: 200 });\n');
});
afterAll(async () => {
  if (code) await rm(code, { recursive: true, force: true });
});

const table = (name: string) => `arn:aws:dynamodb:us-east-1:000000000000:table/cloudsocket-${name}`;
const fn = (name: string) => `arn:aws:lambda:us-east-1:000000000000:function:cloudsocket-${name}`;

const template: Template = {
  Resources: {
    Notes: { Type: 'AWS::DynamoDB::Table', Properties: { KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }] } },
    Api: { Type: 'AWS::ApiGatewayV2::Api', Properties: { ProtocolType: 'WEBSOCKET' } },
    Writes: {
      Type: 'AWS::IAM::ManagedPolicy',
      Properties: { PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: { 'Fn::GetAtt': ['Notes', 'Arn'] } }] } },
    },
    Classic: {
      Type: 'AWS::IAM::Role',
      Properties: {
        ManagedPolicyArns: ['arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess', { Ref: 'Writes' }, 'arn:aws:iam::aws:policy/SomethingNew'],
      },
    },
    Attached: {
      Type: 'AWS::IAM::Policy',
      Properties: {
        Roles: [{ Ref: 'Classic' }],
        PolicyDocument: {
          Statement: [
            { Effect: 'Allow', Action: 'dynamodb:DeleteItem', Resource: '*', Condition: { StringEqualsAnyCase: { 'aws:RequestedRegion': 'us-east-1' } } },
            { Effect: 'Deny', Action: 'dynamodb:Scan', Resource: '*', Condition: { StringEqualsAnyCase: { 'aws:RequestedRegion': 'us-east-1' } } },
          ],
        },
      },
    },
    ClassicFunction: { Type: 'AWS::Lambda::Function', Properties: { Handler: 'app.handler', Role: { 'Fn::GetAtt': ['Classic', 'Arn'] } } },
    ReadsOnly: {
      Type: 'AWS::IAM::ManagedPolicy',
      Properties: {
        PolicyDocument: {
          Statement: [
            { Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem'], Resource: '*' },
            { Effect: 'Deny', Action: 'dynamodb:PutItem', Resource: { 'Fn::GetAtt': ['Notes', 'Arn'] } },
          ],
        },
      },
    },
    Bounded: {
      Type: 'AWS::IAM::Role',
      Properties: {
        PermissionsBoundary: { Ref: 'ReadsOnly' },
        Policies: [{ PolicyName: 'all', PolicyDocument: { Statement: [{ Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:PutItem'], Resource: '*' }] } }],
      },
    },
    BoundedFunction: { Type: 'AWS::Lambda::Function', Properties: { Handler: 'app.handler', Role: { 'Fn::GetAtt': ['Bounded', 'Arn'] } } },
    UnknownBoundary: {
      Type: 'AWS::IAM::Role',
      Properties: {
        PermissionsBoundary: 'arn:aws:iam::000000000000:policy/DefinedElsewhere',
        Policies: [{ PolicyName: 'all', PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 'dynamodb:*', Resource: '*' }] } }],
      },
    },
    UnknownBoundaryFunction: { Type: 'AWS::Lambda::Function', Properties: { Handler: 'app.handler', Role: { 'Fn::GetAtt': ['UnknownBoundary', 'Arn'] } } },
    Variables: {
      Type: 'AWS::IAM::Role',
      Properties: {
        Policies: [
          {
            PolicyName: 'current',
            PolicyDocument: {
              Version: '2012-10-17',
              Statement: [
                { Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: { 'Fn::Sub': 'arn:aws:dynamodb:${AWS::Region}:${!aws:PrincipalAccount}:table/${Notes}' } },
                { Effect: 'Allow', Action: 'dynamodb:Query', Resource: 'arn:aws:dynamodb:us-east-1:000000000000:table/${aws:username}' },
                { Effect: 'Allow', Action: 'dynamodb:Scan', Resource: "arn:aws:dynamodb:us-east-1:000000000000:table/${aws:username, 'cloudsocket-Notes'}" },
                { Effect: 'Allow', Action: 'dynamodb:DescribeTable', Resource: 'arn:aws:dynamodb:us-east-1:000000000000:table/${*}' },
              ],
            },
          },
          {
            PolicyName: 'old',
            PolicyDocument: { Version: '2008-10-17', Statement: [{ Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: 'arn:aws:dynamodb:us-east-1:${aws:PrincipalAccount}:table/*' }] },
          },
        ],
      },
    },
    VariablesFunction: { Type: 'AWS::Lambda::Function', Properties: { Handler: 'app.handler', Role: { 'Fn::GetAtt': ['Variables', 'Arn'] } } },
    BoundedSamFunction: {
      Type: 'AWS::Serverless::Function',
      Properties: { Handler: 'app.handler', PermissionsBoundary: { Ref: 'ReadsOnly' }, Policies: [{ DynamoDBCrudPolicy: { TableName: { Ref: 'Notes' } } }] },
    },
    SamFunction: {
      Type: 'AWS::Serverless::Function',
      Properties: {
        Handler: 'app.handler',
        Policies: [
          { DynamoDBWritePolicy: { TableName: { Ref: 'Notes' } } },
          { LambdaInvokePolicy: { FunctionName: { Ref: 'ClassicFunction' } } },
          'AWSLambdaRole',
          { SQSPollerPolicy: { QueueName: 'q' } },
        ],
      },
    },
  },
} as unknown as Template;

function roleOf(logicalId: string): RolePolicy {
  const stack = readStack({ template, distDir: code, stage: 'dev', region: 'us-east-1' });
  return [...stack.functions.values()].find((spec) => spec.logicalId === logicalId)!.role!;
}

describe('an AWS::IAM::Role', () => {
  it('gets AWS managed policies by ARN and its template\'s own ManagedPolicy', () => {
    const role = roleOf('ClassicFunction');
    expect(decide(role, 'dynamodb:Query', table('Notes'))).toBe('allowed');
    expect(decide(role, 'dynamodb:DescribeTable', table('Other'))).toBe('allowed');
    expect(decide(role, 'dynamodb:PutItem', table('Notes'))).toBe('allowed');
    expect(decide(role, 'dynamodb:PutItem', table('Other'))).toBe('implicit_deny');
    expect(decide(role, 'dynamodb:UpdateItem', table('Notes'))).toBe('implicit_deny');
  });

  it('leaves out what it cannot read, says so, and applies a Deny it cannot fully read without its condition', () => {
    const role = roleOf('ClassicFunction');
    expect(role.skipped).toEqual([
      expect.stringContaining('managed policy arn:aws:iam::aws:policy/SomethingNew'),
      expect.stringContaining('condition operator StringEqualsAnyCase'),
      expect.stringContaining('as a Deny it is applied without its Condition'),
    ]);
    expect(decide(role, 'dynamodb:DeleteItem', table('Notes'))).toBe('implicit_deny');
    expect(decide(role, 'dynamodb:Scan', table('Notes'))).toBe('explicit_deny');
  });
});

describe('policy variables', () => {
  const context = new Map([['aws:principalaccount', ['000000000000']]]);

  it('are resolved in a Resource from the request, also when a Sub wrote them as ${!...}', () => {
    const role = roleOf('VariablesFunction');
    expect(role.conditional).toBe(true);
    expect(decide(role, 'dynamodb:GetItem', table('Notes'), context)).toBe('allowed');
    expect(decide(role, 'dynamodb:GetItem', table('Notes'), new Map([['aws:principalaccount', ['111111111111']]]))).toBe('implicit_deny');
  });

  it('leave a Resource matching nothing when the request lacks their key, unless they give a default', () => {
    const role = roleOf('VariablesFunction');
    expect(decide(role, 'dynamodb:Query', table('Notes'), context)).toBe('implicit_deny');
    expect(decide(role, 'dynamodb:Scan', table('Notes'), context)).toBe('allowed');
    expect(decide(role, 'dynamodb:Scan', table('Notes'), new Map([...context, ['aws:username', ['alice']]]))).toBe('implicit_deny');
  });

  it('make ${*} a literal asterisk, not a wildcard', () => {
    const role = roleOf('VariablesFunction');
    expect(decide(role, 'dynamodb:DescribeTable', table('Notes'), context)).toBe('implicit_deny');
    expect(decide(role, 'dynamodb:DescribeTable', 'arn:aws:dynamodb:us-east-1:000000000000:table/*', context)).toBe('allowed');
  });

  it('are text in a policy of an older Version', () => {
    const role = roleOf('VariablesFunction');
    expect(decide(role, 'dynamodb:PutItem', table('Notes'), context)).toBe('implicit_deny');
    expect(decide(role, 'dynamodb:PutItem', 'arn:aws:dynamodb:us-east-1:${aws:PrincipalAccount}:table/x', context)).toBe('allowed');
  });
});

describe('a permissions boundary', () => {
  it('lets through only what both the role\'s policies and its boundary allow, and a Deny in the boundary refuses', () => {
    const role = roleOf('BoundedFunction');
    expect(decide(role, 'dynamodb:GetItem', table('Notes'))).toBe('allowed');
    // The boundary alone grants nothing: Query is in it but in no policy of the role.
    expect(decide(role, 'dynamodb:Query', table('Notes'))).toBe('implicit_deny');
    expect(decide(role, 'dynamodb:UpdateItem', table('Notes'))).toBe('boundary_implicit_deny');
    expect(decide(role, 'dynamodb:PutItem', table('Other'))).toBe('allowed');
    expect(decide(role, 'dynamodb:PutItem', table('Notes'))).toBe('boundary_explicit_deny');
  });

  it('says in the denial that the boundary decided, as AWS does', () => {
    const principal = 'arn:aws:sts::000000000000:assumed-role/cloudsocket-Bounded/cloudsocket-BoundedFunction';
    expect(deniedMessage(principal, 'dynamodb:UpdateItem', table('Notes'), 'boundary_implicit_deny', true)).toBe(
      `User: ${principal} is not authorized to perform: dynamodb:UpdateItem on resource: ${table('Notes')} because no permissions boundary allows the dynamodb:UpdateItem action`,
    );
    expect(deniedMessage(principal, 'dynamodb:PutItem', table('Notes'), 'boundary_explicit_deny', true)).toBe(
      `User: ${principal} is not authorized to perform: dynamodb:PutItem on resource: ${table('Notes')} with an explicit deny in a permissions boundary`,
    );
  });

  it('allows nothing when the boundary is a policy the emulator cannot read, and says so', () => {
    const role = roleOf('UnknownBoundaryFunction');
    expect(decide(role, 'dynamodb:GetItem', table('Notes'))).toBe('boundary_implicit_deny');
    expect(role.skipped).toEqual([expect.stringMatching(/^permissions boundary: .*DefinedElsewhere/)]);
  });

  it('bounds the role SAM makes by the function\'s PermissionsBoundary', () => {
    const role = roleOf('BoundedSamFunction');
    expect(decide(role, 'dynamodb:GetItem', table('Notes'))).toBe('allowed');
    expect(decide(role, 'dynamodb:DeleteItem', table('Notes'))).toBe('boundary_implicit_deny');
    expect(decide(role, 'dynamodb:PutItem', table('Notes'))).toBe('boundary_explicit_deny');
    expect(decide(roleOf('SamFunction'), 'dynamodb:PutItem', table('Notes'))).toBe('allowed');
  });
});

describe('a SAM function without a Role', () => {
  it('gets SAM\'s role: the templates with their parameters, managed policies by name, nothing for a template it does not expand', () => {
    const role = roleOf('SamFunction');
    expect(role.roleName).toBe('cloudsocket-SamFunctionRole');
    expect(decide(role, 'dynamodb:PutItem', table('Notes'))).toBe('allowed');
    expect(decide(role, 'dynamodb:UpdateItem', `${table('Notes')}/index/byRoom`)).toBe('allowed');
    expect(decide(role, 'dynamodb:GetItem', table('Notes'))).toBe('implicit_deny');
    // LambdaInvokePolicy's own trailing * covers versions and aliases; AWSLambdaRole then allows any function.
    expect(decide(role, 'lambda:InvokeFunction', `${fn('ClassicFunction')}:live`)).toBe('allowed');
    expect(decide(role, 'lambda:InvokeFunction', fn('Elsewhere'))).toBe('allowed');
    expect(role.skipped).toEqual([expect.stringContaining('SAM policy template SQSPollerPolicy')]);
  });
});

describe('DynamoDB condition keys of a request', () => {
  const keys = ['id', 'sort'];
  it('takes the leading keys of items and keys, and a Query\'s partition from its expression or KeyConditions', () => {
    expect(dynamoConditionKeys('PutItem', { items: [{ id: { S: 'a' }, note: { S: 'n' } }], input: {} }, keys)).toEqual({
      'dynamodb:LeadingKeys': ['a'],
      'dynamodb:Attributes': ['id', 'note'],
    });
    const query = { KeyConditionExpression: 'sort > :s AND #k = :v', ExpressionAttributeNames: { '#k': 'id' }, ExpressionAttributeValues: { ':v': { S: 'room' }, ':s': { N: '1' } } };
    expect(dynamoConditionKeys('Query', { input: query }, keys)['dynamodb:LeadingKeys']).toEqual(['room']);
    expect(dynamoConditionKeys('Query', { input: { KeyConditions: { id: { AttributeValueList: [{ S: 'old' }] } } } }, keys)['dynamodb:LeadingKeys']).toEqual(['old']);
    expect(dynamoConditionKeys('Scan', { input: {} }, keys)).toEqual({});
  });

  it('names the top-level attributes an update or a projection touches, through ExpressionAttributeNames', () => {
    const update = {
      UpdateExpression: 'SET #n = if_not_exists(#n, :zero) + :one, meta.seen = :t REMOVE old ADD hits :one',
      ExpressionAttributeNames: { '#n': 'count' },
      ReturnValues: 'UPDATED_NEW',
    };
    expect(dynamoConditionKeys('UpdateItem', { keys: [{ id: { S: 'x' } }], input: update }, keys)).toEqual({
      'dynamodb:LeadingKeys': ['x'],
      'dynamodb:Attributes': ['id', 'sort', 'count', 'meta', 'old', 'hits'],
      'dynamodb:ReturnValues': ['UPDATED_NEW'],
    });
    const get = { ProjectionExpression: '#a, b.c, d[0]', ExpressionAttributeNames: { '#a': 'alpha' }, Select: 'SPECIFIC_ATTRIBUTES' };
    expect(dynamoConditionKeys('GetItem', { keys: [{ id: { S: 'x' } }], input: get }, keys)).toEqual({
      'dynamodb:LeadingKeys': ['x'],
      'dynamodb:Attributes': ['alpha', 'b', 'd'],
      'dynamodb:Select': ['SPECIFIC_ATTRIBUTES'],
    });
  });
});
