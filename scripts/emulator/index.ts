/**
 * The local AWS stack: API Gateway's WebSocket side and @connections API, the
 * Lambda Invoke API, the BUILT handlers running as Lambda runs them, and a
 * DynamoDB with the template's table, all read from infra/aws/template.yaml
 * and served from one port: ws://127.0.0.1:PORT/STAGE, and the management and
 * Lambda APIs on it also over TLS, at https://127.0.0.1:PORT (see tls.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from '../../shared/log.js';
import { pageHeaders } from '../../shared/page-headers.js';
import { parseRequestTarget } from '../../shared/request-target.js';
import { DEFAULT_TEMPLATE_PATH, loadTemplate, type Template } from '../aws-template.js';
import { existsSync } from 'node:fs';
import { builtInProject } from '../build.js';
import { sendJson } from './aws-responses.js';
import { Chaos, type ChaosOptions } from './chaos.js';
import { CostMeter, type CostReport } from './cost-meter.js';
import { AccessControl } from './credentials.js';
import { DynamoProxy } from './dynamo-proxy.js';
import { ensureTable, LOCAL_CREDENTIALS, startDynamo } from './dynamo.js';
import { PortInUseError } from './errors.js';
import { Gateway } from './gateway.js';
import { LambdaApi } from './lambda-api.js';
import { LambdaRuntime, type FunctionStats } from './lambda-runtime.js';
import { ManagementApi } from './management-api.js';
import { readStack, stageOfTemplate, type EmulatedStack } from './stack.js';
import { makeCertificate, routeByFirstByte } from './tls.js';
import { indexShapesOf } from './index-write-units.js';
import { TtlSweeper } from './ttl-sweeper.js';

export interface EmulatorOptions {
  /** Default 3001; 0 picks a free port. */
  port?: number;
  host?: string;
  stage?: string;
  region?: string;
  templatePath?: string;
  /** A parsed template, instead of reading templatePath. */
  template?: Template;
  /** Where the built handlers are (default dist/aws); its template.yaml, when there is one, is the default template. */
  distDir?: string;
  /** API Gateway closes a connection without client frames for this long (default 10 min). */
  idleTimeoutMs?: number;
  /** API Gateway closes every connection after this long (default 2 h). */
  maxConnectionMs?: number;
  /** A connection whose client has stopped reading is cut once this many bytes wait for it (default 4 MiB, as the CloudBase target). */
  maxBufferedBytes?: number;
  /** A DynamoDB to use instead of the embedded dynalite (default $AWS_ENDPOINT_URL_DYNAMODB). */
  dynamoEndpoint?: string;
  /** How often expired TTL items are deleted (default 60 s). */
  ttlSweepMs?: number;
  /** Extra environment variables for every function, over the template's own. */
  functionEnv?: Record<string, string>;
  /** Execution environments per function at most (default 4). */
  maxEnvironments?: number;
  logger?: Logger;
  /** Each line a handler writes; by default its JSON log lines are re-logged with a `function` field. */
  onLog?: (functionName: string, line: string) => void;
  /** API Gateway gives up on a route's function after this long (default 29 s, its integration timeout). */
  integrationTimeoutMs?: number;
  /** Limits and failures of the cloud, all off by default (see chaos.ts). */
  chaos?: ChaosOptions;
  /** Count what the traffic would cost on AWS (cost-meter.ts); its report at GET /_emulator/cost and from costReport(). */
  meterCost?: boolean;
}

export interface RunningEmulator {
  /** ws://HOST:PORT/STAGE */
  url: string;
  /** http://HOST:PORT, the Lambda endpoint; the management endpoint is httpUrl + '/' + stage. */
  httpUrl: string;
  /** https://HOST:PORT, the same APIs over TLS, as the functions reach them; undefined without `openssl`. */
  httpsUrl?: string;
  /** The PEM certificate the TLS side presents, for clients to trust. */
  caCertificate?: string;
  port: number;
  stage: string;
  dynamoEndpoint: string;
  stack: EmulatedStack;
  /** Runs one TTL pass now; resolves to the number of expired items deleted. */
  sweepTtl(): Promise<number>;
  /** Per function: invocations, cold starts, time waiting for an environment and running; with `reset`, counting starts afresh after this reading. */
  functionStats(reset?: boolean): Record<string, FunctionStats>;
  /** What the traffic so far would cost on AWS; undefined unless `meterCost` was set. */
  costReport(): CostReport | undefined;
  /** Closes every connection (1001, `$disconnect` for each), then everything else. */
  stop(): Promise<void>;
}

/** The operator's credentials: the account's administrator, never denied (each function has its own, see credentials.ts). */
export const OPERATOR_CREDENTIALS = { ...LOCAL_CREDENTIALS, sessionToken: 'local' };

const DEFAULTS = {
  port: 3001,
  host: '127.0.0.1',
  stage: 'dev',
  region: 'us-east-1',
  idleTimeoutMs: 10 * 60_000,
  maxConnectionMs: 2 * 60 * 60_000,
  ttlSweepMs: 60_000,
  maxEnvironments: 4,
  maxBufferedBytes: 4 * 1024 * 1024,
  integrationTimeoutMs: 29_000,
};

export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const logger = options.logger ?? createLogger('info');
  const handlersDir = options.distDir ?? join(builtInProject().outDir, 'aws');
  // A build writes the stack's template beside the handlers; without one, the built-in template describes them.
  const builtTemplate = join(handlersDir, 'template.yaml');
  const templatePath = options.templatePath ?? (existsSync(builtTemplate) ? builtTemplate : DEFAULT_TEMPLATE_PATH);
  const template = options.template ?? (await loadTemplate(templatePath));
  // The stage a deploy of this template would have, unless one is asked for.
  const settings = { ...DEFAULTS, stage: stageOfTemplate(template) ?? DEFAULTS.stage, ...definedOnly(options) };
  const templateDir = options.template ? undefined : dirname(templatePath);
  const stack = readStack({ template, distDir: handlersDir, templateDir, stage: settings.stage, region: settings.region });
  // Said at start, not only when a client first reaches the route: on AWS it would fail the same way on every call.
  for (const route of stack.routes.values()) {
    if (route.invokeRefusal) logger.warn('route_not_invocable', { routeKey: route.routeKey, functionName: route.functionName, reason: route.invokeRefusal });
  }

  const dynamo = await startDynamo(options.dynamoEndpoint ?? process.env.AWS_ENDPOINT_URL_DYNAMODB, settings.region, (error) => logger.error('dynamo_crashed', { error }));
  const certificate = await makeCertificate(settings.host).catch(async (error: unknown) => {
    await dynamo.stop();
    throw error;
  });
  if (!certificate) logger.warn('emulator_without_tls', { reason: 'no openssl on PATH to make a certificate with; the functions get AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI instead' });
  const http = createServer();
  const https = certificate ? createHttpsServer({ key: certificate.key, cert: certificate.cert }) : undefined;
  const servers: Server[] = https ? [http, https] : [http];
  const listener = https ? createNetServer((socket) => routeByFirstByte(socket, http, https)) : http;
  try {
    for (const table of stack.tables) await ensureTable(dynamo.client, table);
    await new Promise<void>((resolve, reject) => {
      listener.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'EADDRINUSE' ? new PortInUseError(settings.port) : error));
      listener.listen(settings.port, settings.host, () => resolve());
    });
  } catch (error) {
    await dynamo.stop();
    await certificate?.remove();
    throw error;
  }
  const { port } = listener.address() as AddressInfo;
  const httpUrl = `http://${settings.host}:${port}`;
  const httpsUrl = certificate ? `https://${settings.host}:${port}` : undefined;
  const url = `ws://${settings.host}:${port}/${settings.stage}`;
  const access = new AccessControl(stack.functions.values(), stack.accountId, stack.region, OPERATOR_CREDENTIALS, logger);
  const chaos = new Chaos(options.chaos ?? {}, logger);
  const costMeter = options.meterCost ? new CostMeter() : undefined;
  // Each function its own session, as Lambda gives it its role's; these win over the template's variables, as Lambda's reserved ones do.
  for (const spec of stack.functions.values()) {
    spec.environment = { ...spec.environment, ...access.environmentOf(spec.name) };
    spec.coldStartMs = chaos.coldStartMs;
  }
  // The partition key first: it is what dynamodb:LeadingKeys names.
  const tableKeys = new Map(
    stack.tables.map((table) => [table.name, [...(table.definition.KeySchema ?? [])].sort((a, b) => (a.KeyType === 'HASH' ? -1 : b.KeyType === 'HASH' ? 1 : 0)).map((key) => key.AttributeName!)]),
  );
  const tableIndexes = new Map(stack.tables.map((table) => [table.name, indexShapesOf(table.definition)]));
  const dynamoProxy = new DynamoProxy(dynamo.endpoint, access, stack.region, stack.accountId, logger, (name) => tableKeys.get(name), costMeter, (name) => tableIndexes.get(name));
  // As on AWS, the functions build the management endpoint from the event (https://{domainName}/{stage});
  // only without TLS are they pointed at the plain one.
  const endpoints: Record<string, string> = certificate
    ? { NODE_EXTRA_CA_CERTS: certificate.certFile, AWS_ENDPOINT_URL_LAMBDA: httpsUrl! }
    : { AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI: `${httpUrl}/${settings.stage}`, AWS_ENDPOINT_URL_LAMBDA: httpUrl };

  const runtime = new LambdaRuntime({
    functions: stack.functions,
    maxEnvironments: settings.maxEnvironments,
    logger,
    onOutput: options.onLog ?? ((functionName, line) => relogLine(logger, functionName, line)),
    environment: {
      ...options.functionEnv,
      AWS_REGION: settings.region,
      AWS_DEFAULT_REGION: settings.region,
      // Through the emulator, which checks each call against the function's role; plain HTTP, for speed.
      AWS_ENDPOINT_URL_DYNAMODB: httpUrl,
      ...endpoints,
      // The functions declare a Lambda runtime newer than the Node running them here; its warning is noise locally.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  });
  const gateway = new Gateway({
    stack,
    stage: settings.stage,
    lambda: runtime,
    logger,
    idleTimeoutMs: settings.idleTimeoutMs,
    maxConnectionMs: settings.maxConnectionMs,
    maxBufferedBytes: settings.maxBufferedBytes,
    port: () => port,
    host: settings.host,
    integrationTimeoutMs: settings.integrationTimeoutMs,
    chaos,
    costMeter,
  });
  if (costMeter) {
    // Every invocation, whoever asks for it (API Gateway, the Invoke API, an Event invocation), from call to answer.
    const invoke = runtime.invoke.bind(runtime);
    runtime.invoke = async (functionName, event) => {
      costMeter.invocationStarted();
      const started = performance.now();
      const outcome = await invoke(functionName, event);
      costMeter.invocationFinished(stack.functions.get(functionName)?.memoryMb ?? 128, performance.now() - started);
      return outcome;
    };
  }
  const management = new ManagementApi(gateway, settings.stage, logger, access, `arn:aws:execute-api:${stack.region}:${stack.accountId}:${stack.apiId}`, chaos);
  const lambdaApi = new LambdaApi(runtime, stack.region, stack.accountId, access, logger);
  const sweepers = stack.tables.flatMap((table) => (table.ttlAttribute ? [new TtlSweeper(dynamo.client, table.name, table.ttlAttribute, logger)] : []));
  for (const sweeper of sweepers) sweeper.start(settings.ttlSweepMs);

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Raw, not resolved as a URL reference: `new URL('//')` throws here (and took the process down), and `//x/dev` is not /dev.
    const path = parseRequestTarget(req.url ?? '/')?.path;
    if (path === undefined || !gateway.servesPath(path)) {
      socket.on('error', () => undefined);
      socket.end(`HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 23\r\n\r\n{"message":"Forbidden"}`);
      return;
    }
    gateway.handleUpgrade(req, socket, head).catch((error) => {
      logger.error('upgrade_failed', { error });
      socket.destroy();
    });
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    serve(req, res).catch((error) => {
      logger.error('request_failed', { url: req.url, error });
      if (!res.headersSent) sendJson(res, 500, { message: 'Internal server error' });
      else res.destroy();
    });
  };
  for (const server of servers) server.on('upgrade', onUpgrade).on('request', onRequest);
  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (dynamoProxy.handles(req)) return dynamoProxy.handle(req, res);
    // An unreadable target matches no route below and gets the 404.
    const pathname = parseRequestTarget(req.url ?? '/')?.path ?? '';
    const target = management.connectionIdOf(pathname);
    if (target) return management.handle(req, res, target);
    const functionName = lambdaApi.functionOf(pathname);
    if (functionName !== undefined) return lambdaApi.handle(req, res, functionName);
    if (req.method === 'GET' && pathname === '/_emulator/cost' && costMeter) return sendJson(res, 200, costMeter.report());
    if (req.method === 'GET' && (pathname === '/' || pathname === '/index.html')) {
      const { loadPage } = await import('../page.js');
      const html = await loadPage({ defaultUrl: url });
      res.writeHead(200, pageHeaders(html)).end(html);
      return;
    }
    sendJson(res, 404, { message: 'Not Found' });
  }

  logger.info('emulator_listening', {
    url,
    port,
    stage: settings.stage,
    dynamoEndpoint: dynamo.endpoint,
    routes: [...stack.routes.keys()],
    functions: [...stack.functions.keys()],
  });

  let stopping: Promise<void> | undefined;
  return {
    url,
    httpUrl,
    httpsUrl,
    caCertificate: certificate?.cert,
    port,
    stage: settings.stage,
    dynamoEndpoint: dynamo.endpoint,
    stack,
    functionStats: (reset) => runtime.stats(reset),
    costReport: () => costMeter?.report(),
    sweepTtl: async () => (await Promise.all(sweepers.map((sweeper) => sweeper.sweep()))).reduce((total, n) => total + n, 0),
    stop: () =>
      (stopping ??= (async () => {
        for (const sweeper of sweepers) sweeper.stop();
        await gateway.close();
        await runtime.stop();
        await new Promise<void>((resolve) => {
          listener.close(() => resolve());
          for (const server of servers) {
            if (server !== listener) server.close();
            server.closeAllConnections();
          }
        });
        dynamoProxy.close();
        await dynamo.stop();
        await certificate?.remove();
      })()),
  };
}

/** A handler's JSON log line keeps its level and fields, tagged with the function it came from. */
function relogLine(logger: Logger, functionName: string, line: string): void {
  let parsed: Record<string, unknown> | undefined;
  try {
    const value: unknown = JSON.parse(line);
    if (value && typeof value === 'object' && !Array.isArray(value)) parsed = value as Record<string, unknown>;
  } catch {
    parsed = undefined;
  }
  if (!parsed) return logger.info('function_output', { function: functionName, line });
  const { level, event, time: _time, ...fields } = parsed;
  const at = LOG_LEVELS.includes(level as LogLevel) && level !== 'silent' ? (level as Exclude<LogLevel, 'silent'>) : 'info';
  logger[at](typeof event === 'string' ? event : 'function_output', { function: functionName, ...fields });
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
