import { once } from 'node:events';
import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import {
  backoffDelay,
  HEARTBEAT_LOST_CLOSE_CODE,
  NO_WELCOME_CLOSE_CODE,
  InvalidServerUrlError,
  ReconnectingClient,
  type ChatFrame,
  type ConnectionState,
  type ReconnectingClientOptions,
} from '../clients/reconnecting-client.js';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import { ClosedForAbuseError } from '../shared/errors.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { startAwsEmulator } from './support/emulator.js';
import { startSourceServer, type SourceServer } from './support/servers.js';

/** Everything a client reported, with a way to await the moment something shows up. */
class Recorder {
  readonly states: ConnectionState[] = [];
  readonly frames: ChatFrame[] = [];
  readonly rtts: number[] = [];
  private waiters: Array<() => void> = [];

  constructor(client: ReconnectingClient) {
    client.on('state', (state) => this.record(this.states, state));
    client.on('frame', (frame) => this.record(this.frames, frame));
    client.on('rtt', (rtt) => this.record(this.rtts, rtt));
  }

  welcomes(): Extract<ChatFrame, { type: 'welcome' }>[] {
    return this.frames.filter((frame): frame is Extract<ChatFrame, { type: 'welcome' }> => frame.type === 'welcome');
  }

  /** Resolves with the first non-undefined value of `read`, checked after every recorded event. */
  async until<T>(read: () => T | undefined | false, what: string, timeoutMs = 8000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = read();
      if (value !== undefined && value !== false) return value;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; states: ${JSON.stringify(this.states)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  welcomeNumber(n: number) {
    return this.until(() => this.welcomes()[n - 1], `welcome #${n}`);
  }

  state(status: ConnectionState['status'], from = 0) {
    return this.until(() => this.states.slice(from).find((state) => state.status === status), `"${status}" state`);
  }

  private record<T>(list: T[], value: T): void {
    list.push(value);
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

const clients: ReconnectingClient[] = [];
const cleanups: Array<() => Promise<unknown> | unknown> = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function startClient(options: Omit<ReconnectingClientOptions, 'WebSocket'>): { client: ReconnectingClient; events: Recorder } {
  const client = new ReconnectingClient({ WebSocket, ...options });
  const events = new Recorder(client);
  clients.push(client);
  client.connect();
  return { client, events };
}

async function cloudbase(port = 0): Promise<SourceServer> {
  const server = await startSourceServer({ PORT: String(port) });
  cleanups.push(() => server.stop());
  return server;
}

/** A bare `ws` server whose behaviour a test scripts, for what the chat server never does. */
async function scriptedServer(onConnection: (socket: WebSocket, url: URL) => void): Promise<string> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  wss.on('connection', (socket, req) => onConnection(socket, new URL(req.url ?? '/', 'ws://localhost')));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of wss.clients) socket.terminate();
        wss.close(() => resolve());
      }),
  );
  const { port } = wss.address() as { port: number };
  return `ws://127.0.0.1:${port}/`;
}

/** A port nothing listens on: bound by us a moment ago, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('ReconnectingClient against the CloudBase target', () => {
  it('connects, is welcomed, and takes the clientId and room the welcome assigned', async () => {
    const server = await cloudbase();
    const { client, events } = startClient({ url: server.url });
    const welcome = await events.welcomeNumber(1);
    expect(events.states.map((state) => state.status)).toEqual(['connecting', 'open']);
    expect(events.states[0]).toEqual({ status: 'connecting', attempt: 0 });
    expect(welcome.clientId).toMatch(/^client_/);
    expect(client.clientId).toBe(welcome.clientId);
    expect(client.room).toBe('lobby');
    expect(new URL(client.connectUrl).searchParams.get('clientId')).toBe(welcome.clientId);
    expect(client.isOpen).toBe(true);
  });

  it('asks for the clientId and room it was given', async () => {
    const server = await cloudbase();
    const clientId = uniqueName('alice');
    const { events } = startClient({ url: server.url, clientId, room: 'kitchen' });
    const welcome = await events.welcomeNumber(1);
    expect(welcome).toMatchObject({ clientId, room: 'kitchen' });
  });

  it('sends chat, private, users and join frames the server acts on', async () => {
    const server = await cloudbase();
    const { client: peer, welcome: peerWelcome } = await TestClient.join(withQuery(server.url, { clientId: uniqueName('bob') }));
    const peerId: string = peerWelcome.clientId;
    const { client, events } = startClient({ url: server.url, clientId: uniqueName('carol') });
    await events.welcomeNumber(1);

    expect(client.chat('hello <b>there</b>')).toBe(true);
    expect(await peer.next('chat')).toMatchObject({ clientId: client.clientId, message: 'hello <b>there</b>' });
    expect(client.privateMessage(peerId, 'psst')).toBe(true);
    expect(await peer.next('private')).toMatchObject({ clientId: client.clientId, to: peerId, message: 'psst' });
    expect(client.requestUsers()).toBe(true);
    const users = await events.until(() => events.frames.find((frame) => frame.type === 'users'), 'users frame');
    expect(users).toMatchObject({ room: 'lobby', users: [peerId, client.clientId].sort() });
    expect(client.join('attic')).toBe(true);
    await events.welcomeNumber(2);
    expect(client.room).toBe('attic');
    await peer.close();
  });

  it('measures the round-trip time of a ping from its pong', async () => {
    const server = await cloudbase();
    const { client, events } = startClient({ url: server.url });
    await events.welcomeNumber(1);
    const rtt = await client.ping();
    expect(Number.isInteger(rtt)).toBe(true);
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(events.rtts).toEqual([rtt]);
    expect(client.lastRtt).toBe(rtt);
  });

  it('pings on its own every heartbeat interval', async () => {
    const server = await cloudbase();
    const { events } = startClient({ url: server.url, heartbeatIntervalMs: 50 });
    await events.until(() => events.rtts.length >= 3, 'three heartbeat round trips');
    expect(events.frames.filter((frame) => frame.type === 'pong')).toHaveLength(events.rtts.length);
  });

  it('reconnects after the server restarts, resuming its clientId and its current room', async () => {
    const first = await cloudbase();
    const { client, events } = startClient({ url: first.url, room: 'hall', reconnectDelayMs: 100, reconnectAttempts: 20 });
    const welcome = await events.welcomeNumber(1);
    client.join('cellar');
    await events.welcomeNumber(2);

    const before = events.states.length;
    await first.stop();
    const reconnecting = await events.state('reconnecting', before);
    expect(reconnecting).toMatchObject({ status: 'reconnecting', attempt: 1, maxAttempts: 20, code: 1012 });
    if (reconnecting.status === 'reconnecting') {
      expect(reconnecting.delayMs).toBeGreaterThanOrEqual(80);
      expect(reconnecting.delayMs).toBeLessThanOrEqual(120);
    }

    const second = await cloudbase(first.port);
    const resumed = await events.welcomeNumber(3);
    expect(resumed).toMatchObject({ clientId: welcome.clientId, room: 'cellar' });
    expect(events.states.slice(before).some((state) => state.status === 'connecting' && state.attempt >= 1)).toBe(true);

    // Resumed for real: someone in that room on the new server hears it.
    const { client: listener } = await TestClient.join(withQuery(second.url, { room: 'cellar' }));
    client.chat('back again');
    expect(await listener.next('chat')).toMatchObject({ clientId: welcome.clientId, message: 'back again' });
    await listener.close();
  });

  it('says goodbye with 1000 on close() and does not come back', async () => {
    const server = await cloudbase();
    const { client: peer } = await TestClient.join(server.url);
    const { client, events } = startClient({ url: server.url });
    const welcome = await events.welcomeNumber(1);
    client.close();
    expect(client.state).toEqual({ status: 'closed', code: 1000, reason: 'closed by client', gaveUp: false });
    expect(await peer.next('user_left')).toMatchObject({ clientId: welcome.clientId });
    expect(client.send({ type: 'chat', content: 'late' })).toBe(false);
    await expect(client.ping()).rejects.toThrow('not connected');
    await peer.close();
  });
});

describe('ReconnectingClient close handling', () => {
  it.each([1000, 1008])('treats a server close with %i as final', async (code) => {
    const url = await scriptedServer((socket) => socket.close(code, 'bye'));
    const { client, events } = startClient({ url, reconnectDelayMs: 10 });
    const closed = await events.state('closed');
    expect(closed).toEqual({ status: 'closed', code, reason: 'bye', gaveUp: false });
    // The decision is taken when the close arrives: a reconnect would have shown as a state already.
    expect(events.states.map((state) => state.status)).toEqual(['connecting', 'open', 'closed']);
    expect(client.state.status).toBe('closed');
  });

  it.each([1001, 1011, 1012, 4001])('reconnects after a server close with %i', async (code) => {
    let connections = 0;
    const url = await scriptedServer((socket) => {
      connections += 1;
      if (connections === 1) socket.close(code, 'again');
      else socket.send(JSON.stringify({ type: 'welcome', clientId: 'x', room: 'lobby', message: 'hi', onlineCount: 1, timestamp: new Date().toISOString() }));
    });
    const { events } = startClient({ url, reconnectDelayMs: 10 });
    expect(await events.state('reconnecting')).toMatchObject({ attempt: 1, code, reason: 'again' });
    await events.welcomeNumber(1);
    expect(connections).toBe(2);
  });

  it('asks for the clientId of its first welcome again after a reconnect was handed a variant', async () => {
    const asked: Array<string | null> = [];
    const handedOut = ['zed', 'zed-2', 'zed'];
    const url = await scriptedServer((socket, url) => {
      asked.push(url.searchParams.get('clientId'));
      const clientId = handedOut[asked.length - 1]!;
      socket.send(JSON.stringify({ type: 'welcome', clientId, room: 'lobby', message: 'hi', onlineCount: 1, timestamp: new Date().toISOString() }));
      // The first two connections drop; the third stays.
      if (asked.length < 3) socket.close(1011, 'drop');
    });
    const { client, events } = startClient({ url, reconnectDelayMs: 10 });
    await events.welcomeNumber(2);
    expect(client.clientId).toBe('zed-2');
    expect(client.identity).toBe('zed');
    await events.welcomeNumber(3);
    expect(asked).toEqual([null, 'zed', 'zed']);
    expect(client.clientId).toBe('zed');
  });

  it('backs off exponentially while the server is unreachable and gives up after the set attempts', async () => {
    const port = await closedPort();
    const { events } = startClient({ url: `ws://127.0.0.1:${port}/`, reconnectDelayMs: 10, reconnectAttempts: 3, jitter: 0 });
    const closed = await events.state('closed');
    expect(closed).toMatchObject({ status: 'closed', gaveUp: true });
    const waits = events.states.flatMap((state) => (state.status === 'reconnecting' ? [[state.attempt, state.delayMs]] : []));
    expect(waits).toEqual([
      [1, 10],
      [2, 20],
      [3, 40],
    ]);
    expect(events.states.filter((state) => state.status === 'connecting').map((state) => (state.status === 'connecting' ? state.attempt : -1))).toEqual([0, 1, 2, 3]);
  });

  it('with 0 reconnect attempts closes at the first drop', async () => {
    const url = await scriptedServer((socket) => socket.close(1011));
    const { events } = startClient({ url, reconnectAttempts: 0 });
    expect(await events.state('closed')).toMatchObject({ code: 1011, gaveUp: false });
    expect(events.states.some((state) => state.status === 'reconnecting')).toBe(false);
  });

  it('drops a connection whose heartbeat goes unanswered and reconnects', async () => {
    let connections = 0;
    // Accepts and then ignores everything: a peer that vanished without a close frame looks like this.
    const url = await scriptedServer(() => void (connections += 1));
    const { events } = startClient({ url, heartbeatIntervalMs: 50, reconnectDelayMs: 10 });
    const reconnecting = await events.state('reconnecting');
    expect(reconnecting).toMatchObject({ code: HEARTBEAT_LOST_CLOSE_CODE, reason: 'no answer to heartbeat' });
    await events.until(() => connections >= 2 || undefined, 'a second connection');
  });

  it('replaces a connection that opens but is never welcomed', async () => {
    let connections = 0;
    // The first connection is accepted and then ignored, as when a welcome invocation failed; the second is greeted.
    const url = await scriptedServer((socket) => {
      connections += 1;
      if (connections >= 2) socket.send(JSON.stringify({ type: 'welcome', clientId: 'late', room: 'lobby', message: 'hi', onlineCount: 1, timestamp: new Date().toISOString() }));
    });
    const { events } = startClient({ url, welcomeTimeoutMs: 100, heartbeatIntervalMs: 0, reconnectDelayMs: 10 });
    expect(await events.state('reconnecting')).toMatchObject({ code: NO_WELCOME_CLOSE_CODE, reason: 'no welcome from the server' });
    expect(await events.welcomeNumber(1)).toMatchObject({ clientId: 'late' });
    expect(connections).toBe(2);
  });

  it('close() during the wait cancels the pending reconnect', async () => {
    const url = await scriptedServer((socket) => socket.close(1011));
    const { client, events } = startClient({ url, reconnectDelayMs: 60_000 });
    await events.state('reconnecting');
    client.close();
    expect(client.state).toMatchObject({ status: 'closed', code: 1000 });
    expect(events.states.map((state) => state.status)).toEqual(['connecting', 'open', 'reconnecting', 'closed']);
  });

  it('ends in closed, not stuck connecting, when the WebSocket class refuses the URL outright', () => {
    // ws (like browsers) throws at once for a URL with a fragment: no network involved, nothing to retry.
    const { client, events } = startClient({ url: 'ws://127.0.0.1:9/#fragment' });
    expect(client.state).toMatchObject({ status: 'closed', code: 1006, gaveUp: false });
    if (client.state.status === 'closed') expect(client.state.reason).toContain('fragment');
    expect(events.states.map((state) => state.status)).toEqual(['connecting', 'closed']);
  });

  it('refuses a server URL that is not ws:// or wss://', () => {
    for (const url of ['http://127.0.0.1:9000/', 'not a url', '']) {
      expect(() => new ReconnectingClient({ url, WebSocket })).toThrow(InvalidServerUrlError);
    }
    expect(() => new ReconnectingClient({ url: 'https://x', WebSocket })).toThrow(expect.objectContaining({ code: 'invalid_url' }));
  });
});

const ABUSE_MESSAGE = new ClosedForAbuseError().message;
/** Low, so a flood reaches the close in a few frames on either target. */
const STRICT_RATE_LIMIT = { RATE_LIMIT: '1', RATE_BURST: '5', RATE_LIMIT_CLOSE_AFTER: '3' };

/** Floods until the server closes the connection, and checks the client stayed closed, never reconnecting. */
async function floodUntilClosed(url: string): Promise<ConnectionState> {
  const { client, events } = startClient({ url, reconnectDelayMs: 10 });
  await events.welcomeNumber(1);
  for (let i = 0; i < 30; i++) client.chat(`spam ${i}`);
  const closed = await events.state('closed');
  // Frames already on their way past the limit may each repeat it; what matters is that it came.
  expect(events.frames).toContainEqual(expect.objectContaining({ type: 'error', code: 'closed_for_abuse', message: ABUSE_MESSAGE }));
  expect(events.states.some((state) => state.status === 'reconnecting')).toBe(false);
  return closed;
}

describe('ReconnectingClient closed for abuse', () => {
  it.each([
    ['1000, as API Gateway closes after DeleteConnection', (socket: WebSocket) => socket.close(1000)],
    ['1011', (socket: WebSocket) => socket.close(1011, 'x')],
    ['no close frame at all', (socket: WebSocket) => socket.terminate()],
  ])('does not reconnect after a closed_for_abuse frame, whatever the close says: %s', async (_how, close) => {
    let connections = 0;
    const url = await scriptedServer((socket) => {
      connections += 1;
      socket.send(JSON.stringify({ type: 'welcome', clientId: 'x', room: 'lobby', message: 'hi', onlineCount: 1, timestamp: new Date().toISOString() }));
      socket.send(JSON.stringify({ type: 'error', code: 'closed_for_abuse', message: ABUSE_MESSAGE, timestamp: new Date().toISOString() }));
      close(socket);
    });
    const { events } = startClient({ url, reconnectDelayMs: 10 });
    expect(await events.state('closed')).toEqual({ status: 'closed', code: 1008, reason: ABUSE_MESSAGE, gaveUp: false });
    expect(events.states.map((state) => state.status)).toEqual(['connecting', 'open', 'closed']);
    expect(connections).toBe(1);
  });

  it('still reconnects after a plain rate_limited frame and a drop', async () => {
    let connections = 0;
    const url = await scriptedServer((socket) => {
      connections += 1;
      socket.send(JSON.stringify({ type: 'welcome', clientId: 'x', room: 'lobby', message: 'hi', onlineCount: 1, timestamp: new Date().toISOString() }));
      if (connections > 1) return;
      socket.send(JSON.stringify({ type: 'error', code: 'rate_limited', message: 'slow down', timestamp: new Date().toISOString() }));
      socket.close(1011);
    });
    const { events } = startClient({ url, reconnectDelayMs: 10 });
    await events.welcomeNumber(2);
    expect(connections).toBe(2);
  });

  it('on the CloudBase target: closed with 1008 and the reason, not reconnecting', async () => {
    const server = await startSourceServer(STRICT_RATE_LIMIT);
    cleanups.push(() => server.stop());
    expect(await floodUntilClosed(server.url)).toEqual({ status: 'closed', code: 1008, reason: ABUSE_MESSAGE, gaveUp: false });
  });

  describe('through the AWS emulator', () => {
    let emulator: RunningEmulator;
    beforeAll(async () => {
      emulator = await startAwsEmulator({ functionEnv: STRICT_RATE_LIMIT });
    });
    afterAll(() => emulator?.stop());

    it('the close itself says 1000, so the frame before it is what tells abuse from a goodbye', async () => {
      const { client } = await TestClient.join(withQuery(emulator.url, { clientId: uniqueName('abuser') }));
      for (let i = 0; i < 30; i++) client.send({ type: 'chat', content: `spam ${i}` });
      expect((await client.waitClosed(10_000)).code).toBe(1000);
      expect(client.frames).toContainEqual(expect.objectContaining({ type: 'error', code: 'closed_for_abuse', message: ABUSE_MESSAGE }));
    });

    it('the reconnecting client reports 1008 with the reason and does not come back', async () => {
      expect(await floodUntilClosed(emulator.url)).toEqual({ status: 'closed', code: 1008, reason: ABUSE_MESSAGE, gaveUp: false });
    });
  });
});

describe('backoffDelay', () => {
  it('doubles from the first delay up to the ceiling', () => {
    const middle = () => 0.5;
    expect([1, 2, 3, 4, 5, 6].map((attempt) => backoffDelay(attempt, 3000, 30_000, 0.2, middle))).toEqual([3000, 6000, 12000, 24000, 30000, 30000]);
  });

  it('spreads each delay over ±jitter', () => {
    expect(backoffDelay(1, 3000, 30_000, 0.2, () => 0)).toBe(2400);
    expect(backoffDelay(1, 3000, 30_000, 0.2, () => 0.999999)).toBe(3600);
    expect(backoffDelay(2, 3000, 30_000, 0, () => 0.123)).toBe(6000);
  });
});
