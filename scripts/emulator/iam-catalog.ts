/**
 * The policies a template names rather than spells out: AWS managed policies
 * by ARN (or, in SAM's `Policies`, by name) and SAM's policy templates. Only
 * the statements about the services the emulator checks (DynamoDB, Lambda
 * Invoke, execute-api) are kept; the rest of a managed policy cannot change
 * any decision here. Sources, read 2026-12-01: the AWS Managed Policy
 * Reference (docs.aws.amazon.com/aws-managed-policy/latest/reference/NAME.html)
 * for the managed policies, and aws/serverless-application-model's
 * samtranslator/policy_templates_data/policy_templates.json for the templates
 * (see docs/emulator.md).
 */

/** A policy statement as written in JSON, its values already strings. */
export interface RawStatement {
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

const allow = (Action: string[], Resource: string | string[]): RawStatement => ({ Effect: 'Allow', Action, Resource });

/** Managed policies WebSocket apps attach, by name (the ARN's last part). */
const MANAGED: Record<string, { path: string; statements: RawStatement[] }> = {
  // CloudWatch Logs only, which the emulator never calls: its statement cannot allow any checked call.
  AWSLambdaBasicExecutionRole: { path: 'service-role/', statements: [allow(['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'], '*')] },
  AWSLambdaRole: { path: 'service-role/', statements: [allow(['lambda:InvokeFunction'], '*')] },
  AmazonAPIGatewayInvokeFullAccess: { path: '', statements: [allow(['execute-api:Invoke', 'execute-api:ManageConnections'], 'arn:aws:execute-api:*:*:*')] },
  AmazonDynamoDBFullAccess: { path: '', statements: [allow(['dynamodb:*'], '*')] },
  AmazonDynamoDBReadOnlyAccess: {
    path: '',
    statements: [
      allow(
        [
          'dynamodb:BatchGetItem',
          'dynamodb:Describe*',
          'dynamodb:List*',
          'dynamodb:GetAbacStatus',
          'dynamodb:GetItem',
          'dynamodb:GetResourcePolicy',
          'dynamodb:Query',
          'dynamodb:Scan',
          'dynamodb:PartiQLSelect',
        ],
        '*',
      ),
    ],
  },
  AWSLambdaDynamoDBExecutionRole: {
    path: 'service-role/',
    statements: [allow(['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'], '*')],
  },
};

/** The statements of an AWS managed policy named by its ARN; undefined for one not in the table. */
export function managedPolicy(arn: string): RawStatement[] | undefined {
  const match = /^arn:aws[a-z-]*:iam::aws:policy\/(?:[\w-]+\/)*([\w+=,.@-]+)$/.exec(arn);
  return match ? MANAGED[match[1]!]?.statements : undefined;
}

/** The ARN SAM writes for a managed policy `Policies` names by its bare name; undefined for a name it does not know. */
export function managedPolicyArn(name: string): string | undefined {
  const entry = MANAGED[name];
  return entry ? `arn:aws:iam::aws:policy/${entry.path}${name}` : undefined;
}

export interface TemplateScope {
  region: string;
  accountId: string;
}

type PolicyTemplate = { parameters: string[]; statements: (p: Record<string, string>, at: TemplateScope) => RawStatement[] };

const tableArns = (name: string, { region, accountId }: TemplateScope) => [
  `arn:aws:dynamodb:${region}:${accountId}:table/${name}`,
  `arn:aws:dynamodb:${region}:${accountId}:table/${name}/index/*`,
];

/** SAM's policy templates that WebSocket apps on API Gateway, Lambda and DynamoDB use. */
const TEMPLATES: Record<string, PolicyTemplate> = {
  DynamoDBCrudPolicy: {
    parameters: ['TableName'],
    statements: (p, at) => [
      allow(
        [
          'dynamodb:GetItem',
          'dynamodb:DeleteItem',
          'dynamodb:PutItem',
          'dynamodb:Scan',
          'dynamodb:Query',
          'dynamodb:UpdateItem',
          'dynamodb:BatchWriteItem',
          'dynamodb:BatchGetItem',
          'dynamodb:DescribeTable',
          'dynamodb:ConditionCheckItem',
        ],
        tableArns(p.TableName!, at),
      ),
    ],
  },
  DynamoDBReadPolicy: {
    parameters: ['TableName'],
    statements: (p, at) => [allow(['dynamodb:GetItem', 'dynamodb:Scan', 'dynamodb:Query', 'dynamodb:BatchGetItem', 'dynamodb:DescribeTable'], tableArns(p.TableName!, at))],
  },
  DynamoDBWritePolicy: {
    parameters: ['TableName'],
    statements: (p, at) => [allow(['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem'], tableArns(p.TableName!, at))],
  },
  // The trailing `*` is SAM's: it also covers the function's versions and aliases.
  LambdaInvokePolicy: {
    parameters: ['FunctionName'],
    statements: (p, { region, accountId }) => [allow(['lambda:InvokeFunction'], `arn:aws:lambda:${region}:${accountId}:function:${p.FunctionName}*`)],
  },
  DynamoDBStreamReadPolicy: {
    parameters: ['TableName', 'StreamName'],
    statements: (p, { region, accountId }) => [
      allow(['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'], `arn:aws:dynamodb:${region}:${accountId}:table/${p.TableName}/stream/${p.StreamName}`),
      allow(['dynamodb:ListStreams'], `arn:aws:dynamodb:${region}:${accountId}:table/${p.TableName}/stream/*`),
    ],
  },
};

/** Whether SAM has a template of that name that the emulator expands. */
export function isPolicyTemplate(name: string): boolean {
  return Object.hasOwn(TEMPLATES, name);
}

/** A SAM policy template's statements with its parameters filled in; a missing parameter is an error naming it. */
export function expandPolicyTemplate(name: string, parameters: Record<string, string>, at: TemplateScope): RawStatement[] {
  const template = TEMPLATES[name]!;
  const missing = template.parameters.find((parameter) => parameters[parameter] === undefined);
  if (missing) throw new Error(`${name} needs its ${missing} parameter`);
  return template.statements(parameters, at);
}
