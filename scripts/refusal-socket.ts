/**
 * A `ws` WebSocket for the ReconnectingClient that tells a refused handshake
 * apart from a lost connection. ws reports a server's non-101 answer only as
 * an error and a close with 1006; its 'unexpected-response' event gives the
 * response itself, from which this reads the status and the start of the body.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import WebSocket from 'ws';
import type { SocketConstructor, SocketLike } from '../clients/reconnecting-client.js';

export interface HandshakeRefusal {
  status: number;
  /** The first BODY_LIMIT characters of the response body, as sent. */
  body: string;
  /** 401 and 403: the credentials decide, and sending them again cannot change the answer. */
  final: boolean;
}

/** The close a refusal is reported as: final ones as policy (1008), which the client does not retry; others as a lost connection. */
const FINAL_REFUSAL_CLOSE = 1008;
const RETRIED_REFUSAL_CLOSE = 1006;
const BODY_LIMIT = 2048;
/** A refusal whose body never ends is reported with what came so far. */
const BODY_TIMEOUT_MS = 2000;

/** `onRefused` hears each refusal before the socket reports its close. */
export function refusalReportingWebSocket(onRefused: (refusal: HandshakeRefusal) => void): SocketConstructor {
  return class RefusalReportingSocket implements SocketLike {
    private readonly socket: WebSocket;
    private refusal: HandshakeRefusal | undefined;
    onopen: SocketLike['onopen'] = null;
    onmessage: SocketLike['onmessage'] = null;
    onclose: SocketLike['onclose'] = null;
    onerror: SocketLike['onerror'] = null;

    constructor(url: string) {
      this.socket = new WebSocket(url);
      this.socket.onopen = (event) => this.onopen?.(event);
      this.socket.onmessage = (event) => this.onmessage?.(event);
      this.socket.onerror = (event) => this.onerror?.(event);
      this.socket.onclose = (event) => {
        const refusal = this.refusal;
        if (refusal) this.report(refusal);
        this.onclose?.(refusal ? { code: refusal.final ? FINAL_REFUSAL_CLOSE : RETRIED_REFUSAL_CLOSE, reason: describeRefusal(refusal) } : event);
      };
      // With a listener, ws leaves the refused request to us: read the body, then abort.
      this.socket.on('unexpected-response', (_request: ClientRequest, response: IncomingMessage) => {
        const status = response.statusCode ?? 0;
        // Known at once: a response that breaks off (or that ws drops) still closes as a refusal.
        const refusal: HandshakeRefusal = { status, body: '', final: status === 401 || status === 403 };
        this.refusal = refusal;
        const done = () => {
          clearTimeout(timer);
          this.report(refusal);
          this.socket.terminate();
        };
        const timer = setTimeout(done, BODY_TIMEOUT_MS);
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          if (this.reported) return;
          refusal.body = (refusal.body + chunk).slice(0, BODY_LIMIT);
          if (refusal.body.length >= BODY_LIMIT) done();
        });
        response.once('end', done);
        response.once('error', done);
      });
    }

    private reported = false;

    private report(refusal: HandshakeRefusal): void {
      if (this.reported) return;
      this.reported = true;
      onRefused(refusal);
    }

    get readyState(): number {
      return this.socket.readyState;
    }

    send(data: string): void {
      this.socket.send(data);
    }

    close(code?: number, reason?: string): void {
      this.socket.close(code, reason);
    }

    terminate(): void {
      this.socket.terminate();
    }
  };
}

/** One line: `HTTP 401 Unauthorized: {"message":"Unauthorized"}`. */
export function describeRefusal(refusal: HandshakeRefusal): string {
  const body = refusal.body.replace(/\s+/g, ' ').trim();
  const status = `HTTP ${refusal.status}${STATUS_CODES[refusal.status] ? ` ${STATUS_CODES[refusal.status]}` : ''}`;
  return body ? `${status}: ${body.length > 300 ? `${body.slice(0, 300)}…` : body}` : status;
}
