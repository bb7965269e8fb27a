/**
 * Resuming on the CloudBase target, from source and from the built zip run
 * by its scf_bootstrap: a client that lost its connection comes back with
 * its token and the last seq it saw, takes its clientId back and is given
 * exactly what it missed; a token that is forged, expired, of another room
 * or used twice never hands anyone's name or frames to the wrong connection.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as delay } from 'node:timers/promises';
import { createChatApp } from '../apps/chat/index.js';
import { CloudbaseServer } from '../functions/cloudbase/server.js';
import { MemoryRoomLog } from '../shared/memory-room-log.js';
import type { LogRead, RoomLog } from '../shared/room-log.js';
import { openCuttableLink, type CuttableLink } from './support/cuttable-link.js';
import { TestClient, uniqueName, withQuery, type Frame } from './support/client.js';
import { startArtifactServer, startSourceServer } from './support/servers.js';

interface Running {
  url: string;
  port: number;
  stop(): Promise<unknown>;
}

interface Target {
  name: string;
  start(env?: Record<string, string>): Promise<Running>;
  /** Whether one build serves every start (the zip's secret), or each start is a process of its own with its own secret. */
  sharesBuildSecret: boolean;
}

const targets: Target[] = [
  { name: 'from source', start: (env) => startSourceServer(env), sharesBuildSecret: false },
  {
    name: 'from the built zip (bash scf_bootstrap)',
    start: async (env) => {
      const artifact = await startArtifactServer(env);
      return { url: artifact.url, port: artifact.running.port, stop: () => artifact.stop('SIGKILL') };
    },
    sharesBuildSecret: true,
  },
];

const open: TestClient[] = [];
const links: CuttableLink[] = [];

afterEach(async () => {
  for (const client of open.splice(0)) client.socket.terminate();
  await Promise.all(links.splice(0).map((link) => link.close()));
});

async function joined(url: string, query: Record<string, string | undefined>): Promise<TestClient> {
  const { client } = await TestClient.join(withQuery(url, query));
  open.push(client);
  return client;
}

async function connected(url: string, query: Record<string, string | undefined>): Promise<TestClient> {
  const client = await TestClient.connect(withQuery(url, query));
  open.push(client);
  return client;
}

/** A server of `target` with `env`, started before the tests of the enclosing describe and stopped after them. */
function serverOf(target: Target, env: Record<string, string> = {}): () => Running {
  let running: Running | undefined;
  beforeAll(async () => {
    running = await target.start(env);
  });
  afterAll(() => running?.stop());
  return () => running!;
}

/** Alice and bob in a fresh room, alice (through `aliceUrl`, a cuttable link, when given) having seen bob arrive. */
async function aliceAndBob(url: string, aliceUrl = url) {
  const room = uniqueName('room');
  const aliceId = uniqueName('alice');
  const alice = await joined(aliceUrl, { clientId: aliceId, room });
  const bob = await joined(url, { clientId: uniqueName('bob'), room });
  await alice.next('user_joined');
  return { room, aliceId, alice, bob };
}

async function cuttableLinkTo(server: Running): Promise<{ url: string; cut(): void }> {
  const link = await openCuttableLink(server.port);
  links.push(link);
  return { url: `ws://127.0.0.1:${link.port}/`, cut: () => link.cut() };
}

/** The unread frames of `client` before its first `resumed`, and that frame. */
async function untilResumed(client: TestClient): Promise<{ replayed: Frame[]; resumed: Frame }> {
  const replayed: Frame[] = [];
  for (;;) {
    const frame = await client.next();
    if (frame.type === 'resumed') return { replayed, resumed: frame };
    replayed.push(frame);
  }
}

/** Sends chats from `sender` and waits until `watcher` has seen each, so they are in the room's log. */
async function chats(sender: TestClient, watcher: TestClient, contents: string[]): Promise<Frame[]> {
  for (const content of contents) sender.send({ type: 'chat', content });
  const seen: Frame[] = [];
  for (const content of contents) seen.push(await watcher.next((frame) => frame.type === 'chat' && frame.message === content));
  return seen;
}

/** A round trip through the server and the room: once it is back, every frame sent to `watchers` before it has arrived. */
async function settled(sender: TestClient, watchers: TestClient[]): Promise<void> {
  const marker = uniqueName('marker');
  sender.send({ type: 'chat', content: marker });
  await Promise.all([sender, ...watchers].map((client) => client.next((frame) => frame.type === 'chat' && frame.message === marker)));
}

function presenceOf(client: TestClient, clientId: string): Frame[] {
  return client.frames.filter((frame) => (frame.type === 'user_left' || frame.type === 'user_joined') && frame.clientId === clientId);
}

/** The token with one character of its signature changed, so it decodes alike but no longer verifies. */
function forged(token: string): string {
  const last = token.at(-2)!;
  return `${token.slice(0, -2)}${last === 'A' ? 'B' : 'A'}${token.at(-1)}`;
}

for (const target of targets) {
  describe(`resuming on the CloudBase target ${target.name}`, () => {
    const running = serverOf(target);

    it('gives a client cut off without a close frame exactly the frames it missed, in order, then resumed; the room sees no one leave or join', async () => {
      const server = running();
      const link = await cuttableLinkTo(server);
      const { room, aliceId, alice, bob } = await aliceAndBob(server.url, link.url);
      const carol = await joined(server.url, { clientId: uniqueName('carol'), room });
      await alice.next((frame) => frame.type === 'user_joined' && frame.clientId === carol.frames[0]!.clientId);
      await chats(bob, alice, ['before the cut']);
      const resumeQuery = alice.resumeQuery();

      link.cut();
      const missed = await chats(bob, carol, ['missed 1', 'missed 2']);
      carol.send({ type: 'private', to: aliceId, content: 'for alice alone' });
      carol.send({ type: 'private', to: bob.frames[0]!.clientId, content: 'for bob alone' });
      await bob.next('private');
      missed.push(...(await chats(carol, bob, ['missed 3'])));

      const back = await connected(server.url, resumeQuery);
      const { replayed, resumed } = await untilResumed(back);
      expect(replayed.map((frame) => [frame.type, frame.message])).toEqual([
        ['chat', 'missed 1'],
        ['chat', 'missed 2'],
        ['private', 'for alice alone'],
        ['chat', 'missed 3'],
      ]);
      const seqs = replayed.map((frame) => frame.seq as number);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      expect(seqs[0]).toBe(Number(resumeQuery.since) + 1);
      // Bob's private frame took a seq between them, and went to no one else.
      expect(seqs.at(-1)).toBe(seqs[0]! + 4);
      expect(replayed[0]!.timestamp).toBe(missed[0]!.timestamp);
      expect(resumed).toMatchObject({ clientId: aliceId, room, seq: seqs.at(-1), onlineCount: 3, replayed: 4 });
      expect(resumed.resumeToken).not.toBe(resumeQuery.resume);

      await settled(bob, [carol, back]);
      for (const member of [bob, carol]) expect(presenceOf(member, aliceId)).toEqual([]);
      expect(back.all('welcome')).toEqual([]);
      bob.send({ type: 'users' });
      expect((await bob.next('users')).users.filter((id: string) => id === aliceId)).toHaveLength(1);
    });

    it('hands the clientId to a client that comes back while its old socket is still open: that one gets session_replaced, then 4001', async () => {
      const server = running();
      const { room, aliceId, alice, bob } = await aliceAndBob(server.url);

      const back = await connected(server.url, alice.resumeQuery());
      const { replayed, resumed } = await untilResumed(back);
      expect(replayed).toEqual([]);
      expect(resumed).toMatchObject({ clientId: aliceId, room, replayed: 0, onlineCount: 2 });
      expect(await alice.next('error')).toMatchObject({ code: 'session_replaced' });
      expect((await alice.waitClosed()).code).toBe(4001);

      await settled(bob, [back]);
      expect(presenceOf(bob, aliceId)).toEqual([]);
      expect(alice.all('chat')).toEqual([]);
    });

    it('lets a client whose old connection was noticed gone resume too; the room, told it left, is told it is back', async () => {
      const server = running();
      const { room, aliceId, alice, bob } = await aliceAndBob(server.url);
      const resumeQuery = alice.resumeQuery();
      await alice.close();
      await bob.next('user_left');
      await chats(bob, bob, ['while alice was away']);

      const back = await connected(server.url, resumeQuery);
      const { replayed, resumed } = await untilResumed(back);
      // Its own user_left is not replayed to it: it never left, as far as it can tell.
      expect(replayed.map((frame) => [frame.type, frame.clientId])).toEqual([['chat', bob.frames[0]!.clientId]]);
      expect(resumed).toMatchObject({ clientId: aliceId, replayed: 1, onlineCount: 2 });
      // Numbered before the replay was read, as a welcome counts its own user_joined: resuming from here skips it.
      expect(await bob.next('user_joined')).toMatchObject({ clientId: aliceId, seq: resumed.seq });
    });

    it('refuses a forged token with resume_token_invalid and greets the connection as a new one, under a name of its own', async () => {
      const server = running();
      const { room, aliceId, alice, bob } = await aliceAndBob(server.url);
      const { resume, since } = alice.resumeQuery();

      const impostor = await connected(server.url, { resume: forged(resume), since, room });
      expect(await impostor.next()).toMatchObject({ type: 'resume_failed', code: 'resume_token_invalid' });
      const welcome = await impostor.next();
      expect(welcome).toMatchObject({ type: 'welcome', room });
      expect(welcome.clientId).toMatch(/^client_/);
      expect(await bob.next('user_joined')).toMatchObject({ clientId: welcome.clientId });

      await settled(bob, [alice, impostor]);
      expect(alice.socketOpen()).toBe(true);
      expect(alice.all('error')).toEqual([]);
      expect(impostor.all('chat').map((frame) => frame.message)).toEqual([bob.all('chat').at(-1)!.message]);
    });

    it('refuses a token of another room with resume_wrong_room: the connection enters the room it asked for, as somebody new', async () => {
      const server = running();
      const elsewhere = uniqueName('elsewhere');
      const aliceId = uniqueName('alice');
      const alice = await joined(server.url, { clientId: aliceId, room: uniqueName('room') });
      await chats(alice, alice, ['only for this room']);

      const stray = await connected(server.url, { ...alice.resumeQuery(), room: elsewhere });
      expect(await stray.next()).toMatchObject({ type: 'resume_failed', code: 'resume_wrong_room' });
      const welcome = await stray.next();
      expect(welcome).toMatchObject({ type: 'welcome', room: elsewhere, onlineCount: 1 });
      expect(welcome.clientId).not.toBe(aliceId);
      await settled(alice, []);
      expect(alice.socketOpen()).toBe(true);
      expect(stray.all('chat')).toEqual([]);
    });

    it('lets exactly one of two connections resuming with one token at once end with the clientId; the other gets session_replaced and 4001', async () => {
      const server = running();
      const link = await cuttableLinkTo(server);
      const { aliceId, alice, bob } = await aliceAndBob(server.url, link.url);
      const resumeQuery = alice.resumeQuery();
      link.cut();

      const twins = await Promise.all([connected(server.url, resumeQuery), connected(server.url, resumeQuery)]);
      // Whichever replaced the other holds the name; the one it replaced is closed, whether it had been greeted or not.
      const loserIndex = await Promise.race(twins.map((twin, index) => twin.waitClosed(10_000).then(() => index)));
      const loser = twins[loserIndex]!;
      const winner = twins[1 - loserIndex]!;
      expect((await loser.waitClosed()).code).toBe(4001);
      expect(loser.all('error').map((frame) => frame.code)).toEqual(['session_replaced']);
      expect(await winner.next((frame) => frame.type === 'resumed' || frame.type === 'welcome')).toMatchObject({ type: 'resumed', clientId: aliceId });

      await settled(bob, [winner]);
      expect(winner.socketOpen()).toBe(true);
      bob.send({ type: 'users' });
      expect((await bob.next('users')).users.filter((id: string) => id === aliceId)).toHaveLength(1);
      expect(presenceOf(bob, aliceId)).toEqual([]);
    });

    it('refuses resume with a since that is no seq: HTTP 400 invalid_since', async () => {
      const server = running();
      const alice = await joined(server.url, { room: uniqueName('room') });
      const { resume } = alice.resumeQuery();
      for (const since of ['', '-1', '1.5', 'latest', '9007199254740992', '12345678901234567']) {
        await expect(TestClient.connect(withQuery(server.url, { resume, since }))).rejects.toThrow(/HTTP 400/);
      }
    });

    it('takes a sixteen-digit since, as a Redis log numbers frames while Redis is away (ms × 1000)', async () => {
      const server = running();
      const aliceId = uniqueName('alice');
      const alice = await joined(server.url, { room: uniqueName('room'), clientId: aliceId });
      const { resume } = alice.resumeQuery();
      // Further than the room's log has gone: answered under the same clientId, not a refused handshake.
      const back = await connected(server.url, { resume, since: '1796169450966000' });
      expect(await back.next()).toMatchObject({ type: 'resume_failed' });
      expect(await back.next()).toMatchObject({ type: 'welcome', clientId: aliceId });
    });

    describe('with a log of 3 frames', () => {
      const small = serverOf(target, { ROOM_LOG_SIZE: '3' });

      it('answers a resume from further back with resume_gap, then a welcome under the same clientId', async () => {
        const { url } = small();
        const { room, aliceId, alice, bob } = await aliceAndBob(url);
        const resumeQuery = alice.resumeQuery();
        const sent = await chats(bob, alice, ['1', '2', '3', '4', '5']);

        const back = await connected(url, resumeQuery);
        expect(await back.next()).toMatchObject({ type: 'resume_failed', code: 'resume_gap' });
        const welcome = await back.next();
        expect(welcome).toMatchObject({ type: 'welcome', clientId: aliceId, room, seq: sent.at(-1)!.seq, onlineCount: 2 });
        expect(typeof welcome.resumeToken).toBe('string');
        expect((await alice.waitClosed()).code).toBe(4001);
        await settled(bob, [back]);
        // The room never saw alice go, so it hears of no arrival either.
        expect(presenceOf(bob, aliceId)).toEqual([]);
      });
    });

    describe('with resume tokens that live 0.3 s', () => {
      const brief = serverOf(target, { RESUME_TOKEN_TTL: '0.3' });

      it('refuses an expired token with resume_token_expired and greets the connection as a new one', async () => {
        const { url } = brief();
        const alice = await joined(url, { clientId: uniqueName('alice'), room: uniqueName('room') });
        const resumeQuery = alice.resumeQuery();
        // Expiry is a point in time, not an event: wait past it.
        await delay(400);
        const late = await connected(url, resumeQuery);
        expect(await late.next()).toMatchObject({ type: 'resume_failed', code: 'resume_token_expired' });
        const welcome = await late.next();
        expect(welcome).toMatchObject({ type: 'welcome', room: 'lobby' });
        expect(welcome.clientId).toMatch(/^client_/);
        expect(alice.socketOpen()).toBe(true);
        expect(alice.all('error')).toEqual([]);
      });
    });

    it(`answers a resume after the server restarted (its log lost with it) with ${target.sharesBuildSecret ? 'resume_gap' : 'resume_token_invalid'}, then a welcome`, async () => {
      const first = await target.start();
      const { room, aliceId, alice, bob } = await aliceAndBob(first.url);
      await chats(bob, alice, ['before the restart']);
      const resumeQuery = alice.resumeQuery();
      await first.stop();
      await alice.waitClosed();

      const second = await target.start();
      try {
        const back = await connected(second.url, resumeQuery);
        // One build shares its secret across restarts; a process from source makes its own.
        expect(await back.next()).toMatchObject({ type: 'resume_failed', code: target.sharesBuildSecret ? 'resume_gap' : 'resume_token_invalid' });
        const welcome = await back.next();
        expect(welcome).toMatchObject({ type: 'welcome', seq: 0, onlineCount: 1 });
        if (target.sharesBuildSecret) expect(welcome).toMatchObject({ clientId: aliceId, room });
        else expect(welcome).toMatchObject({ room: 'lobby' });
      } finally {
        await second.stop();
      }
    });
  });
}

describe('resuming on the CloudBase target from source, with RESUME_SECRET set', () => {
  it('keeps tokens good across a restart: the lost log answers resume_gap, and the clientId is taken back', async () => {
    const env = { RESUME_SECRET: 'one secret for every instance' };
    const first = await startSourceServer(env);
    const aliceId = uniqueName('alice');
    const alice = await joined(first.url, { clientId: aliceId });
    const resumeQuery = alice.resumeQuery();
    await first.stop();
    await alice.waitClosed();
    const second = await startSourceServer(env);
    try {
      const back = await connected(second.url, resumeQuery);
      expect(await back.next()).toMatchObject({ type: 'resume_failed', code: 'resume_gap' });
      expect(await back.next()).toMatchObject({ type: 'welcome', clientId: aliceId, room: 'lobby', seq: 0 });
    } finally {
      await second.stop();
    }
  });
});

/**
 * A real memory log whose reads can be held at a gate after they have read:
 * what lets a test deliver live frames while a replay is under way, which
 * with an in-memory log otherwise never waits on anything.
 */
class GatedLog implements RoomLog {
  readonly epoch: string | undefined;
  private gate: Promise<void> | undefined;
  private reached: (() => void) | undefined;

  constructor(private readonly inner: MemoryRoomLog) {
    this.epoch = inner.epoch;
  }

  /** Holds the next read once it has read; resolves when it is held, with what lets it go. */
  holdNextRead(): { held: Promise<void>; release: () => void } {
    let release!: () => void;
    this.gate = new Promise((resolve) => (release = resolve));
    const held = new Promise<void>((resolve) => (this.reached = resolve));
    return { held, release };
  }

  append: RoomLog['append'] = (room, entry) => this.inner.append(room, entry);
  latest: RoomLog['latest'] = (room) => this.inner.latest(room);

  async read(room: string, after: number, now: number): Promise<LogRead> {
    const read = await this.inner.read(room, after, now);
    const gate = this.gate;
    this.gate = undefined;
    this.reached?.();
    if (gate) await gate;
    return read;
  }
}

describe('resuming on the CloudBase target from source, while live frames arrive during the replay', () => {
  it('holds them back until resumed has gone, then sends the newer ones in order, each once', async () => {
    const log = new GatedLog(new MemoryRoomLog({ maxEntries: 100, maxAgeMs: 60_000 }));
    const server = new CloudbaseServer({ app: createChatApp(), log, settings: { host: '127.0.0.1', port: 0 } });
    const { port } = await server.listen();
    const url = `ws://127.0.0.1:${port}/`;
    try {
      const { alice, bob } = await aliceAndBob(url);
      const resumeQuery = alice.resumeQuery();
      await chats(bob, alice, ['missed']);

      const { held, release } = log.holdNextRead();
      const back = await connected(url, resumeQuery);
      await held;
      await chats(bob, bob, ['live 1', 'live 2']);
      back.send({ type: 'ping' });
      expect(back.frames).toEqual([]);
      release();

      const frames: Frame[] = [];
      while (frames.length < 5) frames.push(await back.next());
      expect(frames.map((frame) => [frame.type, frame.message])).toEqual([
        ['chat', 'missed'],
        ['resumed', undefined],
        ['chat', 'live 1'],
        ['chat', 'live 2'],
        ['pong', undefined],
      ]);
      const [missed, resumed, live1, live2] = frames as [Frame, Frame, Frame, Frame];
      expect(resumed.seq).toBe(missed.seq);
      expect([live1.seq, live2.seq]).toEqual([missed.seq + 1, missed.seq + 2]);
      await settled(bob, [back]);
      expect(back.all('chat').filter((frame) => frame.message.startsWith('live'))).toHaveLength(2);
    } finally {
      await server.shutdown();
    }
  });
});
