/**
 * A test-side WebSocket client over the real `ws`: queues every frame so a
 * test can await the next one it cares about instead of sleeping.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';

export type Frame = Record<string, any> & { type: string };

export interface ConnectOptions {
  headers?: Record<string, string>;
  protocols?: string[];
  /** Default wait for any awaited event. */
  timeoutMs?: number;
}

export interface Closed {
  code: number;
  reason: string;
}

export class TestClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<Closed>;
  private cursor = 0;
  private waiters: Array<() => void> = [];

  private constructor(
    readonly socket: WebSocket,
    private readonly timeoutMs: number,
  ) {
    socket.on('message', (data, isBinary) => {
      const text = data.toString();
      this.frames.push(isBinary ? { type: '__binary__', text } : parseFrame(text));
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.wake();
        resolve({ code, reason: reason.toString() });
      });
    });
    socket.on('error', () => this.wake());
  }

  static connect(url: string, options: ConnectOptions = {}): Promise<TestClient> {
    const socket = new WebSocket(url, options.protocols, { headers: options.headers });
    const client = new TestClient(socket, options.timeoutMs ?? 5000);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(client));
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`handshake refused with HTTP ${res.statusCode}`)));
    });
  }

  /** Connects and consumes the welcome frame. */
  static async join(url: string, options: ConnectOptions = {}): Promise<{ client: TestClient; welcome: Frame }> {
    const client = await TestClient.connect(url, options);
    const welcome = await client.next('welcome');
    return { client, welcome };
  }

  send(frame: string | object): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /**
   * Resolves with the next unread frame of `type` (or matching `predicate`),
   * skipping over others; rejects after the timeout or when the socket closes first.
   */
  async next(type?: string | ((frame: Frame) => boolean), timeoutMs = this.timeoutMs): Promise<Frame> {
    const matches = typeof type === 'function' ? type : (frame: Frame) => type === undefined || frame.type === type;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.cursor < this.frames.length) {
        const frame = this.frames[this.cursor++]!;
        if (matches(frame)) return frame;
      }
      if (this.socket.readyState === WebSocket.CLOSED) throw new Error(`socket closed while waiting for ${describe(type)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${describe(type)} frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  socketOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Frames received so far of `type`, read or not. */
  all(type: string): Frame[] {
    return this.frames.filter((frame) => frame.type === type);
  }

  /** The highest `seq` received so far (a welcome's included): what a resuming client passes as `since`. */
  lastSeq(): number {
    let highest = 0;
    for (const frame of this.frames) if (typeof frame.seq === 'number' && frame.seq > highest) highest = frame.seq;
    return highest;
  }

  /**
   * The query parameters that resume this client's session on a new
   * connection: the token of its latest `welcome` or `resumed`, and its
   * `lastSeq`. Throws when it has had neither frame.
   */
  resumeQuery(): { resume: string; since: string } {
    const greeting = this.frames.findLast((frame) => frame.type === 'welcome' || frame.type === 'resumed');
    if (typeof greeting?.resumeToken !== 'string') throw new Error('no welcome or resumed frame with a resumeToken yet');
    return { resume: greeting.resumeToken, since: String(this.lastSeq()) };
  }

  async waitClosed(timeoutMs = this.timeoutMs): Promise<Closed> {
    return withTimeout(this.closed, timeoutMs, 'close');
  }

  close(code = 1000): Promise<Closed> {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) this.socket.close(code);
    return this.waitClosed();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** The HTTP status (and JSON body) a refused handshake answers with; 101 when it is accepted. */
export function handshakeStatus(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('open', () => {
      socket.terminate();
      resolve({ status: 101, body: '' });
    });
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    socket.once('error', reject);
  });
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/** Appends query parameters to a base WebSocket URL that may already carry a path. */
export function withQuery(base: string, query: Record<string, string | undefined>): string {
  const url = new URL(base);
  for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, value);
  return url.toString();
}

export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function parseFrame(text: string): Frame {
  try {
    return JSON.parse(text) as Frame;
  } catch {
    return { type: '__text__', text };
  }
}

function describe(type: unknown): string {
  return typeof type === 'string' ? `"${type}"` : 'matching';
}
