/**
 * What the emulator takes from the CloudFormation template: the WebSocket
 * API's routes and route selection expression, the Lambda functions behind
 * them (handler file, environment with intrinsics resolved, timeout), and the
 * connections table. Names are those a deployed stack would have, made
 * deterministic so logs and tests can rely on them.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { CONNECTIONS_TABLE_ID, tableDefinition, TemplateError, ttlAttribute, type Template, type TemplateResource as Resource } from '../aws-template.js';
import { HandlerNotBuiltError } from './errors.js';
import { getsSamRole, readRole, readSamRole, type RolePolicy } from './iam.js';
import { referencedResources, resolveValue, type LocalStack } from './intrinsics.js';
import { invokeRefusal } from './invoke-permission.js';
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
  /**
   * How long an asynchronous event may wait for an environment before Lambda
   * drops it: MaximumEventAgeInSeconds of the function's EventInvokeConfig
   * (or SAM's EventInvokeConfig property), else Lambda's default of 6 hours.
   */
  maximumEventAgeMs: number;
  /**
   * The template's role for it (for a SAM function without a Role, the one SAM
   * makes from its Policies); undefined when it names none the template
   * defines (its calls are then not checked).
   */
  role: RolePolicy | undefined;
  /** Added to each new environment's init (the emulator's cold-start option). */
  coldStartMs?: number;
}

export interface RouteSpec {
  routeKey: string;
  functionName: string;
  /** A route response is configured: the integration's `body` goes back to the client. */
  returnsResponse: boolean;
  /** Why API Gateway may not invoke the function (invoke-permission.ts); undefined when it may. */
  invokeRefusal?: string;
}

export interface TableSpec {
  logicalId: string;
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
  /** Every table of the template (AWS::DynamoDB::Table and SAM's AWS::Serverless::SimpleTable). */
  tables: TableSpec[];
  /** The connections table: the one named ConnectionsTable, else the only one. */
  table: TableSpec | undefined;
}

export interface StackOptions {
  template: Template;
  distDir: string;
  /** The template's folder: SAM's CodeUri folders are relative to it. */
  templateDir?: string;
  stage: string;
  region: string;
  stackName?: string;
  accountId?: string;
}

/** Lambda's default when a function sets no Timeout. */
const DEFAULT_TIMEOUT_SECONDS = 3;

/** Lambda's default MaximumEventAgeInSeconds: asynchronous events are kept for up to 6 hours. */
const DEFAULT_MAXIMUM_EVENT_AGE_SECONDS = 21_600;

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
    const merged = withGlobals(template, resource);
    const spec = readFunction(local, logicalId, merged, options.templateDir ? codeFolder(merged, options.templateDir, distDir) : distDir);
    functions.set(spec.name, spec);
  }
  for (const [logicalId, config] of resourcesOfType(template, 'AWS::Lambda::EventInvokeConfig')) {
    const age = config.Properties?.MaximumEventAgeInSeconds;
    const spec = functions.get(resolveValue(local, config.Properties?.FunctionName, `${logicalId}.FunctionName`));
    if (spec && age !== undefined) spec.maximumEventAgeMs = Number(resolveValue(local, age, `${logicalId}.MaximumEventAgeInSeconds`)) * 1000;
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
    const sourceArn = `arn:aws:execute-api:${region}:${accountId}:${apiId}/${options.stage}/${routeKey}`;
    const invokeRefused = invokeRefusal(local, { integrationId, integration, functionId, sourceArn });
    routes.set(routeKey, {
      routeKey,
      functionName: local.physicalId(functionId),
      returnsResponse: route.Properties?.RouteResponseSelectionExpression !== undefined,
      ...(invokeRefused === undefined ? {} : { invokeRefusal: invokeRefused }),
    });
  }

  const tables = resourcesOfType(template, 'AWS::DynamoDB::Table', 'AWS::Serverless::SimpleTable').map(([logicalId]): TableSpec => {
    const name = local.physicalId(logicalId);
    return { logicalId, name, definition: tableDefinition(template, name, logicalId), ttlAttribute: ttlAttribute(template, logicalId) };
  });
  const table = tables.find((spec) => spec.logicalId === CONNECTIONS_TABLE_ID) ?? (tables.length === 1 ? tables[0] : undefined);
  return { apiId, region, accountId, routeSelectionExpression, routes, functions, tables, table };
}

/** The stage the template deploys: its AWS::ApiGatewayV2::Stage's StageName, a literal or a parameter's default. */
export function stageOfTemplate(template: Template): string | undefined {
  for (const [, stage] of resourcesOfType(template, 'AWS::ApiGatewayV2::Stage')) {
    const name = stage.Properties?.StageName as unknown;
    if (typeof name === 'string') return name;
    const ref = (name as { Ref?: unknown } | undefined)?.Ref;
    const fallback = typeof ref === 'string' ? template.Parameters?.[ref]?.Default : undefined;
    if (typeof fallback === 'string') return fallback;
  }
  return undefined;
}

/** SAM's Globals.Function under the function's own properties (its Environment.Variables merged, the function's winning). */
function withGlobals(template: Template, resource: Resource): Resource {
  if (resource.Type !== 'AWS::Serverless::Function') return resource;
  const globals = ((template as { Globals?: { Function?: Record<string, unknown> } }).Globals?.Function ?? {}) as Record<string, unknown>;
  const own = resource.Properties ?? {};
  const variables = {
    ...((globals.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {}),
    ...((own.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {}),
  };
  return { ...resource, Properties: { ...globals, ...own, Environment: { Variables: variables } } };
}

/** Where a function's code is: SAM's CodeUri folder when it names a local one, else the build's folder. */
function codeFolder(resource: Resource, templateDir: string, distDir: string): string {
  const codeUri = resource.Properties?.CodeUri;
  return typeof codeUri === 'string' && !codeUri.startsWith('s3://') ? resolve(templateDir, codeUri) : distDir;
}

function readFunction(stack: LocalStack, logicalId: string, resource: Resource, distDir: string): FunctionSpec {
  const properties = resource.Properties ?? {};
  // What the emulator cannot run is named, rather than reported as a missing Handler or file.
  if (properties.PackageType === 'Image') throw new TemplateError(`${logicalId}: PackageType Image (a container image) is not run by the emulator; it runs .zip functions (Handler and Runtime)`);
  if (properties.InlineCode !== undefined || (properties.Code as { ZipFile?: unknown } | undefined)?.ZipFile !== undefined) {
    throw new TemplateError(`${logicalId}: code written into the template (InlineCode, Code.ZipFile) is not run by the emulator; put it in a folder and point CodeUri at it`);
  }
  const codeUri = properties.CodeUri;
  if (typeof codeUri === 'string' && codeUri.startsWith('s3://')) throw new TemplateError(`${logicalId}.CodeUri ${codeUri}: code in S3 is not fetched by the emulator; point CodeUri at a local folder`);
  if (properties.Handler === undefined) throw new TemplateError(`${logicalId}: no Handler (file.export) is given`);
  const handler = resolveValue(stack, properties.Handler, `${logicalId}.Handler`);
  const dot = handler.lastIndexOf('.');
  if (dot <= 0) throw new TemplateError(`${logicalId}.Handler "${handler}" must look like file.export`);
  const base = handler.slice(0, dot);
  // Lambda's Node.js runtime looks for these extensions in this order.
  const candidates = ['.js', '.mjs', '.cjs'].map((ext) => join(distDir, base + ext));
  const file = candidates.find((candidate) => existsSync(candidate));
  if (!file && existsSync(join(distDir, `${base}.ts`))) {
    throw new TemplateError(`${logicalId}.Handler "${handler}": ${join(distDir, `${base}.ts`)} is TypeScript, which Lambda's Node.js runtime does not run; compile it to .js or .mjs first`);
  }
  if (!file) throw new HandlerNotBuiltError(candidates[1]!);

  const variables = ((properties.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {}) as Record<string, unknown>;
  const environment: Record<string, string> = {};
  for (const [name, value] of Object.entries(variables)) {
    environment[name] = resolveValue(stack, value, `${logicalId}.Environment.Variables.${name}`);
  }
  const name = stack.physicalId(logicalId);
  const samEventAge = (properties.EventInvokeConfig as { MaximumEventAgeInSeconds?: unknown } | undefined)?.MaximumEventAgeInSeconds;
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
    maximumEventAgeMs:
      (samEventAge === undefined ? DEFAULT_MAXIMUM_EVENT_AGE_SECONDS : Number(resolveValue(stack, samEventAge, `${logicalId}.EventInvokeConfig.MaximumEventAgeInSeconds`))) * 1000,
    role: getsSamRole(resource)
      ? readSamRole(stack, logicalId, properties.Policies, properties.PermissionsBoundary)
      : properties.Role === undefined
        ? undefined
        : readRole(stack, properties.Role, logicalId),
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
    case 'AWS::Serverless::SimpleTable':
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
    case 'AWS::Serverless::SimpleTable.Arn':
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
