/**
 * What the emulator takes from the CloudFormation template: the WebSocket
 * API's routes and route selection expression, the Lambda functions behind
 * them (handler file, environment with intrinsics resolved, timeout), and the
 * connections table. Names are those a deployed stack would have, made
 * deterministic so logs and tests can rely on them.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { CONNECTIONS_TABLE_ID, tableDefinition, TemplateError, ttlAttribute, type Template, type TemplateResource as Resource } from '../aws-template.js';
import { HandlerNotBuiltError } from './errors.js';
import { referencedResources, resolveValue, type LocalStack } from './intrinsics.js';
import { compileSelectionExpression } from './route-selection.js';

export interface FunctionSpec {
  logicalId: string;
  name: string;
  arn: string;
  /** The built module, e.g. dist/aws/connect.mjs. */
  file: string;
  /** The export named after the dot in the Handler string. */
  exportName: string;
  /** Environment.Variables with every intrinsic resolved. */
  environment: Record<string, string>;
  timeoutMs: number;
  memoryMb: number;
  runtime: string;
}

export interface RouteSpec {
  routeKey: string;
  functionName: string;
  /** A route response is configured: the integration's `body` goes back to the client. */
  returnsResponse: boolean;
}

export interface TableSpec {
  name: string;
  /** The CreateTable request for a local DynamoDB. */
  definition: CreateTableCommandInput;
  /** TimeToLiveSpecification.AttributeName when TTL is enabled. */
  ttlAttribute: string | undefined;
}

export interface EmulatedStack {
  apiId: string;
  region: string;
  accountId: string;
  routeSelectionExpression: string;
  routes: Map<string, RouteSpec>;
  functions: Map<string, FunctionSpec>;
  table: TableSpec | undefined;
}

export interface StackOptions {
  template: Template;
  distDir: string;
  stage: string;
  region: string;
  stackName?: string;
  accountId?: string;
}

/** Lambda's default when a function sets no Timeout. */
const DEFAULT_TIMEOUT_SECONDS = 3;

export function readStack(options: StackOptions): EmulatedStack {
  const { template, distDir, region } = options;
  const stackName = options.stackName ?? 'cloudsocket';
  const accountId = options.accountId ?? '000000000000';
  if (!template || typeof template.Resources !== 'object') throw new TemplateError('no Resources section');
  const apiId = createHash('sha256').update(stackName).digest('base64').replace(/[^a-z0-9]/g, '').slice(0, 10).padEnd(10, '0');
  const parameters: Record<string, string> = template.Parameters?.StageName ? { StageName: options.stage } : {};

  const local: LocalStack = {
    template,
    stackName,
    region,
    accountId,
    parameters,
    physicalId: (logicalId) => physicalId(local, logicalId, apiId),
    attribute: (logicalId, name) => attribute(local, logicalId, name, apiId),
  };

  const functions = new Map<string, FunctionSpec>();
  for (const [logicalId, resource] of resourcesOfType(template, 'AWS::Lambda::Function', 'AWS::Serverless::Function')) {
    const spec = readFunction(local, logicalId, resource, distDir);
    functions.set(spec.name, spec);
  }

  const apis = resourcesOfType(template, 'AWS::ApiGatewayV2::Api').filter(([, r]) => r.Properties?.ProtocolType === 'WEBSOCKET');
  if (apis.length !== 1) throw new TemplateError(`expected one AWS::ApiGatewayV2::Api with ProtocolType WEBSOCKET, found ${apis.length}`);
  const [apiLogicalId, api] = apis[0]!;
  const routeSelectionExpression = resolveValue(local, api.Properties?.RouteSelectionExpression ?? '$request.body.action', apiLogicalId);
  // At load, so an expression the emulator cannot evaluate is one error naming it, not a silent $default for every frame.
  compileSelectionExpression(routeSelectionExpression);

  const routes = new Map<string, RouteSpec>();
  for (const [logicalId, route] of resourcesOfType(template, 'AWS::ApiGatewayV2::Route')) {
    const routeKey = resolveValue(local, route.Properties?.RouteKey, `${logicalId}.RouteKey`);
    const integrationId = referencedResources(template, route.Properties?.Target).find(
      (id) => template.Resources[id]!.Type === 'AWS::ApiGatewayV2::Integration',
    );
    if (!integrationId) throw new TemplateError(`${logicalId}: Target does not name an AWS::ApiGatewayV2::Integration`);
    const integration = template.Resources[integrationId]!;
    const functionId = referencedResources(template, integration.Properties?.IntegrationUri).find(
      (id) => template.Resources[id]!.Type === 'AWS::Lambda::Function' || template.Resources[id]!.Type === 'AWS::Serverless::Function',
    );
    if (!functionId) throw new TemplateError(`${integrationId}: IntegrationUri does not name a Lambda function in this template`);
    routes.set(routeKey, {
      routeKey,
      functionName: local.physicalId(functionId),
      returnsResponse: route.Properties?.RouteResponseSelectionExpression !== undefined,
    });
  }

  let table: TableSpec | undefined;
  if (template.Resources[CONNECTIONS_TABLE_ID]) {
    const name = local.physicalId(CONNECTIONS_TABLE_ID);
    table = { name, definition: tableDefinition(template, name), ttlAttribute: ttlAttribute(template) };
  }
  return { apiId, region, accountId, routeSelectionExpression, routes, functions, table };
}

function readFunction(stack: LocalStack, logicalId: string, resource: Resource, distDir: string): FunctionSpec {
  const properties = resource.Properties ?? {};
  const handler = resolveValue(stack, properties.Handler, `${logicalId}.Handler`);
  const dot = handler.lastIndexOf('.');
  if (dot <= 0) throw new TemplateError(`${logicalId}.Handler "${handler}" must look like file.export`);
  const base = handler.slice(0, dot);
  // Lambda's Node.js runtime looks for these extensions in this order.
  const candidates = ['.js', '.mjs', '.cjs'].map((ext) => join(distDir, base + ext));
  const file = candidates.find((candidate) => existsSync(candidate));
  if (!file) throw new HandlerNotBuiltError(candidates[1]!);

  const variables = ((properties.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {}) as Record<string, unknown>;
  const environment: Record<string, string> = {};
  for (const [name, value] of Object.entries(variables)) {
    environment[name] = resolveValue(stack, value, `${logicalId}.Environment.Variables.${name}`);
  }
  const name = stack.physicalId(logicalId);
  return {
    logicalId,
    name,
    arn: `arn:aws:lambda:${stack.region}:${stack.accountId}:function:${name}`,
    file,
    exportName: handler.slice(dot + 1),
    environment,
    timeoutMs: Number(properties.Timeout ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
    memoryMb: Number(properties.MemorySize ?? 128),
    runtime: typeof properties.Runtime === 'string' ? properties.Runtime : 'nodejs20.x',
  };
}

function resourcesOfType(template: Template, ...types: string[]): Array<[string, Resource]> {
  return Object.entries(template.Resources).filter(([, resource]) => types.includes(resource.Type));
}

/** Names CloudFormation would generate are `stack-LogicalId-RANDOM`; ours drop the random part. */
function physicalId(stack: LocalStack, logicalId: string, apiId: string): string {
  const resource = stack.template.Resources[logicalId]!;
  const properties = resource.Properties ?? {};
  const named = (property: string) =>
    properties[property] !== undefined ? resolveValue(stack, properties[property], `${logicalId}.${property}`) : `${stack.stackName}-${logicalId}`;
  switch (resource.Type) {
    case 'AWS::Lambda::Function':
    case 'AWS::Serverless::Function':
      return named('FunctionName');
    case 'AWS::DynamoDB::Table':
      return named('TableName');
    case 'AWS::IAM::Role':
      return named('RoleName');
    case 'AWS::ApiGatewayV2::Api':
      return apiId;
    case 'AWS::ApiGatewayV2::Stage':
      return resolveValue(stack, properties.StageName, `${logicalId}.StageName`);
    default:
      return logicalId;
  }
}

function attribute(stack: LocalStack, logicalId: string, name: string, apiId: string): string | undefined {
  const resource = stack.template.Resources[logicalId]!;
  const id = stack.physicalId(logicalId);
  const { region, accountId } = stack;
  switch (`${resource.Type}.${name}`) {
    case 'AWS::Lambda::Function.Arn':
    case 'AWS::Serverless::Function.Arn':
      return `arn:aws:lambda:${region}:${accountId}:function:${id}`;
    case 'AWS::DynamoDB::Table.Arn':
      return `arn:aws:dynamodb:${region}:${accountId}:table/${id}`;
    case 'AWS::IAM::Role.Arn':
      return `arn:aws:iam::${accountId}:role/${id}`;
    case 'AWS::ApiGatewayV2::Api.ApiId':
      return apiId;
    case 'AWS::ApiGatewayV2::Api.ApiEndpoint':
      return `wss://${apiId}.execute-api.${region}.amazonaws.com`;
    default:
      return undefined;
  }
}
