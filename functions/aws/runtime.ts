/**
 * What the handlers of one `createAwsHandlers` call share in a Lambda
 * container: settings, SDK clients and engines, created on first use and kept
 * for the container's life. Built lazily so a bad setting becomes a logged
 * 500, not a failed cold start.
 */
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import type { App } from '../../shared/app.js';
import { Engine } from '../../shared/engine.js';
import { ConfigError } from '../../shared/errors.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { MemoryRoomLog } from '../../shared/memory-room-log.js';
import type { ConnectionRegistry } from '../../shared/registry.js';
import type { RoomLog } from '../../shared/room-log.js';
import type { StateStore } from '../../shared/room-state.js';
import { DynamoDbRegistry } from '../../registries/dynamodb-registry.js';
import { DynamoDbStateStore } from '../../registries/dynamodb-state.js';
import { DynamoDbRoomLog } from '../../registries/dynamodb-room-log.js';
import type { WebSocketResult } from './events.js';
import { SignedManagementTransport } from './signed-management-transport.js';
import { sourceMappedStack, stacksAlreadyMapped } from './source-mapped-stack.js';
import { withOverrides } from '../../shared/settings.js';
import { readAwsSettings, type AwsSettings, type AwsSettingsOverrides } from './settings.js';

/** Where the management API of a stage is: from the event, unless the SDK is pointed elsewhere. */
export interface StageAddress {
  domainName: string;
  stage: string;
}

export interface AwsHandlerOptions {
  /** Where connections live; default the DynamoDB table named by CONNECTIONS_TABLE. */
  registry?: ConnectionRegistry;
  /**
   * The rooms' logs; every container of a deployment must share one for seqs
   * and resumes to hold across them. Default: in the table named by
   * CONNECTIONS_TABLE, beside the registry; without that table, the
   * container's memory.
   */
  log?: RoomLog;
  /** Where `ctx.state` lives; default the same table, which every function of the stack reaches. */
  state?: StateStore;
  /** Over the settings read from the environment. */
  settings?: AwsSettingsOverrides;
  /** Default: JSON lines on stdout (CloudWatch) at LOG_LEVEL. */
  logger?: Logger;
}

export interface Runtime {
  settings: AwsSettings;
  logger: Logger;
  registry: ConnectionRegistry;
  state: StateStore;
  /** GetConnection at the stage `address` names: whether API Gateway has the connection open. */
  connectionOpen(address: StageAddress, connectionId: string): Promise<boolean>;
  engine(address: StageAddress): Engine;
}

/** The runtime of one app, made on the first invocation that needs it. */
export function lazyRuntime(app: App, options: AwsHandlerOptions): () => Runtime {
  let shared: Runtime | undefined;
  return () => (shared ??= createRuntime(app, options, process.env));
}

function createRuntime(app: App, options: AwsHandlerOptions, env: NodeJS.ProcessEnv): Runtime {
  const settings = withOverrides(readAwsSettings(env), options.settings);
  const logger = options.logger ?? createLogger(settings.logLevel, undefined, stacksAlreadyMapped() ? {} : { stackOf: sourceMappedStack });
  let dynamo: DynamoDBClient | undefined;
  // The endpoint comes from the SDK's own AWS_ENDPOINT_URL_DYNAMODB when set (the emulator sets it).
  const dynamoClient = () => (dynamo ??= new DynamoDBClient({ logger: SDK_LOGGER }));
  const log = options.log ?? roomLogFor(settings, dynamoClient);
  // The log learns where its slots stand from the registry's room Queries (see dynamodb-room-log.ts).
  const registry = options.registry ?? dynamoDbRegistry(settings, dynamoClient(), log instanceof DynamoDbRoomLog ? log : undefined);
  const state = options.state ?? dynamoDbState(settings, dynamoClient);
  const transports = new Map<string, SignedManagementTransport>();
  const engines = new Map<string, Engine>();

  // Posts, GetConnection and DeleteConnection go out without the SDK client (see signed-management-transport.ts).
  const transportOf = (address: StageAddress): SignedManagementTransport => {
    const key = managementEndpoint(env, address) ?? '';
    let transport = transports.get(key);
    if (!transport) {
      transport = new SignedManagementTransport({ endpoint: managementUrl(env, address), region: regionOf(env), maxSockets: settings.core.fanoutConcurrency });
      transports.set(key, transport);
    }
    return transport;
  };

  return {
    settings,
    logger,
    registry,
    state,
    connectionOpen: (address, connectionId) => transportOf(address).isOpen(connectionId),
    engine(address) {
      const key = managementEndpoint(env, address) ?? '';
      let engine = engines.get(key);
      if (!engine) {
        engine = new Engine({ app, registry, log, state, transport: transportOf(address), settings: settings.core, logger });
        engines.set(key, engine);
      }
      return engine;
    },
  };
}

function dynamoDbRegistry(settings: AwsSettings, client: DynamoDBClient, roomLog: DynamoDbRoomLog | undefined): DynamoDbRegistry {
  if (!settings.tableName) throw new ConfigError('CONNECTIONS_TABLE must name the DynamoDB table of the connection registry');
  return new DynamoDbRegistry({ client, tableName: settings.tableName, ttlSeconds: settings.connectionTtlSeconds, ...(roomLog ? { roomLog } : {}) });
}

/**
 * The table's room state. An app that brings its own registry may run
 * without the table; then only using `ctx.state` fails (as `unavailable`),
 * not every invocation.
 */
function dynamoDbState(settings: AwsSettings, client: () => DynamoDBClient): StateStore {
  if (settings.tableName) return new DynamoDbStateStore({ client: client(), tableName: settings.tableName, ttlMs: settings.core.roomStateTtlMs });
  const missing = async (): Promise<never> => {
    throw new ConfigError('CONNECTIONS_TABLE must name the DynamoDB table room state is kept in, or createAwsHandlers be given `state`');
  };
  return { get: missing, set: missing, delete: missing, increment: missing, list: missing };
}

/**
 * The rooms' logs in the registry's table, which every container shares, so
 * seqs and resumes hold across functions and containers. Without a table (a
 * registry of the caller's own and no CONNECTIONS_TABLE) the container's memory.
 */
function roomLogFor(settings: AwsSettings, client: () => DynamoDBClient): RoomLog {
  const { roomLog, resumeTokenTtlMs } = settings.core;
  if (!settings.tableName) return new MemoryRoomLog({ ...roomLog, numberingKeptMs: resumeTokenTtlMs });
  return new DynamoDbRoomLog({ client: client(), tableName: settings.tableName, limits: roomLog });
}

/** The management API's URL as the SDK would resolve it: its endpoint variables first, else the stage's own. */
function managementUrl(env: NodeJS.ProcessEnv, address: StageAddress): string {
  return managementEndpoint(env, address) ?? (env.AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI || env.AWS_ENDPOINT_URL)!;
}

/** Lambda sets AWS_REGION; the SDK reads the same. */
function regionOf(env: NodeJS.ProcessEnv): string {
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (!region) throw new ConfigError('AWS_REGION must name the region the management API is signed for (Lambda sets it)');
  return region;
}

/** undefined: let the SDK take AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI (or AWS_ENDPOINT_URL). */
function managementEndpoint(env: NodeJS.ProcessEnv, { domainName, stage }: StageAddress): string | undefined {
  if (env.AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI || env.AWS_ENDPOINT_URL) return undefined;
  return `https://${domainName}/${stage}`;
}

/**
 * The SDK clients' logger: silent, as the SDK's default NoOpLogger is, but
 * without `info`. The SDK's loggerMiddleware calls
 * `logger?.info?.({ input: inputFilterSensitiveLog(args.input), output: outputFilterSensitiveLog(output), … })`
 * after every command (@aws-sdk/core, submodules/client/middleware-logger), and
 * with the NoOpLogger's empty `info` it still walks each request and answer
 * through the schemas to mask sensitive members, only to log nothing. Nothing
 * else in the SDK calls `info`; the other levels stay, as no-ops, for the code that calls them unguarded.
 */
export const SDK_LOGGER = { trace() {}, debug() {}, warn() {}, error() {} } as unknown as NonNullable<DynamoDBClientConfig['logger']>;

export const INTERNAL_ERROR: WebSocketResult = { statusCode: 500, body: 'internal error' };

/**
 * Runs a handler body; anything it throws is logged and answered with a bare
 * 500, so no stack trace or SDK message ever reaches API Gateway's caller.
 */
export async function guarded(
  runtime: () => Runtime,
  handlerName: string,
  connectionId: string,
  body: (rt: Runtime) => Promise<WebSocketResult>,
  failure: WebSocketResult = INTERNAL_ERROR,
): Promise<WebSocketResult> {
  let rt: Runtime;
  try {
    rt = runtime();
  } catch (error) {
    fallbackLogger.error('runtime_unavailable', { handler: handlerName, connectionId, error });
    return failure;
  }
  try {
    return await body(rt);
  } catch (error) {
    rt.logger.error(`${handlerName}_failed`, { connectionId, error });
    return failure;
  }
}

const fallbackLogger = createLogger('error');
