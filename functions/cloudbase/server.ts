/**
 * The CloudBase HTTP function: one long-lived Node process that serves the
 * page, a health check and WebSocket upgrades on any path, driving the core
 * with an in-memory registry and the sockets it owns.
 */
import { randomBytes } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { App, HandshakeRequest } from '../../shared/app.js';
import type { Backplane } from '../../shared/backplane.js';
import { Engine, type Admission, type Greeting } from '../../shared/engine.js';
import { CloseCode } from '../../shared/errors.js';
import { silentLogger, type Logger } from '../../shared/log.js';
import { MemoryRegistry } from '../../shared/memory-registry.js';
import { pageHeaders } from '../../shared/page-headers.js';
import { MAX_FRAME_BYTES } from '../../shared/protocol.js';
import type { ConnectionRegistry } from '../../shared/registry.js';
import type { RoomLog } from '../../shared/room-log.js';
import { InvalidRequestTargetError, parseRequestTarget } from '../../shared/request-target.js';
import type { StateStore } from '../../shared/room-state.js';
import { withOverrides } from '../../shared/settings.js';
import { readCloudbaseSettings, type CloudbaseSettings, type CloudbaseSettingsOverrides } from './settings.js';
import { WsTransport } from './ws-transport.js';

export interface CloudbaseServerOptions {
  app: App;
  /** Where connections live; the default is this process's memory (one instance). */
  registry?: ConnectionRegistry;
  /** How this instance reaches sockets other instances own, when the registry is shared. */
  backplane?: Backplane;
  /** The rooms' logs, shared by the instances that share rooms; default this process's memory (ROOM_LOG_SIZE, ROOM_LOG_AGE). */
  log?: RoomLog;
  /** Names this instance in the registry and on the backplane; default a random id. */
  instanceId?: string;
  /** Where `ctx.state` lives; default this process's memory, right only while the registry is too. */
  state?: StateStore;
  /** Over the settings read from the environment (PORT, HEARTBEAT_TIMEOUT, ...). */
  settings?: CloudbaseSettingsOverrides;
  /** Default: no logs. */
  logger?: Logger;
  /** HTML served on GET at `/` and at the access path; absent, those answer 404. */
  page?: string;
}

/** The CloudBase adapter: an HTTP server that upgrades WebSockets for `app`. Call `listen()` to start it. */
export function createCloudbaseServer(options: CloudbaseServerOptions): CloudbaseServer {
  return new CloudbaseServer(options);
}

/** How long shutdown waits for clients to answer the 1012 close before cutting them off. */
const SHUTDOWN_GRACE_MS = 2000;

type Accept = (ok: boolean, status?: number, body?: string, headers?: Record<string, string>) => void;

export class CloudbaseServer {
  readonly registry: ConnectionRegistry;
  readonly engine: Engine;
  readonly settings: CloudbaseSettings;
  private readonly logger: Logger;
  private readonly pagePaths: ReadonlySet<string>;
  private readonly pageHeaders: Record<string, string> | undefined;
  private readonly transport: WsTransport;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly startedAt = Date.now();
  private readonly onHandshakeSocketError: (error: Error) => void;
  private timers: NodeJS.Timeout[] = [];
  private shuttingDown: Promise<void> | undefined;
  /** Disconnects still telling rooms (maybe on other instances) that someone left; shutdown waits for them. */
  private readonly leaving = new Set<Promise<void>>();
  /** Handshakes still waiting for their admission, each answered 503 if shutdown comes first. */
  private readonly handshakes = new Set<() => void>();

  constructor(private readonly options: CloudbaseServerOptions) {
    const settings = withOverrides(readCloudbaseSettings(process.env), options.settings);
    const logger = options.logger ?? silentLogger;
    this.settings = settings;
    this.logger = logger;
    this.registry = options.registry ?? new MemoryRegistry();
    this.pagePaths = pagePathsFor(settings.accessPath);
    this.pageHeaders = options.page === undefined ? undefined : pageHeaders(options.page);
    this.transport = new WsTransport(settings.maxBufferedBytes, logger);
    this.engine = new Engine({
      app: options.app,
      registry: this.registry,
      transport: this.transport,
      settings: settings.core,
      logger,
      instanceId: options.instanceId,
      backplane: options.backplane,
      log: options.log,
      state: options.state,
    });
    this.wss = new WebSocketServer({
      noServer: true,
      // The transport's map is the one list of sockets; ws's own would be a Set entry and a listener per socket.
      clientTracking: false,
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      WebSocket: connectionSocketClass(this.engine, logger, (connectionId, code) => this.onSocketClosed(connectionId, code)),
      verifyClient: (info: { req: IncomingMessage }, accept: Accept) => void this.verify(info.req, accept),
    });
    this.http = createServer((req, res) => this.serveHttp(req, res));
    // Made once, outside the upgrade handler: a listener created there would share its closure
    // scope, which holds `req`, and keep every request's headers alive as long as the socket.
    const onSocketError = (error: Error) => logger.debug('socket_error', { error });
    this.onHandshakeSocketError = onSocketError;
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', onSocketError);
      // `ws` makes every socket a ConnectionSocket (the `WebSocket` option).
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onOpen(ws as ConnectionSocket, req));
    });
    this.http.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex & { bytesWritten?: number }) => {
      logger.debug('http_client_error', { error });
      // As Node's own default: answer unless a response has begun (a half-written one must not be followed by another).
      if (socket.writable && !socket.bytesWritten) socket.write(clientErrorResponse(error.code));
      socket.destroy();
    });
  }

  async listen(): Promise<AddressInfo> {
    const { port, host, pingIntervalMs, core } = this.settings;
    // Subscribed before the first upgrade, so no frame for this instance's first client is missed.
    await this.options.backplane?.subscribe(this.engine.instanceId, (message) => {
      this.engine.handleBackplaneMessage(message).catch((error) => this.logger.error('backplane_delivery_failed', { error }));
    });
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    this.timers = [
      setInterval(() => this.pingAll(), pingIntervalMs),
      setInterval(() => {
        this.engine.sweepIdle().catch((error) => this.logger.error('sweep_failed', { error }));
      }, core.cleanupIntervalMs),
    ];
    for (const timer of this.timers) timer.unref();
    const address = this.http.address() as AddressInfo;
    this.logger.info('listening', { host: address.address, port: address.port });
    return address;
  }

  get connectionCount(): number {
    return this.transport.sockets.size;
  }

  /** Handshakes waiting for their admission (an app's `authenticate`, the registry). */
  get pendingHandshakes(): number {
    return this.handshakes.size;
  }

  /** Tells every client to come back later (1012) and stops. Resolves when all sockets are closed. */
  shutdown(): Promise<void> {
    this.shuttingDown ??= this.closeEverything();
    return this.shuttingDown;
  }

  private async closeEverything(): Promise<void> {
    this.logger.info('shutdown', { connections: this.transport.sockets.size });
    for (const timer of this.timers) clearInterval(timer);
    for (const refuse of [...this.handshakes]) refuse();
    // The listener stays open while the clients drain, so a newcomer hears 503 `shutting_down`
    // and /healthz says `shutting_down`, instead of finding nothing on the port.
    const sockets = [...this.transport.sockets.values()];
    const closed = sockets.map((ws) => new Promise<void>((resolve) => ws.once('close', () => resolve())));
    for (const ws of sockets) ws.close(CloseCode.serviceRestart, 'service restart');
    const grace = setTimeout(() => sockets.forEach((ws) => ws.terminate()), SHUTDOWN_GRACE_MS);
    await Promise.all(closed);
    clearTimeout(grace);
    await Promise.all(this.leaving);
    this.wss.close();
    const httpClosed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    await httpClosed;
  }

  private async verify(req: IncomingMessage, accept: Accept): Promise<void> {
    if (this.shuttingDown) return accept(false, 503, jsonBody('shutting_down', 'server is restarting'), JSON_HEADERS);
    const request = handshakeFrom(req);
    if (request === undefined) {
      const { status, code, message } = new InvalidRequestTargetError();
      return accept(false, status, jsonBody(code, message), JSON_HEADERS);
    }
    const admitting = this.engine.admit(request);
    const admission = await this.withinHandshakeTime(admitting);
    if (admission === 'timed_out') {
      // Answered as API Gateway answers a handshake whose $connect function timed out.
      this.logger.error('handshake_timed_out', { connectionId: request.connectionId, afterMs: this.settings.handshakeTimeoutMs });
      this.forgetLateAdmission(admitting, request.connectionId);
      return accept(false, 500, jsonBody('internal_error', 'internal server error'), JSON_HEADERS);
    }
    if (admission === 'shutting_down') {
      this.forgetLateAdmission(admitting, request.connectionId);
      return accept(false, 503, jsonBody('shutting_down', 'server is restarting'), JSON_HEADERS);
    }
    try {
      if (admission instanceof Error) throw admission;
      if (!admission.ok) {
        const { status, code, message } = admission.error;
        return accept(false, status, jsonBody(code, message), JSON_HEADERS);
      }
      // ws drops the upgrade without a callback if the client left meanwhile; forget it then.
      // It keeps the id and the greeting only, not the whole handshake, and onOpen removes it.
      const { connectionId } = request;
      // One that continues its session is still in the room for the others, so they are told it left.
      const forgetUnopened = admission.greeting.continued
        ? () => void this.engine.disconnect(connectionId).catch((error) => this.logger.error('disconnect_failed', { connectionId, error }))
        : () => void this.registry.remove(connectionId);
      pendingConnectionIds.set(req, { connectionId, greeting: admission.greeting, forgetUnopened });
      req.socket.once('close', forgetUnopened);
      accept(true);
    } catch (error) {
      this.logger.error('handshake_failed', { connectionId: request.connectionId, error });
      accept(false, 500, jsonBody('internal_error', 'internal server error'), JSON_HEADERS);
    }
  }

  /** An admission that comes after its handshake was refused: its entry must not squat the name. */
  private forgetLateAdmission(admitting: Promise<Admission>, connectionId: string): void {
    admitting.then(
      async (late) => {
        if (late.ok) await this.registry.remove(connectionId);
      },
      () => undefined,
    ).catch((error: unknown) => this.logger.error('late_admission_not_forgotten', { connectionId, error }));
  }

  /** The admission, its failure, or why the handshake could not wait for it: an app's `authenticate` may never settle. */
  private withinHandshakeTime(admitting: Promise<Admission>): Promise<Admission | Error | 'timed_out' | 'shutting_down'> {
    return new Promise((resolve) => {
      const settle = (outcome: Admission | Error | 'timed_out' | 'shutting_down') => {
        clearTimeout(timer);
        this.handshakes.delete(refuse);
        resolve(outcome);
      };
      const refuse = () => settle('shutting_down');
      const timer = setTimeout(() => settle('timed_out'), this.settings.handshakeTimeoutMs);
      this.handshakes.add(refuse);
      admitting.then(settle, (error: unknown) => settle(error instanceof Error ? error : new Error(String(error))));
    });
  }

  private onOpen(ws: ConnectionSocket, req: IncomingMessage): void {
    const pending = pendingConnectionIds.get(req);
    if (pending === undefined) return void ws.terminate();
    pendingConnectionIds.delete(req);
    // From here the socket's own close event does the forgetting, and ws hears the TCP socket's errors.
    req.socket.off('close', pending.forgetUnopened);
    req.socket.off('error', this.onHandshakeSocketError);
    const { connectionId } = pending;
    ws.connectionId = connectionId;
    this.transport.sockets.set(connectionId, ws);

    // Admitted just before the drain began: it would be missed by it, so it is told to come back at once.
    if (this.shuttingDown) return void ws.close(CloseCode.serviceRestart, 'service restart');
    this.engine.greet(connectionId, pending.greeting).catch((error) => {
      this.logger.error('greet_failed', { connectionId, error });
      ws.close(CloseCode.serverError, 'internal error');
    });
  }

  private onSocketClosed(connectionId: string, code: number): void {
    this.transport.sockets.delete(connectionId);
    this.logger.debug('socket_closed', { connectionId, code });
    const leaving = this.engine.disconnect(connectionId).catch((error) => this.logger.error('disconnect_failed', { connectionId, error }));
    this.leaving.add(leaving);
    void leaving.finally(() => this.leaving.delete(leaving));
  }

  /** Peers that did not answer the previous ping are dead (no close frame ever came) and are cut off. */
  private pingAll(): void {
    for (const ws of this.transport.sockets.values() as IterableIterator<ConnectionSocket>) {
      if (!ws.alive) {
        ws.terminate();
        continue;
      }
      ws.alive = false;
      ws.ping();
    }
  }

  private serveHttp(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { code: 'method_not_allowed', message: 'use GET' });
    if (path === '/healthz') {
      // 503 while draining, so a health check that reads only the status stops sending newcomers here.
      return sendJson(res, this.shuttingDown ? 503 : 200, {
        status: this.shuttingDown ? 'shutting_down' : 'ok',
        connections: this.transport.sockets.size,
        uptime: Math.round((Date.now() - this.startedAt) / 1000),
        // Whoever started this process can tell it from another server on the same port (scripts/run-artifact.ts).
        instance: process.env.CLOUDSOCKET_INSTANCE_ID,
      });
    }
    if (path !== undefined && this.pagePaths.has(path) && this.options.page !== undefined) {
      res.writeHead(200, this.pageHeaders);
      return void res.end(req.method === 'HEAD' ? undefined : this.options.page);
    }
    sendJson(res, 404, { code: 'not_found', message: `nothing at ${path}; WebSocket clients connect with an Upgrade request` });
  }
}

/** The page is where a browser opens it: the root, and the access path CloudBase routes to the function. */
function pagePathsFor(accessPath: string): ReadonlySet<string> {
  const base = accessPath.replace(/\/+$/, '');
  return new Set(['/', '/index.html', ...(base ? [base, `${base}/`, `${base}/index.html`] : [])]);
}

/**
 * A server-side socket that carries its connection id and liveness itself,
 * instead of entries in maps keyed by it. The events the server handles are
 * handled in `emit`, by a class made once per server: no listener, closure
 * or listener table per connection.
 */
class ConnectionSocket extends WebSocket {
  /** Empty until the socket opens as an admitted connection; such a socket is only ever terminated. */
  connectionId = '';
  /** Whether the peer has shown life (a frame, a pong) since the last ping. */
  alive = true;
}

function connectionSocketClass(engine: Engine, logger: Logger, closed: (connectionId: string, code: number) => void): typeof ConnectionSocket {
  return class extends ConnectionSocket {
    override emit(event: string | symbol, ...args: any[]): boolean {
      if (this.connectionId !== '') this.handle(event, args);
      // Handled: without a listener, EventEmitter would throw it.
      if (event === 'error' && this.listenerCount('error') === 0) return true;
      return super.emit(event, ...args);
    }

    private handle(event: string | symbol, args: any[]): void {
      switch (event) {
        case 'pong':
          this.alive = true;
          break;
        case 'message':
          this.onMessage(args[0] as WebSocket.RawData, args[1] as boolean);
          break;
        case 'close':
          closed(this.connectionId, args[0] as number);
          break;
        case 'error': {
          const error = args[0] as Error & { code?: string };
          logger.info('socket_error', { connectionId: this.connectionId, error: error.message, code: error.code });
          break;
        }
      }
    }

    private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
      this.alive = true;
      if (isBinary) return this.close(CloseCode.unsupportedData, 'binary frames are not supported');
      // The engine has logged the failure and sent `unavailable`; the connection stays, as on AWS.
      engine.receive(this.connectionId, data.toString()).catch(() => undefined);
    }
  };
}

const pendingConnectionIds = new WeakMap<IncomingMessage, { connectionId: string; greeting: Greeting; forgetUnopened: () => void }>();
const JSON_HEADERS = { 'Content-Type': 'application/json' };

function jsonBody(code: string, message: string): string {
  return JSON.stringify({ code, message });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Undefined when the request target cannot be read; every path is served, so only the query matters. */
function handshakeFrom(req: IncomingMessage): HandshakeRequest | undefined {
  const target = parseRequestTarget(req.url ?? '/');
  if (target === undefined) return undefined;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return {
    connectionId: randomBytes(12).toString('base64url'),
    headers,
    query: Object.fromEntries(target.query),
    sourceIp: peerAddress(req.socket),
  };
}

/**
 * The peer's address, without leaving it cached on the socket: net.Socket
 * keeps what `remoteAddress` read (an object and a string, lib/net.js
 * `_peername`) for the socket's life, and the registry holds the address already.
 */
function peerAddress(socket: IncomingMessage['socket']): string {
  const address = socket.remoteAddress ?? '';
  const cached = socket as unknown as { _peername?: unknown };
  if (cached._peername !== undefined) cached._peername = undefined;
  return address;
}

const CLIENT_ERRORS = new Map<string | undefined, [status: number, code: string, message: string]>([
  ['HPE_HEADER_OVERFLOW', [431, 'headers_too_large', 'the request headers are too large']],
  ['ERR_HTTP_REQUEST_TIMEOUT', [408, 'request_timeout', 'the request did not arrive in time']],
]);

/** The request never parsed, so there is no ServerResponse to write to: the bytes are written by hand. */
function clientErrorResponse(errorCode: string | undefined): string {
  const [status, code, message] = CLIENT_ERRORS.get(errorCode) ?? [400, 'bad_request', 'the request is not valid HTTP'];
  const body = jsonBody(code, message);
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
