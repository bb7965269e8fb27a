/**
 * infra/aws/template.yaml against the CloudFormation resource specification,
 * the contract the emulator and the deploy rely on, and least privilege.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_ID_INDEX, CLIENT_ID_INDEX_ATTRIBUTES, PARTITION_KEY, ROOM_INDEX_ATTRIBUTES, ROOM_INDEX, TTL_ATTRIBUTE } from '../registries/dynamodb-registry.js';
import { loadTemplate, parseTemplate, tableDefinition, ttlAttribute, type Template } from '../scripts/aws-template.js';
import { loadSpecification, validateTemplate, type CfnSpecification } from './support/cfn-spec.js';
import { ofType, policyStatements, subOf } from './support/template-policy.js';

let template: Template;
let spec: CfnSpecification;

beforeAll(async () => {
  template = await loadTemplate();
  spec = loadSpecification();
});

const copy = (): Template => structuredClone(template);
const props = (t: Template, id: string) => t.Resources[id]!.Properties as Record<string, any>;

describe('the template against the CloudFormation resource specification', () => {
  it('uses only known resource types, known property names at every depth, and all required properties', () => {
    expect(Object.keys(spec.ResourceTypes).length).toBeGreaterThan(500);
    expect(validateTemplate(template, spec)).toEqual([]);
  });

  it('fails a misspelled top-level property', () => {
    const broken = copy();
    const table = props(broken, 'ConnectionsTable');
    table.BilingMode = table.BillingMode;
    delete table.BillingMode;
    expect(validateTemplate(broken, spec)).toEqual(['Resources.ConnectionsTable.Properties.BilingMode: AWS::DynamoDB::Table has no property BilingMode']);
  });

  it('fails a misspelled property inside a property type, inside a list', () => {
    const broken = copy();
    const index = props(broken, 'ConnectionsTable').GlobalSecondaryIndexes[1];
    index.Projection = { ProjectionTyp: 'ALL' };
    expect(validateTemplate(broken, spec)).toEqual([
      'Resources.ConnectionsTable.Properties.GlobalSecondaryIndexes[1].Projection.ProjectionTyp: AWS::DynamoDB::Table has no property ProjectionTyp',
    ]);
  });

  it('fails a misspelled resource type, a missing required property and a dangling reference', () => {
    const broken = copy();
    broken.Resources.WelcomeLogGroup!.Type = 'AWS::Logs::LogGrup';
    delete props(broken, 'MessageFunction').Role;
    props(broken, 'Stage').DeploymentId = { Ref: 'Deploymnt' };
    props(broken, 'ConnectRole').Policies[0].PolicyDocument.Statement[1].Resource = { 'Fn::GetAtt': ['ConnectionsTable', 'Arm'] };
    const problems = validateTemplate(broken, spec);
    expect(problems).toContain('Resources.WelcomeLogGroup.Type: unknown resource type AWS::Logs::LogGrup');
    expect(problems).toContain('Resources.MessageFunction.Properties.Role: required by AWS::Lambda::Function');
    expect(problems).toContain('Resources.Stage.Properties.DeploymentId.Ref: refers to Deploymnt, which is neither a parameter nor a resource');
    expect(problems.some((p) => p.includes('AWS::DynamoDB::Table has no attribute Arm'))).toBe(true);
  });

  it('fails a misspelled resource attribute and a bad ${} in Fn::Sub', () => {
    const broken = copy();
    (broken.Resources.Deployment as Record<string, unknown>).DependOn = ['ConnectRoute'];
    broken.Outputs!.WebSocketUrl!.Value = { 'Fn::Sub': 'wss://${WebSocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}' };
    const problems = validateTemplate(broken, spec);
    expect(problems).toContain('Resources.Deployment.DependOn: not a resource attribute');
    expect(problems).toContain('Outputs.WebSocketUrl.Value.Fn::Sub: refers to WebSocketAPI, which is neither a parameter nor a resource');
  });

  it('parses every short-form intrinsic into its long form', () => {
    const parsed = parseTemplate(
      'Resources:\n  X:\n    Type: T\n    Properties:\n      A: !Ref P\n      B: !GetAtt R.Arn\n      C: !Sub "${R.Arn}/index/*"\n      D: !Join [",", [a, !Ref P]]\n      E: !Select [0, !GetAZs ""]\n',
    );
    expect(parsed.Resources.X!.Properties).toEqual({
      A: { Ref: 'P' },
      B: { 'Fn::GetAtt': ['R', 'Arn'] },
      C: { 'Fn::Sub': '${R.Arn}/index/*' },
      D: { 'Fn::Join': [',', ['a', { Ref: 'P' }]] },
      E: { 'Fn::Select': [0, { 'Fn::GetAZs': '' }] },
    });
  });
});

describe('what the emulator, the deploy and the handlers rely on', () => {
  it('takes the code location and the stage as parameters', () => {
    expect(template.Parameters?.CodeBucket?.Type).toBe('String');
    expect(template.Parameters?.CodeKey?.Type).toBe('String');
    expect(template.Parameters?.StageName?.Default).toBe('dev');
  });

  it('declares a WebSocket API routing on $request.body.action', () => {
    expect(template.Resources.WebSocketApi!.Type).toBe('AWS::ApiGatewayV2::Api');
    expect(props(template, 'WebSocketApi')).toMatchObject({ ProtocolType: 'WEBSOCKET', RouteSelectionExpression: '$request.body.action' });
  });

  it('sends $connect, $disconnect and $default through Lambda proxy integrations to their functions', () => {
    const routes: Record<string, Record<string, any>> = Object.fromEntries(ofType(template, 'AWS::ApiGatewayV2::Route').map(([, r]) => [r.Properties!.RouteKey, r.Properties!]));
    expect(Object.keys(routes).sort()).toEqual(['$connect', '$default', '$disconnect']);
    const expected: Record<string, string> = { $connect: 'ConnectFunction', $disconnect: 'DisconnectFunction', $default: 'MessageFunction' };
    for (const [routeKey, route] of Object.entries(routes)) {
      const integrationId = /^integrations\/\$\{(\w+)\}$/.exec((route.Target as { 'Fn::Sub': string })['Fn::Sub'])![1]!;
      const integration = props(template, integrationId);
      expect(integration.IntegrationType).toBe('AWS_PROXY');
      expect(integration.IntegrationUri['Fn::Sub']).toContain(`\${${expected[routeKey]}.Arn}`);
    }
  });

  it('deploys the routes to a stage named by the StageName parameter', () => {
    expect(template.Resources.Deployment!.DependsOn).toEqual(expect.arrayContaining(['ConnectRoute', 'DisconnectRoute', 'DefaultRoute']));
    expect(props(template, 'Stage')).toMatchObject({ StageName: { Ref: 'StageName' }, DeploymentId: { Ref: 'Deployment' } });
  });

  it('runs the four built handlers on a current Node.js runtime, with the table and welcome function in their environment', () => {
    const functions = Object.fromEntries(ofType(template, 'AWS::Lambda::Function').map(([id, r]) => [id, r.Properties as Record<string, any>]));
    expect(Object.keys(functions).sort()).toEqual(['ConnectFunction', 'DisconnectFunction', 'MessageFunction', 'WelcomeFunction']);
    for (const [id, fn] of Object.entries(functions)) {
      expect(fn.Runtime, id).toMatch(/^nodejs(20|22)\.x$/);
      expect(fn.Code).toEqual({ S3Bucket: { Ref: 'CodeBucket' }, S3Key: { Ref: 'CodeKey' } });
      expect(fn.Environment.Variables.CONNECTIONS_TABLE).toEqual({ Ref: 'ConnectionsTable' });
    }
    expect(functions.ConnectFunction!.Environment.Variables.WELCOME_FUNCTION).toEqual({ Ref: 'WelcomeFunction' });
  });

  it('lets API Gateway invoke each route function from this API only', () => {
    const permissions = ofType(template, 'AWS::Lambda::Permission').map(([, r]) => r.Properties as Record<string, any>);
    expect(permissions.map((p) => p.FunctionName.Ref).sort()).toEqual(['ConnectFunction', 'DisconnectFunction', 'MessageFunction']);
    for (const permission of permissions) {
      expect(permission.Principal).toBe('apigateway.amazonaws.com');
      expect(permission.SourceArn['Fn::Sub']).toMatch(/^arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:\$\{WebSocketApi\}\/\*\/\$(connect|disconnect|default)$/);
    }
  });

  it('defines the table the registry expects: on-demand, TTL on expiresAt, sparse room and clientId indexes', () => {
    const table = props(template, 'ConnectionsTable');
    expect(table.BillingMode).toBe('PAY_PER_REQUEST');
    expect(ttlAttribute(template)).toBe(TTL_ATTRIBUTE);
    const definition = tableDefinition(template, 'test');
    expect(definition.KeySchema).toEqual([{ AttributeName: PARTITION_KEY, KeyType: 'HASH' }]);
    const indexes = Object.fromEntries((definition.GlobalSecondaryIndexes ?? []).map((index) => [index.IndexName, index.KeySchema]));
    expect(indexes).toEqual({
      [ROOM_INDEX]: [{ AttributeName: 'room', KeyType: 'HASH' }],
      [CLIENT_ID_INDEX]: [{ AttributeName: 'clientId', KeyType: 'HASH' }],
    });
  });

  it('projects into each index what the registry reads from it, and none of what every frame rewrites', () => {
    const projections = Object.fromEntries((tableDefinition(template, 'test').GlobalSecondaryIndexes ?? []).map((index) => [index.IndexName, index.Projection]));
    expect(projections).toEqual({
      [ROOM_INDEX]: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...ROOM_INDEX_ATTRIBUTES] },
      [CLIENT_ID_INDEX]: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...CLIENT_ID_INDEX_ATTRIBUTES] },
    });
    for (const touched of ['lastActiveAt', 'tat', 'strikes']) expect([...ROOM_INDEX_ATTRIBUTES, ...CLIENT_ID_INDEX_ATTRIBUTES]).not.toContain(touched);
  });

  it('outputs the wss:// URL of the stage', () => {
    expect(template.Outputs?.WebSocketUrl?.Value).toEqual({ 'Fn::Sub': 'wss://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}' });
  });
});

describe('least privilege', () => {
  const statements = () => policyStatements(template);

  it('grants no wildcard actions and no "*" resources', () => {
    const all = statements();
    expect(all.length).toBeGreaterThan(8);
    for (const statement of all) {
      expect(statement.Effect).toBe('Allow');
      for (const action of statement.Action) expect(action, statement.role).not.toMatch(/\*/);
      for (const resource of statement.Resource) expect(resource, statement.role).not.toBe('*');
    }
    expect(ofType(template, 'AWS::IAM::Role').every(([, r]) => !(r.Properties as Record<string, unknown>).ManagedPolicyArns)).toBe(true);
  });

  it('scopes ManageConnections to this API and stage, for the methods used', () => {
    const manage = statements().filter((s) => s.Action.some((a) => a.startsWith('execute-api:')));
    expect(manage.length).toBeGreaterThan(0);
    for (const statement of manage) {
      expect(statement.Action).toEqual(['execute-api:ManageConnections']);
      for (const resource of statement.Resource) {
        expect(subOf(resource)).toMatch(
          /^arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:\$\{WebSocketApi\}\/\$\{StageName\}\/(POST|GET|DELETE)\/@connections\/\*$/,
        );
      }
    }
    // GetConnection is only for the welcome; DeleteConnection for the message handler's closes and for a
    // connection a resume replaced (in $connect, or at a welcome that finds it replaced before it opened).
    const methodsOf = (role: string) => manage.filter((s) => s.role === role).flatMap((s) => s.Resource.map((r) => /\/(POST|GET|DELETE)\//.exec(subOf(r)!)![1])).sort();
    expect(methodsOf('WelcomeRole')).toEqual(['DELETE', 'GET', 'POST']);
    expect(methodsOf('MessageRole')).toEqual(['DELETE', 'POST']);
    expect(methodsOf('DisconnectRole')).toEqual(['POST']);
    expect(methodsOf('ConnectRole')).toEqual(['DELETE', 'POST']);
  });

  it('scopes DynamoDB actions to the connections table and its indexes, and never allows Scan', () => {
    const dynamo = statements().filter((s) => s.Action.some((a) => a.startsWith('dynamodb:')));
    expect(dynamo.length).toBeGreaterThan(0);
    for (const statement of dynamo) {
      expect(statement.Action.every((a) => a.startsWith('dynamodb:'))).toBe(true);
      expect(statement.Action).not.toContain('dynamodb:Scan');
      for (const resource of statement.Resource) {
        const onTable = JSON.stringify(resource) === JSON.stringify({ 'Fn::GetAtt': ['ConnectionsTable', 'Arn'] });
        const onIndexes = subOf(resource) === '${ConnectionsTable.Arn}/index/*';
        expect(onTable || onIndexes, JSON.stringify(resource)).toBe(true);
        if (statement.Action.includes('dynamodb:Query')) expect(onIndexes).toBe(true);
      }
    }
  });

  it('lets only $connect invoke a function, and only the welcome function', () => {
    const invoke = statements().filter((s) => s.Action.some((a) => a.startsWith('lambda:')));
    expect(invoke).toEqual([{ role: 'ConnectRole', Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: [{ 'Fn::GetAtt': ['WelcomeFunction', 'Arn'] }] }]);
  });

  it('lets each function write only to its own log group', () => {
    const logs = statements().filter((s) => s.Action.some((a) => a.startsWith('logs:')));
    expect(logs.map((s) => s.role).sort()).toEqual(['ConnectRole', 'DisconnectRole', 'MessageRole', 'WelcomeRole']);
    for (const statement of logs) {
      const name = statement.role.replace(/Role$/, '').toLowerCase();
      expect(statement.Resource.map(subOf)).toEqual([`arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/\${AWS::StackName}-${name}:*`]);
    }
  });
});
