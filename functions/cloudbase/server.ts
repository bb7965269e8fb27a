/**
 * The CloudBase HTTP function: one long-lived Node process that serves the
 * page, a health check and WebSocket upgrades on any path, driving the core
 * with an in-memory registry and the sockets it owns.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { App, HandshakeRequest } from '../../shared/app.js';
import { Engine } from '../../shared/engine.js';
import { CloseCode } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { MemoryRegistry } from '../../shared/memory-registry.js';
import { MAX_FRAME_BYTES } from '../../shared/protocol.js';
import type { CloudbaseSettings } from './settings.js';
import { WsTransport } from './ws-transport.js';

export interface CloudbaseServerOptions {
  app: App;
  settings: CloudbaseSettings;
  logger: Logger;
  /** The HTML served at GET /. */
  page?: string;
}

/** How long shutdown waits for clients to answer the 1012 close before cutting them off. */
const SHUTDOWN_GRACE_MS = 2000;

export class CloudbaseServer {
  readonly registry = new MemoryRegistry();
  readonly engine: Engine;
  private readonly transport: WsTransport;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly startedAt = Date.now();
  private readonly alive = new WeakSet<WebSocket>();
  private timers: NodeJS.Timeout[] = [];
  private shuttingDown: Promise<void> | undefined;

  constructor(private readonly options: CloudbaseServerOptions) {
    const { settings, logger } = options;
    this.transport = new WsTransport(settings.maxBufferedBytes, logger);
    this.engine = new Engine({ app: options.app, registry: this.registry, transport: this.transport, settings: settings.core, logger });
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      verifyClient: (info: { req: IncomingMessage }, accept: (ok: boolean, status?: number, body?: string, headers?: Record<string, string>) => void) =>
        void this.verify(info.req, accept),
    });
    this.http = createServer((req, res) => this.serveHttp(req, res));
    // Made once, outside the upgrade handler: a listener created there would share its closure
    // scope, which holds `req`, and keep every request's headers alive as long as the socket.
    const onSocketError = (error: Error) => logger.debug('socket_error', { error });
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', onSocketError);
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onOpen(ws, req));
    });
    this.http.on('clientError', (error, socket) => {
      logger.debug('http_client_error', { error });
      socket.destroy();
    });
  }

  async listen(): Promise<AddressInfo> {
    const { port, host, pingIntervalMs, core } = this.options.settings;
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
        this.engine.sweepIdle().catch((error) => this.options.logger.error('sweep_failed', { error }));
      }, core.cleanupIntervalMs),
    ];
    for (const timer of this.timers) timer.unref();
    const address = this.http.address() as AddressInfo;
    this.options.logger.info('listening', { host: address.address, port: address.port });
    return address;
  }

  get connectionCount(): number {
    return this.transport.sockets.size;
  }

  /** Tells every client to come back later (1012) and stops. Resolves when all sockets are closed. */
  shutdown(): Promise<void> {
    this.shuttingDown ??= this.closeEverything();
    return this.shuttingDown;
  }

  private async closeEverything(): Promise<void> {
    this.options.logger.info('shutdown', { connections: this.transport.sockets.size });
    for (const timer of this.timers) clearInterval(timer);
    const httpClosed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    const sockets = [...this.transport.sockets.values()];
    const closed = sockets.map((ws) => new Promise<void>((resolve) => ws.once('close', () => resolve())));
    for (const ws of sockets) ws.close(CloseCode.serviceRestart, 'service restart');
    const grace = setTimeout(() => sockets.forEach((ws) => ws.terminate()), SHUTDOWN_GRACE_MS);
    await Promise.all(closed);
    clearTimeout(grace);
    this.wss.close();
    this.http.closeAllConnections();
    await httpClosed;
  }

  private async verify(req: IncomingMessage, accept: (ok: boolean, status?: number, body?: string, headers?: Record<string, string>) => void): Promise<void> {
    if (this.shuttingDown) return accept(false, 503, jsonBody('shutting_down', 'server is restarting'), JSON_HEADERS);
    const request = handshakeFrom(req);
    try {
      const admission = await this.engine.admit(request);
      if (!admission.ok) {
        const { status, code, message } = admission.error;
        return accept(false, status, jsonBody(code, message), JSON_HEADERS);
      }
      // ws drops the upgrade without a callback if the client left meanwhile; forget it then.
      // It keeps the id only, not the whole handshake, and onOpen removes it.
      const { connectionId } = request;
      const forgetUnopened = () => void this.registry.remove(connectionId);
      pendingConnectionIds.set(req, { connectionId, forgetUnopened });
      req.socket.once('close', forgetUnopened);
      accept(true);
    } catch (error) {
      this.options.logger.error('handshake_failed', { connectionId: request.connectionId, error });
      accept(false, 500, jsonBody('internal_error', 'internal server error'), JSON_HEADERS);
    }
  }

  private onOpen(ws: WebSocket, req: IncomingMessage): void {
    const pending = pendingConnectionIds.get(req);
    if (pending === undefined) return void ws.terminate();
    // From here the socket's own close event does the forgetting.
    req.socket.off('close', pending.forgetUnopened);
    const { connectionId } = pending;
    const { logger } = this.options;
    this.transport.sockets.set(connectionId, ws);
    this.alive.add(ws);

    ws.on('pong', () => this.alive.add(ws));
    ws.on('error', (error) => logger.info('socket_error', { connectionId, error: error.message, code: (error as { code?: string }).code }));
    ws.on('message', (data, isBinary) => {
      this.alive.add(ws);
      if (isBinary) return ws.close(CloseCode.unsupportedData, 'binary frames are not supported');
      this.engine.receive(connectionId, data.toString()).catch(() => {
        // The engine has logged it; the client gets a close code, never the error.
        ws.close(CloseCode.serverError, 'internal error');
      });
    });
    ws.on('close', (code) => {
      this.transport.sockets.delete(connectionId);
      logger.debug('socket_closed', { connectionId, code });
      this.engine.disconnect(connectionId).catch((error) => logger.error('disconnect_failed', { connectionId, error }));
    });

    this.engine.greet(connectionId).catch((error) => {
      logger.error('greet_failed', { connectionId, error });
      ws.close(CloseCode.serverError, 'internal error');
    });
  }

  /** Peers that did not answer the previous ping are dead (no close frame ever came) and are cut off. */
  private pingAll(): void {
    for (const ws of this.transport.sockets.values()) {
      if (!this.alive.has(ws)) {
        ws.terminate();
        continue;
      }
      this.alive.delete(ws);
      ws.ping();
    }
  }

  private serveHttp(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { code: 'method_not_allowed', message: 'use GET' });
    if (path === '/healthz') {
      return sendJson(res, 200, {
        status: this.shuttingDown ? 'shutting_down' : 'ok',
        connections: this.transport.sockets.size,
        uptime: Math.round((Date.now() - this.startedAt) / 1000),
        // Whoever started this process can tell it from another server on the same port (scripts/run-artifact.ts).
        instance: process.env.CLOUDSOCKET_INSTANCE_ID,
      });
    }
    if ((path === '/' || path === '/index.html') && this.options.page !== undefined) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' });
      return void res.end(req.method === 'HEAD' ? undefined : this.options.page);
    }
    sendJson(res, 404, { code: 'not_found', message: `nothing at ${path}; WebSocket clients connect with an Upgrade request` });
  }
}

const pendingConnectionIds = new WeakMap<IncomingMessage, { connectionId: string; forgetUnopened: () => void }>();
const JSON_HEADERS = { 'Content-Type': 'application/json' };

function jsonBody(code: string, message: string): string {
  return JSON.stringify({ code, message });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function handshakeFrom(req: IncomingMessage): HandshakeRequest {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return {
    connectionId: randomBytes(12).toString('base64url'),
    headers,
    query: Object.fromEntries(url.searchParams),
    sourceIp: req.socket.remoteAddress ?? '',
  };
}
