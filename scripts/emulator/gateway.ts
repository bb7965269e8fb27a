/**
 * The WebSocket side of the emulated API Gateway: holds the upgrade until
 * `$connect` has returned (refusing it with the handler's status, forwarding
 * its Sec-WebSocket-Protocol), routes each text frame by the route selection
 * expression, enforces API Gateway's limits (binary → 1003, a frame over
 * 32 KiB or a message over 128 KiB → 1009, idle and maximum lifetime → 1001)
 * and fires `$disconnect` once.
 */
import { isUtf8 } from 'node:buffer';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { CloseCode } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { connectEvent, disconnectEvent, gatewayId, messageEvent, type ConnectionFacts } from './events.js';
import { ABANDONED, type InvokeOptions, type LambdaRuntime, type Outcome } from './lambda-runtime.js';
import { clientDisconnectReason, DELETED_BY_BACKEND, GOING_AWAY } from './disconnect-reasons.js';
import type { Chaos } from './chaos.js';
import type { CostMeter } from './cost-meter.js';
import { guardFrameSize, MAX_GATEWAY_FRAME_BYTES } from './frame-guard.js';
import { selectRoute } from './route-selection.js';
import type { EmulatedStack, RouteSpec } from './stack.js';

/** The errorType of an integration API Gateway may not invoke: its own, not the function's. */
const NOT_PERMITTED = 'Emulator.InvalidPermissions';

/** API Gateway's message limit, for frames in and for PostToConnection out. */
export const MAX_MESSAGE_BYTES = 128 * 1024;

export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface Connection {
  facts: ConnectionFacts;
  state: ConnectionState;
  lastActiveAt: number;
  socket?: WebSocket;
  /**
   * Set when the gateway itself ends the connection, so `$disconnect` reports its code, not the client's echo;
   * `disconnectReason` when the event's text differs from the close frame's.
   */
  closing?: { code: number; reason: string; disconnectReason?: string };
  idleTimer?: NodeJS.Timeout;
  lifetimeTimer?: NodeJS.Timeout;
}

export interface GatewayOptions {
  stack: EmulatedStack;
  stage: string;
  lambda: LambdaRuntime;
  logger: Logger;
  idleTimeoutMs: number;
  maxConnectionMs: number;
  /** Bytes a connection may have queued for a client that does not read before it is cut. */
  maxBufferedBytes: number;
  /** The port we listen on (known only once listening), for X-Forwarded-Port. */
  port: () => number;
  /** The host we listen on, for the events' domainName. */
  host: string;
  /** API Gateway stops waiting for an integration after this long (29 s). */
  integrationTimeoutMs: number;
  chaos: Chaos;
  /** Counts what API Gateway would bill, when the emulator meters cost. */
  costMeter?: CostMeter;
}

type VerifyDone = (verified: boolean, status?: number, body?: string, headers?: Record<string, string>) => void;

interface Refusal {
  status: number;
  body: string;
  headers: Record<string, string>;
}

interface ProxyResult {
  statusCode?: number;
  headers?: Record<string, string>;
  body?: string;
}

export class Gateway {
  readonly connections = new Map<string, Connection>();
  private readonly wss: WebSocketServer;
  private readonly chosenProtocol = new WeakMap<IncomingMessage, string>();
  private readonly routeKeys: ReadonlySet<string>;
  private readonly disconnects = new Set<Promise<void>>();
  /** Handshakes `ws` has checked and `$connect` is deciding. */
  private readonly upgrading = new WeakMap<IncomingMessage, Connection>();
  private readonly decided = new WeakMap<IncomingMessage, () => void>();

  constructor(private readonly options: GatewayOptions) {
    this.routeKeys = new Set(options.stack.routes.keys());
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_MESSAGE_BYTES,
      // API Gateway does not negotiate compression.
      perMessageDeflate: false,
      // API Gateway answers with the subprotocol `$connect` returned, and none when it returned none.
      handleProtocols: (_offered, request) => this.chosenProtocol.get(request) ?? false,
      verifyClient: (info: { req: IncomingMessage }, done: VerifyDone) => this.verify(info.req, done),
    });
  }

  /** True for the path API Gateway serves WebSocket upgrades on: /{stage}. */
  servesPath(pathname: string): boolean {
    return pathname === `/${this.options.stage}` || pathname === `/${this.options.stage}/`;
  }

  /**
   * The handshake is checked (method, Upgrade, key, version, subprotocol
   * syntax) before `$connect` runs, as API Gateway's front end does: a request
   * that could never become a WebSocket must not leave a registered
   * connection behind. `ws` makes those checks and then asks `verifyClient`,
   * which is where `$connect` runs. Resolves once the handshake is decided.
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', (error) => this.options.logger.debug('socket_error', { error }));
    // API Gateway speaks version 13 only; `ws` would also take 8.
    if (request.headers['sec-websocket-version'] !== '13') {
      refuse(socket, 400, JSON.stringify({ message: 'Bad Request' }));
      return Promise.resolve();
    }
    if (!this.options.chaos.allowsConnect()) {
      refuse(socket, 429, JSON.stringify({ message: 'Too Many Requests' }));
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.decided.set(request, resolve);
      this.wss.handleUpgrade(request, socket, head, (ws) => {
        const connection = this.upgrading.get(request);
        if (!connection) return ws.terminate();
        this.open(connection, ws);
        guardFrameSize(socket, MAX_GATEWAY_FRAME_BYTES, () => this.end(connection, CloseCode.messageTooBig, 'Message too big'));
      });
      // `ws` refused it without asking verifyClient.
      if (!this.upgrading.has(request)) this.decide(request);
    });
  }

  private decide(request: IncomingMessage): void {
    const resolve = this.decided.get(request);
    this.decided.delete(request);
    resolve?.();
  }

  private verify(request: IncomingMessage, done: VerifyDone): void {
    const { stack, stage, logger } = this.options;
    const now = Date.now();
    const facts: ConnectionFacts = {
      connectionId: gatewayId(),
      connectedAt: now,
      sourceIp: (request.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, ''),
      userAgent: request.headers['user-agent'] ?? '',
      domainName: domainNameFor(request.headers.host, this.options.host, this.options.port()),
      stage,
      apiId: stack.apiId,
    };
    const connection: Connection = { facts, state: 'connecting', lastActiveAt: now };
    this.upgrading.set(request, connection);
    // Registered before $connect runs, so the management API can answer 410 for it meanwhile.
    this.connections.set(facts.connectionId, connection);
    this.runConnect(request, connection)
      .catch((error: unknown) => {
        logger.error('connect_handler_failed', { connectionId: facts.connectionId, error });
        return internalError(facts.connectionId);
      })
      .then((refusal) => {
        if (refusal) {
          this.connections.delete(facts.connectionId);
          done(false, refusal.status, refusal.body, refusal.headers);
          return;
        }
        done(true);
        // `ws` completes the upgrade synchronously or not at all (the client left, or we are closing):
        // `$connect` did succeed, so `$disconnect` must follow, or the registry would keep it.
        if (!connection.socket) void this.finish(connection, 1006, '');
      })
      .finally(() => {
        this.upgrading.delete(request);
        this.decide(request);
      });
  }

  /** undefined when `$connect` admitted the connection; otherwise the refusal to answer. */
  private async runConnect(request: IncomingMessage, connection: Connection): Promise<Refusal | undefined> {
    const { stack, logger } = this.options;
    const { connectionId } = connection.facts;
    const route = stack.routes.get('$connect');
    let result: ProxyResult | null = { statusCode: 200 };
    if (route) {
      const outcome = await this.whileClientStays(request.socket, (abandoned) =>
        this.integrate(route, connectEvent(connection.facts, request, this.options.port(), connection.facts.connectedAt), { abandoned }, true),
      );
      if (outcome === 'timed_out') {
        logger.error('connect_integration_timeout', { connectionId, functionName: route.functionName });
        return { status: 504, body: JSON.stringify({ message: 'Endpoint request timed out' }), headers: refusalHeaders() };
      }
      if (!outcome.ok && outcome.error.errorType === ABANDONED) {
        logger.debug('connect_abandoned', { connectionId });
        return internalError(connectionId);
      }
      if (!outcome.ok) {
        if (outcome.error.errorType !== NOT_PERMITTED) logger.error('connect_handler_failed', { connectionId, functionName: route.functionName, error: outcome.error });
        return internalError(connectionId);
      }
      result = outcome.result as ProxyResult | null;
    }
    const status = typeof result?.statusCode === 'number' ? result.statusCode : 200;
    if (status < 200 || status > 299) {
      logger.info('connect_refused', { connectionId, status });
      return { status, body: typeof result?.body === 'string' ? result.body : '', headers: refusalHeaders(result?.headers) };
    }
    const protocol = headerValue(result?.headers, 'sec-websocket-protocol');
    if (protocol) this.chosenProtocol.set(request, protocol);
    return undefined;
  }

  /**
   * Runs `body` with a signal that fires if the client closes its side, so a
   * `$connect` still waiting for an environment never runs: run late, it
   * would register a connection that can only be forgotten again. Noticing
   * the close means reading the socket; anything the client sent meanwhile
   * is put back for `ws`, which takes the socket over synchronously after.
   */
  private async whileClientStays<T>(socket: Duplex, body: (abandoned: AbortSignal) => Promise<T>): Promise<T> {
    const left = new AbortController();
    const abandon = () => left.abort();
    const early: Buffer[] = [];
    const keep = (chunk: Buffer) => void early.push(chunk);
    socket.on('data', keep).once('end', abandon).once('close', abandon);
    try {
      return await body(left.signal);
    } finally {
      socket.off('data', keep).off('end', abandon).off('close', abandon);
      if (early.length > 0) socket.unshift(Buffer.concat(early));
    }
  }

  private open(connection: Connection, ws: WebSocket): void {
    const { idleTimeoutMs, maxConnectionMs, logger } = this.options;
    connection.socket = ws;
    connection.state = 'open';
    connection.lastActiveAt = Date.now();
    this.options.costMeter?.connectionOpened(connection.facts.connectionId);
    logger.debug('connected', { connectionId: connection.facts.connectionId });
    connection.lifetimeTimer = setTimeout(() => this.end(connection, CloseCode.goingAway, GOING_AWAY), maxConnectionMs);
    this.armIdle(connection, idleTimeoutMs);
    ws.on('message', (data, isBinary) => void this.onFrame(connection, data, isBinary));
    ws.on('error', (error: Error & { code?: string }) => {
      // ws closes by itself after these; remember why for the $disconnect event.
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') connection.closing ??= { code: CloseCode.messageTooBig, reason: 'Message too big' };
      logger.debug('socket_error', { connectionId: connection.facts.connectionId, error });
    });
    ws.on('close', (code, reason) => {
      const closing = connection.closing;
      if (closing) void this.finish(connection, closing.code, closing.disconnectReason ?? closing.reason);
      else void this.finish(connection, code, clientDisconnectReason(code, reason.toString()));
    });
  }

  /** Only frames from the client count as activity, as on API Gateway. */
  private armIdle(connection: Connection, idleTimeoutMs: number): void {
    clearTimeout(connection.idleTimer);
    connection.idleTimer = setTimeout(() => this.end(connection, CloseCode.goingAway, GOING_AWAY), idleTimeoutMs);
  }

  private async onFrame(connection: Connection, data: RawData, isBinary: boolean): Promise<void> {
    const { stack, logger } = this.options;
    // Frames still arriving after the gateway decided to close are not routed.
    if (connection.state !== 'open' || connection.closing) return;
    if (isBinary) {
      this.end(connection, CloseCode.unsupportedData, 'Unsupported data');
      return;
    }
    connection.lastActiveAt = Date.now();
    this.armIdle(connection, this.options.idleTimeoutMs);

    const raw = rawToBuffer(data);
    const body = raw.toString('utf8');
    const routeKey = selectRoute(stack.routeSelectionExpression, body, this.routeKeys);
    const route = stack.routes.get(routeKey);
    this.options.costMeter?.message(raw.length, route !== undefined);
    const { connectionId } = connection.facts;
    if (!route) {
      // What API Gateway sends when neither a route nor $default matches.
      this.sendToSocket(connection, JSON.stringify({ message: 'Forbidden', connectionId, requestId: gatewayId() }));
      return;
    }
    const outcome = await this.integrate(route, messageEvent(connection.facts, routeKey, body));
    if (outcome === 'timed_out') {
      logger.error('message_integration_timeout', { connectionId, routeKey, functionName: route.functionName });
      this.sendToSocket(connection, JSON.stringify({ message: 'Endpoint request timed out', connectionId, requestId: gatewayId() }));
      return;
    }
    if (!outcome.ok) {
      if (outcome.error.errorType !== NOT_PERMITTED) logger.error('message_handler_failed', { connectionId, routeKey, functionName: route.functionName, error: outcome.error });
      this.sendToSocket(connection, JSON.stringify({ message: 'Internal server error', connectionId, requestId: gatewayId() }));
      return;
    }
    const result = outcome.result as ProxyResult | null;
    if (typeof result?.statusCode === 'number' && (result.statusCode < 200 || result.statusCode > 299)) {
      logger.warn('message_handler_status', { connectionId, routeKey, statusCode: result.statusCode });
    }
    if (route.returnsResponse && typeof result?.body === 'string') this.sendToSocket(connection, result.body);
  }

  /**
   * The route's function, given up on after the integration timeout; the
   * invocation itself runs on, as on AWS. With `droppedAtTimeout` (a
   * `$connect`) one still waiting for an environment then never runs: on
   * AWS it would have run at once, and run now it would register a
   * connection whose handshake has had its 504. A frame's invocation still
   * runs late, as on AWS it would have run: its message is not lost. Never
   * called when API Gateway may not invoke the function.
   */
  private integrate(route: RouteSpec, event: unknown, options: InvokeOptions = {}, droppedAtTimeout = false): Promise<Outcome | 'timed_out'> {
    const refused = this.refusedInvocation(route);
    if (refused) return Promise.resolve(refused);
    const timeout = new AbortController();
    const abandoned = droppedAtTimeout ? AbortSignal.any([timeout.signal, ...(options.abandoned ? [options.abandoned] : [])]) : options.abandoned;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timed_out'>(
      (resolve) =>
        (timer = setTimeout(() => {
          // Settled first, so the race answers the timeout and not the abandoned invocation.
          resolve('timed_out');
          timeout.abort();
        }, this.options.integrationTimeoutMs)),
    );
    return Promise.race([this.options.lambda.invoke(route.functionName, event, { ...options, abandoned }), timedOut]).finally(() => clearTimeout(timer));
  }

  /** The failed outcome of a route whose function API Gateway may not invoke, logged as its execution log says it. */
  private refusedInvocation(route: RouteSpec): Outcome | undefined {
    if (route.invokeRefusal === undefined) return undefined;
    this.options.logger.error('integration_not_permitted', { routeKey: route.routeKey, functionName: route.functionName, reason: route.invokeRefusal });
    return { ok: false, error: { errorType: NOT_PERMITTED, errorMessage: route.invokeRefusal, trace: [] } };
  }

  /** PostToConnection: false when the connection cannot receive (gone, or `$connect` still running). */
  post(connectionId: string, data: Buffer): boolean {
    const connection = this.connections.get(connectionId);
    if (!connection || connection.state !== 'open' || connection.closing) return false;
    return this.sendToSocket(connection, data);
  }

  /** DeleteConnection: false when there is no such open connection. */
  delete(connectionId: string): boolean {
    const connection = this.connections.get(connectionId);
    if (!connection || connection.state !== 'open' || connection.closing) return false;
    // The client's close frame has no reason; API Gateway's event names one.
    this.end(connection, CloseCode.normal, '', DELETED_BY_BACKEND);
    return true;
  }

  private sendToSocket(connection: Connection, data: string | Buffer): boolean {
    const ws = connection.socket;
    if (!ws || ws.readyState !== ws.OPEN) return false;
    if (ws.bufferedAmount > this.options.maxBufferedBytes) {
      // A client that never reads would otherwise grow this process without bound. A close frame
      // would queue behind the backlog it is meant to end, so the TCP connection is cut (1006).
      this.options.logger.warn('slow_consumer', { connectionId: connection.facts.connectionId, bufferedBytes: ws.bufferedAmount });
      ws.terminate();
      return false;
    }
    const binary = typeof data !== 'string' && !isUtf8(data);
    this.options.costMeter?.message(typeof data === 'string' ? Buffer.byteLength(data) : data.length);
    ws.send(data, { binary });
    return true;
  }

  /** The gateway closes the connection; `$disconnect` follows when the socket has closed. */
  private end(connection: Connection, code: number, reason: string, disconnectReason?: string): void {
    if (connection.state !== 'open' || connection.closing) return;
    connection.closing = { code, reason, disconnectReason };
    connection.socket?.close(code, reason);
    // A peer that never answers the close frame still gets cut off.
    const cutoff = setTimeout(() => connection.socket?.terminate(), 2000);
    cutoff.unref();
  }

  private finish(connection: Connection, code: number, reason: string): Promise<void> {
    if (connection.state === 'closed') return Promise.resolve();
    connection.state = 'closed';
    clearTimeout(connection.idleTimer);
    clearTimeout(connection.lifetimeTimer);
    this.connections.delete(connection.facts.connectionId);
    this.options.costMeter?.connectionClosed(connection.facts.connectionId);
    const route = this.options.stack.routes.get('$disconnect');
    const { connectionId } = connection.facts;
    if (!route || this.options.chaos.dropsDisconnect(connectionId)) return Promise.resolve();
    const refused = this.refusedInvocation(route);
    if (refused) return Promise.resolve();
    const running = this.options.lambda.invoke(route.functionName, disconnectEvent(connection.facts, code, reason)).then((outcome) => {
      if (!outcome.ok) this.options.logger.error('disconnect_handler_failed', { connectionId, error: outcome.error });
    });
    this.disconnects.add(running);
    void running.finally(() => this.disconnects.delete(running));
    return running;
  }

  /** Closes every connection with 1001 and waits (up to 3 s) for their sockets to close and their `$disconnect` handlers to finish. */
  async close(): Promise<void> {
    const closing = [...this.connections.values()];
    const socketsClosed = closing.map((connection) => (connection.socket ? once(connection.socket, 'close').catch(() => undefined) : undefined));
    for (const connection of closing) this.end(connection, CloseCode.goingAway, GOING_AWAY);
    const deadline = new Promise((resolve) => setTimeout(resolve, 3000).unref());
    await Promise.race([Promise.all(socketsClosed), deadline]);
    await Promise.race([Promise.all(this.disconnects), deadline]);
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
  }
}

function internalError(connectionId: string): Refusal {
  return { status: 500, body: JSON.stringify({ message: 'Internal server error', connectionId, requestId: gatewayId() }), headers: refusalHeaders() };
}

/** The function's headers on a refusal, minus those that frame the answer, which are ours to set. */
function refusalHeaders(headers: Record<string, string> = {}): Record<string, string> {
  const kept = Object.entries(headers).filter(([name]) => !/^(content-length|content-type|connection|transfer-encoding)$/i.test(name));
  const type = Object.entries(headers).find(([name]) => name.toLowerCase() === 'content-type')?.[1];
  return { 'Content-Type': type ?? 'application/json', ...Object.fromEntries(kept) };
}

function refuse(socket: Duplex, status: number, body: string): void {
  if (socket.destroyed) return;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n` +
      `Connection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function headerValue(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

function rawToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * The event's domainName, from which the functions build the management
 * endpoint (https://{domainName}/{stage}): the Host the client used when it
 * names this emulator, so a page opened at localhost sees localhost; else the
 * emulator's own address. Never anything else: on AWS domainName is the API's
 * own domain whatever a client sends, and a Host header must not point the
 * functions' signed requests at another server (or at port 443 of this one,
 * for a Host without its port).
 */
export function domainNameFor(hostHeader: string | undefined, listenHost: string, port: number): string {
  const wildcard = listenHost === '0.0.0.0' || listenHost === '::';
  const own = wildcard ? '127.0.0.1' : listenHost.includes(':') ? `[${listenHost}]` : listenHost;
  const match = hostHeader === undefined ? null : /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(hostHeader.toLowerCase());
  if (match && Number(match[2]) === port && (LOOPBACK_NAMES.has(match[1]!) || match[1] === own)) return `${match[1]}:${port}`;
  return `${own}:${port}`;
}
