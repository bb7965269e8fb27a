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
  SESSION_REPLACED_CLOSE_CODE,
  type ChatFrame,
  type ConnectionState,
  type ReconnectingClientOptions,
  type ResumeOutcome,
} from '../clients/reconnecting-client.js';
import { SEQ_WINDOW, DeliveredSeqs } from '../clients/delivered-seqs.js';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import { ClosedForAbuseError } from '../shared/errors.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { openCuttableLink } from './support/cuttable-link.js';
import { startAwsEmulator } from './support/emulator.js';
import { startSourceServer, type SourceServer } from './support/servers.js';

/** Everything a client reported, with a way to await the moment something shows up. */
class Recorder {
  readonly states: ConnectionState[] = [];
  readonly frames: ChatFrame[] = [];
  readonly rtts: number[] = [];
  readonly resumes: ResumeOutcome[] = [];
  private waiters: Array<() => void> = [];

  constructor(client: ReconnectingClient) {
    client.on('state', (state) => this.record(this.states, state));
    client.on('frame', (frame) => this.record(this.frames, frame));
    client.on('rtt', (rtt) => this.record(this.rtts, rtt));
    client.on('resume', (outcome) => this.record(this.resumes, outcome));
  }

  /** The seqs of the delivered frames, in the order they were delivered. */
  seqs(): number[] {
    return this.frames.flatMap((frame) => (frame.type === 'chat' || frame.type === 'private' || frame.type === 'user_joined' || frame.type === 'user_left') && frame.seq !== undefined ? [frame.seq] : []);
  }

  resumeNumber(n: number) {
    return this.until(() => this.resumes[n - 1], `resume outcome #${n}`);
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
  it.each([1000, 1008, SESSION_REPLACED_CLOSE_CODE])('treats a server close with %i as final', async (code) => {
    const url = await scriptedServer((socket) => socket.close(code, 'bye'));
    const { client, events } = startClient({ url, reconnectDelayMs: 10 });
    const closed = await events.state('closed');
    expect(closed).toEqual({ status: 'closed', code, reason: 'bye', gaveUp: false });
    // The decision is taken when the close arrives: a reconnect would have shown as a state already.
    expect(events.states.map((state) => state.status)).toEqual(['connecting', 'open', 'closed']);
    expect(client.state.status).toBe('closed');
  });

  it.each([1001, 1011, 1012, 1013, 4500])('reconnects after a server close with %i', async (code) => {
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

/** Server frames as a scripted server sends them. */
const now = () => new Date().toISOString();
const welcomeFrame = (fields: Record<string, unknown> = {}) => JSON.stringify({ type: 'welcome', clientId: 'x', room: 'lobby', message: 'hi', onlineCount: 1, timestamp: now(), ...fields });
/** The frame numbered `seq`, the same bytes every time it is sent: a replay repeats a frame as it was, timestamp included. */
const chatFrame = (seq: number, room = 'lobby') =>
  JSON.stringify({ type: 'chat', id: `${room}-${seq}`, clientId: 'peer', room, message: `message ${seq}`, onlineCount: 2, seq, timestamp: new Date(Date.UTC(2026, 0, 1, 12, 0, 0, seq)).toISOString() });
const resumedFrame = (seq: number, resumeToken: string, replayed: number, fields: Record<string, unknown> = {}) =>
  JSON.stringify({ type: 'resumed', clientId: 'x', room: 'lobby', seq, resumeToken, onlineCount: 2, replayed, timestamp: now(), ...fields });

/** A scripted server playing `scripts[n]` to its n-th connection (the last one to any after), recording what each asked for. */
async function resumingServer(scripts: Array<(socket: WebSocket) => void>): Promise<{ url: string; asked: URLSearchParams[] }> {
  const asked: URLSearchParams[] = [];
  const url = await scriptedServer((socket, url) => {
    asked.push(url.searchParams);
    scripts[Math.min(asked.length, scripts.length) - 1]!(socket);
  });
  return { url, asked };
}

const sendAll = (socket: WebSocket, ...frames: string[]) => frames.forEach((frame) => socket.send(frame));
const resumeParams = (params: URLSearchParams) => ({ resume: params.get('resume'), since: params.get('since'), clientId: params.get('clientId'), room: params.get('room') });

describe('ReconnectingClient resuming', () => {
  it('resumes with the latest token and the highest seq seen, and delivers a replay once and in seq order, though a live frame overtook it', async () => {
    const { url, asked } = await resumingServer([
      (socket) => {
        sendAll(socket, welcomeFrame({ seq: 3, resumeToken: 't1' }), chatFrame(4), chatFrame(6));
        socket.close(1011);
      },
      (socket) => {
        // 9 is posted live before the replay of 7 and 8 (and 9 again) reaches the connection, as on AWS.
        sendAll(socket, chatFrame(9), chatFrame(7), chatFrame(8), chatFrame(9), resumedFrame(9, 't2', 3));
        // Live afterwards: a repeat, and two frames that swapped places on the way.
        sendAll(socket, chatFrame(10), chatFrame(10), chatFrame(12), chatFrame(11));
        socket.close(1011);
      },
      (socket) => socket.send(resumedFrame(12, 't3', 0)),
    ]);
    const { client, events } = startClient({ url, reconnectDelayMs: 10 });
    await events.resumeNumber(2);
    expect(asked.map(resumeParams)).toEqual([
      { resume: null, since: null, clientId: null, room: null },
      { resume: 't1', since: '6', clientId: 'x', room: 'lobby' },
      { resume: 't2', since: '12', clientId: 'x', room: 'lobby' },
    ]);
    expect(events.seqs()).toEqual([4, 6, 7, 8, 9, 10, 12, 11]);
    expect(events.resumes).toEqual([
      { resumed: true, clientId: 'x', room: 'lobby', replayed: 3, delivered: 3 },
      { resumed: true, clientId: 'x', room: 'lobby', replayed: 0, delivered: 0 },
    ]);
    // The missed frames come before the `resumed` frame that reports them.
    expect(events.frames.map((frame) => frame.type).indexOf('resumed')).toBe(events.frames.findIndex((frame) => frame.type === 'chat' && frame.seq === 9) + 1);
    expect(client.since).toBe(12);
    expect(client.isOpen).toBe(true);
  });

  it('holds a replay that a drop cut short out of since, so the next resume asks for it again, and delivers it once', async () => {
    const { url, asked } = await resumingServer([
      (socket) => {
        sendAll(socket, welcomeFrame({ seq: 0, resumeToken: 't1' }), chatFrame(1));
        socket.close(1011);
      },
      (socket) => {
        sendAll(socket, chatFrame(2), chatFrame(3));
        socket.terminate();
      },
      (socket) => sendAll(socket, chatFrame(2), chatFrame(3), chatFrame(4), resumedFrame(4, 't2', 3)),
    ]);
    const { events } = startClient({ url, reconnectDelayMs: 10 });
    const outcome = await events.resumeNumber(1);
    expect(asked.map((params) => params.get('since'))).toEqual([null, '1', '1']);
    expect(events.seqs()).toEqual([1, 2, 3, 4]);
    expect(outcome).toMatchObject({ resumed: true, replayed: 3, delivered: 3 });
  });

  it('delivers, in order, what it held for a resume when the connection then ends for good', async () => {
    const { url } = await resumingServer([
      (socket) => {
        socket.send(welcomeFrame({ seq: 5, resumeToken: 't1' }));
        socket.close(1011);
      },
      (socket) => {
        sendAll(socket, chatFrame(7), chatFrame(6));
        socket.close(1000);
      },
    ]);
    const { events } = startClient({ url, reconnectDelayMs: 10 });
    await events.until(() => events.states.find((state) => state.status === 'closed'), 'the final close');
    expect(events.seqs()).toEqual([6, 7]);
    expect(events.resumes).toEqual([]);
    // Delivered before the state says closed, so a listener of either sees them all.
    expect(events.frames).toHaveLength(3);
  });

  it('after resume_failed starts a new session: the frames that follow count though their seqs start over, and the welcome names who it is now', async () => {
    const { url, asked } = await resumingServer([
      (socket) => {
        sendAll(socket, welcomeFrame({ clientId: 'amy', seq: 10, resumeToken: 't1' }), chatFrame(11));
        socket.close(1011);
      },
      (socket) => {
        // As after a restart of a server that kept its log in memory: the numbering starts again.
        socket.send(JSON.stringify({ type: 'resume_failed', code: 'resume_gap', message: 'missed frames are gone', timestamp: now() }));
        sendAll(socket, chatFrame(1), welcomeFrame({ clientId: 'amy-2', seq: 1, resumeToken: 't2' }), chatFrame(2));
        socket.close(1011);
      },
      (socket) => socket.send(resumedFrame(2, 't3', 0, { clientId: 'amy-2' })),
    ]);
    const { client, events } = startClient({ url, clientId: 'amy', reconnectDelayMs: 10 });
    await events.resumeNumber(2);
    expect(events.resumes[0]).toEqual({ resumed: false, code: 'resume_gap', message: 'missed frames are gone' });
    expect(events.seqs()).toEqual([11, 1, 2]);
    expect(asked.map(resumeParams)).toEqual([
      { resume: null, since: null, clientId: 'amy', room: null },
      { resume: 't1', since: '11', clientId: 'amy', room: 'lobby' },
      { resume: 't2', since: '2', clientId: 'amy-2', room: 'lobby' },
    ]);
    expect(client.identity).toBe('amy-2');
  });

  it('starts afresh when a resume is answered with a plain welcome (a server from before resuming)', async () => {
    const { url, asked } = await resumingServer([
      (socket) => {
        sendAll(socket, welcomeFrame({ seq: 2, resumeToken: 't1' }), chatFrame(3));
        socket.close(1011);
      },
      (socket) => {
        sendAll(socket, welcomeFrame(), chatFrame(1));
        socket.close(1011);
      },
      (socket) => socket.send(welcomeFrame()),
    ]);
    const { events } = startClient({ url, reconnectDelayMs: 10 });
    await events.welcomeNumber(3);
    expect(asked.map((params) => params.get('resume'))).toEqual([null, 't1', null]);
    expect(events.seqs()).toEqual([3, 1]);
  });

  it('forgets the seqs it had when `resumed` reports a room whose numbering started over', async () => {
    const { url } = await resumingServer([
      (socket) => {
        sendAll(socket, welcomeFrame({ seq: 50, resumeToken: 't1' }), chatFrame(51));
        socket.close(1011);
      },
      (socket) => sendAll(socket, resumedFrame(0, 't2', 0), chatFrame(1), chatFrame(1), chatFrame(51)),
    ]);
    const { events } = startClient({ url, reconnectDelayMs: 10 });
    await events.until(() => events.seqs().length >= 3 || undefined, 'three chat frames');
    expect(events.seqs()).toEqual([51, 1, 51]);
  });

  it('after a join resumes in the new room from its seqs; a late frame of the room left is still delivered', async () => {
    const { url, asked } = await resumingServer([
      (socket) => {
        socket.send(welcomeFrame({ room: 'a', seq: 40, resumeToken: 'ta' }));
        socket.on('message', () => {
          sendAll(socket, welcomeFrame({ room: 'b', seq: 7, resumeToken: 'tb' }), chatFrame(41, 'a'), chatFrame(8, 'b'), chatFrame(8, 'b'));
          socket.close(1011);
        });
      },
      (socket) => socket.send(resumedFrame(8, 'tb2', 0, { room: 'b' })),
    ]);
    const { client, events } = startClient({ url, room: 'a', reconnectDelayMs: 10 });
    await events.welcomeNumber(1);
    client.join('b');
    await events.resumeNumber(1);
    expect(events.seqs()).toEqual([41, 8]);
    expect(resumeParams(asked[1]!)).toEqual({ resume: 'tb', since: '8', clientId: 'x', room: 'b' });
  });

  it('loses no frame to a server that numbers two frames alike, and says its seqs cannot order them', async () => {
    const joined = JSON.stringify({ type: 'user_joined', clientId: 'peer', room: 'lobby', message: 'peer joined lobby', onlineCount: 2, seq: 1, timestamp: now() });
    const { url } = await resumingServer([(socket) => sendAll(socket, welcomeFrame({ seq: 0, resumeToken: 't1' }), joined, chatFrame(1), chatFrame(1), joined)]);
    const { client, events } = startClient({ url });
    await events.until(() => events.seqs().length >= 2 || undefined, 'two frames numbered 1');
    expect(events.frames.map((frame) => frame.type)).toEqual(['welcome', 'user_joined', 'chat']);
    expect(client.seqOrderTrusted).toBe(false);
  });

  it.each([
    ['1000, as API Gateway closes after DeleteConnection', (socket: WebSocket) => socket.close(1000)],
    ['4001', (socket: WebSocket) => socket.close(SESSION_REPLACED_CLOSE_CODE, 'replaced')],
    ['no close frame at all', (socket: WebSocket) => socket.terminate()],
  ])('does not reconnect after a session_replaced frame, whatever the close says: %s', async (_how, close) => {
    let connections = 0;
    const message = 'another connection resumed this session';
    const url = await scriptedServer((socket) => {
      connections += 1;
      sendAll(socket, welcomeFrame({ seq: 0, resumeToken: 't1' }), JSON.stringify({ type: 'error', code: 'session_replaced', message, timestamp: now() }));
      close(socket);
    });
    const { events } = startClient({ url, reconnectDelayMs: 10 });
    expect(await events.state('closed')).toEqual({ status: 'closed', code: SESSION_REPLACED_CLOSE_CODE, reason: message, gaveUp: false });
    expect(events.states.map((state) => state.status)).toEqual(['connecting', 'open', 'closed']);
    expect(connections).toBe(1);
  });
});

const chatMessages = (events: Recorder) => events.frames.flatMap((frame) => (frame.type === 'chat' ? [frame.message] : []));

describe.each([
  { name: 'the CloudBase target', start: () => cloudbase() },
  {
    name: 'the AWS emulator',
    start: async () => {
      const emulator = await startAwsEmulator();
      cleanups.push(() => emulator.stop());
      return emulator;
    },
  },
])('ReconnectingClient resuming on $name', (target) => {
  it('after a cut resumes as itself from the highest seq seen, and gets the frames missed once, in order', async () => {
    const server = await target.start();
    const link = await openCuttableLink(server.port);
    cleanups.push(() => link.close());
    const { client, events } = startClient({ url: link.url(server.url), clientId: uniqueName('rita'), reconnectDelayMs: 50, reconnectAttempts: 20 });
    const welcome = await events.welcomeNumber(1);
    const { client: peer } = await TestClient.join(withQuery(server.url, { clientId: uniqueName('sam') }));
    peer.send({ type: 'chat', content: 'before the cut' });
    await events.until(() => chatMessages(events).includes('before the cut'), 'the chat before the cut');
    const highest = Math.max(...events.seqs());

    link.hold();
    link.cut();
    await events.state('reconnecting');
    expect(new URL(client.connectUrl).searchParams.get('since')).toBe(String(highest));
    for (const n of [1, 2, 3]) peer.send({ type: 'chat', content: `missed ${n}` });
    // Each echo to the sender comes after the frame went into the room's log.
    await peer.next('chat', 10_000); // the echo of "before the cut"
    const echoes = [];
    for (let n = 0; n < 3; n++) echoes.push(await peer.next('chat', 10_000));
    // The room's order is its seqs' (on AWS the three frames run as concurrent invocations and may be numbered in any order).
    const roomOrder = echoes.sort((a, b) => (a.seq as number) - (b.seq as number)).map((frame) => frame.message as string);
    link.release();

    expect(await events.resumeNumber(1)).toEqual({ resumed: true, clientId: welcome.clientId, room: 'lobby', replayed: 3, delivered: 3 });
    expect(client.clientId).toBe(welcome.clientId);
    peer.send({ type: 'chat', content: 'after the resume' });
    await events.until(() => chatMessages(events).includes('after the resume'), 'the chat after the resume');
    expect(chatMessages(events)).toEqual(['before the cut', ...roomOrder, 'after the resume']);
    const seqs = events.seqs();
    expect(seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]!)).toBe(true);
    // The old connection was never noticed gone, so the room was never told it left.
    expect(peer.all('user_left')).toEqual([]);
    await peer.close();
  });

  it('a connection resuming the same session replaces it: session_replaced, closed with 4001, no reconnect', async () => {
    const server = await target.start();
    const { client, events } = startClient({ url: server.url, reconnectDelayMs: 10 });
    const welcome = await events.welcomeNumber(1);
    // The connect URL carries this session's token: whoever uses it is the same session.
    const other = await TestClient.connect(client.connectUrl);
    expect(await other.next('resumed', 10_000)).toMatchObject({ clientId: welcome.clientId });
    const closed = await events.state('closed');
    expect(closed).toMatchObject({ status: 'closed', code: SESSION_REPLACED_CLOSE_CODE, gaveUp: false });
    expect(events.frames).toContainEqual(expect.objectContaining({ type: 'error', code: 'session_replaced' }));
    expect(events.states.some((state) => state.status === 'reconnecting')).toBe(false);
    expect(other.socketOpen()).toBe(true);
    await other.close();
  });
});

describe('DeliveredSeqs', () => {
  it('tells a repeat from a frame that arrives late, and remembers the highest seq', () => {
    const seqs = new DeliveredSeqs();
    expect([seqs.add(10, 'j'), seqs.add(8, 'h'), seqs.add(10, 'j'), seqs.add(8, 'h'), seqs.add(9, 'i')]).toEqual(['new', 'new', 'repeat', 'repeat', 'new']);
    expect(seqs.highest).toBe(10);
    seqs.advanceTo(20);
    seqs.advanceTo(15);
    expect(seqs.highest).toBe(20);
    expect(seqs.has(15, 'o')).toBe(false);
    expect(seqs.consistent).toBe(true);
  });

  it('delivers a second frame under a seq another frame has, and from then on says the numbering cannot order', () => {
    const seqs = new DeliveredSeqs();
    expect([seqs.add(1, 'joined'), seqs.add(1, 'chat'), seqs.add(1, 'chat'), seqs.add(1, 'joined')]).toEqual(['new', 'conflict', 'repeat', 'repeat']);
    expect(seqs.consistent).toBe(false);
  });

  it('keeps a window below the highest; what falls below it counts as delivered', () => {
    const seqs = new DeliveredSeqs();
    const top = 6 * SEQ_WINDOW;
    // Every other seq, as a member sees a room where others whisper.
    for (let seq = 2; seq <= top; seq += 2) seqs.add(seq, `f${seq}`);
    expect(seqs.has(top - 1, 'late')).toBe(false);
    expect(seqs.add(top - 1, 'late')).toBe('new');
    expect(seqs.has(1, 'anything')).toBe(true);
    expect(seqs.add(1, 'anything')).toBe('repeat');
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
