/**
 * The conformance suite of the core, for any app on any target: what every
 * app gets from cloudsocket (clientIds, rooms, presence, sequence numbers,
 * the core routes it answers, error frames, the rate limit and the frame
 * limits), over real sockets. Call it inside a vitest file with the target's WebSocket URL:
 *
 *   conformanceSuite('my app on CloudBase', () => target.url);
 *
 * Tests isolate themselves with fresh rooms and clientIds, so they can share
 * one server with each other and with the app's own tests.
 */
import { describe, expect, it } from 'vitest';
import type { CoreRouteName } from '../shared/routes.js';
import { handshakeStatus, TestClient, uniqueName, withQuery, type Frame } from './client.js';

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

export interface ConformanceOptions {
  /** The core routes the app answers: its `coreRoutes` (default all three). */
  coreRoutes?: boolean | readonly CoreRouteName[];
  /** Query parameters every connection needs to be admitted, e.g. `{ token }`. */
  query?: Record<string, string>;
  /** Headers every connection needs to be admitted. */
  headers?: Record<string, string>;
}

/** Fresh rooms and clients for one suite; every client is closed by `closeAll`. */
export function conformanceHelpers(baseUrl: () => string, options: ConformanceOptions = {}) {
  const url = (query: Record<string, string | undefined> = {}) => withQuery(baseUrl(), { ...options.query, ...query });
  const open: TestClient[] = [];
  async function join(query: Record<string, string | undefined> = {}) {
    const joined = await TestClient.join(url(query), { headers: options.headers });
    open.push(joined.client);
    return joined;
  }
  async function closeAll() {
    await Promise.all(open.splice(0).map((client) => client.close().catch(() => undefined)));
  }
  /** Two clients in one fresh room, with the first having seen the second arrive. */
  async function pair() {
    const room = uniqueName('room');
    const a = await join({ clientId: uniqueName('a'), room });
    const b = await join({ clientId: uniqueName('b'), room });
    await a.client.next('user_joined');
    return { room, a, b };
  }
  function expectTimestamp(frame: Frame) {
    expect(frame.timestamp).toMatch(ISO_8601);
  }
  /** A welcome (or `resumed`): the room's seq to resume from and a token to resume with. */
  function expectResumable(frame: Frame) {
    expect(Number.isSafeInteger(frame.seq) && frame.seq >= 0, `seq ${JSON.stringify(frame.seq)}`).toBe(true);
    expect(typeof frame.resumeToken).toBe('string');
    expect(frame.resumeToken.length).toBeGreaterThan(0);
  }
  /** Sends `frame` and expects the sender alone to be told `invalid_message`, timestamped. */
  async function expectInvalidMessage(sender: TestClient, frame: unknown) {
    sender.send(frame as string | Record<string, unknown>);
    const error = await sender.next('error');
    expect(error).toMatchObject({ type: 'error', code: 'invalid_message' });
    expect(typeof error.message).toBe('string');
    expectTimestamp(error);
  }
  return { url, join, closeAll, pair, expectTimestamp, expectResumable, expectInvalidMessage };
}

export function conformanceSuite(target: string, baseUrl: () => string, options: ConformanceOptions = {}): void {
  const { url, join, closeAll, pair, expectTimestamp, expectResumable, expectInvalidMessage } = conformanceHelpers(baseUrl, options);
  const chosen = options.coreRoutes === false ? [] : options.coreRoutes === true || options.coreRoutes === undefined ? ['ping', 'join', 'users'] : options.coreRoutes;
  const answers = (route: CoreRouteName) => chosen.includes(route);
  // A route the app does not take has no test of its own; 'unknown_type' below covers it.
  const whenRoute = (route: CoreRouteName): ((name: string, test: () => Promise<void>) => void) => (answers(route) ? it : () => undefined);
  const handshake = (query: Record<string, string>) => handshakeStatus(url(query), options.headers);

  /** Something the client can send that the app answers, to prove a connection still works. */
  async function roundTrip(client: TestClient) {
    client.send(answers('ping') ? { type: 'ping' } : { type: 'cloudsocket_conformance_unknown' });
    await client.next(answers('ping') ? 'pong' : 'error');
  }

  describe(`core conformance: ${target}`, () => {
    describe('connecting', () => {
      it('assigns a client_ id and the lobby when no parameters are given', async () => {
        const { welcome } = await join();
        expect(welcome).toMatchObject({ type: 'welcome', room: 'lobby' });
        expect(welcome.clientId).toMatch(/^client_[\w-]+$/);
        expect(welcome.onlineCount).toBeGreaterThanOrEqual(1);
        expectTimestamp(welcome);
        await closeAll();
      });

      it('honours clientId and room, Unicode letters included', async () => {
        const room = uniqueName('房间');
        const clientId = `李雷_${uniqueName('x').slice(-4)}`;
        const { welcome } = await join({ clientId, room });
        expect(welcome).toMatchObject({ type: 'welcome', clientId, room, onlineCount: 1 });
        await closeAll();
      });

      it('hands out a distinct clientId when the asked one is taken', async () => {
        const room = uniqueName('room');
        const clientId = uniqueName('alice');
        const first = await join({ clientId, room });
        const second = await join({ clientId, room });
        expect(first.welcome.clientId).toBe(clientId);
        expect(second.welcome.clientId).toBe(`${clientId}-2`);
        expect(second.welcome.onlineCount).toBe(2);
        await closeAll();
      });

      it('keeps a numbered clientId within 32 characters', async () => {
        const room = uniqueName('room');
        const clientId = uniqueName('x').padEnd(32, 'y');
        await join({ clientId, room });
        const second = await join({ clientId, room });
        expect(second.welcome.clientId).toBe(`${clientId.slice(0, 30)}-2`);
        await closeAll();
      });

      it('gives a look-alike of a live clientId a numbered variant, as if it were the same name', async () => {
        const room = uniqueName('room');
        const clientId = uniqueName('alice');
        // Cyrillic а (U+0430) for the Latin a: the same letters to a reader.
        const impostor = `\u0430${clientId.slice(1)}`;
        const first = await join({ clientId, room });
        const second = await join({ clientId: impostor, room });
        expect(first.welcome.clientId).toBe(clientId);
        expect(second.welcome.clientId).toBe(`${impostor}-2`);
        expect(await first.client.next('user_joined')).toMatchObject({ clientId: `${impostor}-2` });
        await closeAll();
      });

      it('keeps clientIds and rooms in NFKC: full-width letters are the same name', async () => {
        const room = uniqueName('room');
        const clientId = uniqueName('bob');
        const wide = (name: string) => name.replace(/[a-z]/g, (c) => String.fromCodePoint(c.codePointAt(0)! - 0x61 + 0xff41));
        const first = await join({ clientId, room });
        const second = await join({ clientId: wide(clientId), room: wide(room) });
        expect(second.welcome).toMatchObject({ clientId: `${clientId}-2`, room, onlineCount: 2 });
        expect(first.welcome.clientId).toBe(clientId);
        await closeAll();
      });

      it.each([
        ['a space', 'bad id'],
        ['33 characters', 'x'.repeat(33)],
        ['punctuation', 'eve!'],
        ['a right-to-left override (U+202E)', 'eve\u202Eevil'],
        ['a left-to-right isolate (U+2066)', '\u2066eve'],
        ['a right-to-left mark (U+200F)', 'eve\u200F'],
        ['an Arabic letter mark (U+061C)', 'eve\u061C'],
        ['an invisible letter (U+3164 Hangul filler)', 'eve\u3164'],
      ])('refuses a clientId with %s: HTTP 400', async (_label, clientId) => {
        const { status, body } = await handshake({ clientId });
        expect(status).toBe(400);
        expect(body).not.toMatch(/at .*\.(ts|js|mjs):\d+/);
      });

      it.each([
        ['a slash', 'no/slashes'],
        ['a right-to-left override (U+202E)', 'lobby\u202E'],
      ])('refuses a room with %s: HTTP 400', async (_label, room) => {
        expect((await handshake({ room })).status).toBe(400);
      });
    });

    describe('presence', () => {
      it('announces user_joined to the others, never to the newcomer', async () => {
        const room = uniqueName('room');
        const first = await join({ room });
        const second = await join({ room, clientId: uniqueName('late') });
        expect(await first.client.next('user_joined')).toMatchObject({ clientId: second.welcome.clientId, room, onlineCount: 2 });
        await roundTrip(second.client);
        expect(second.client.all('user_joined')).toHaveLength(0);
        await closeAll();
      });

      it('announces user_left to those who remain', async () => {
        const { room, a, b } = await pair();
        await b.client.close();
        expect(await a.client.next('user_left')).toMatchObject({ clientId: b.welcome.clientId, room, onlineCount: 1 });
        await closeAll();
      });
    });

    describe('sequence numbers', () => {
      it('gives the welcome the room\'s seq (0 in a room that has none) and a resume token', async () => {
        const { welcome } = await join({ room: uniqueName('room') });
        expectResumable(welcome);
        expect(welcome.seq).toBe(0);
        await closeAll();
      });

      it('numbers user_joined and user_left one after another, the same for every member, and counts its own user_joined in the newcomer\'s welcome', async () => {
        const { room, a, b } = await pair();
        const joinedB = a.client.all('user_joined').at(-1)!;
        expect(joinedB.seq).toBe(b.welcome.seq);
        expect(joinedB.seq).toBeGreaterThan(a.welcome.seq);
        const c = await join({ room, clientId: uniqueName('c') });
        const [toA, toB] = await Promise.all([a.client.next('user_joined'), b.client.next('user_joined')]);
        expect(toA.seq).toBe(joinedB.seq + 1);
        expect(toB.seq).toBe(toA.seq);
        expect(c.welcome.seq).toBe(toA.seq);
        await c.client.close();
        const [leftA, leftB] = await Promise.all([a.client.next('user_left'), b.client.next('user_left')]);
        expect(leftA.seq).toBe(toA.seq + 1);
        expect(leftB.seq).toBe(leftA.seq);
        await closeAll();
      });

      it('puts no seq on frames that answer one client alone', async () => {
        const { a } = await pair();
        const replies: Frame[] = [];
        if (answers('ping')) {
          a.client.send({ type: 'ping' });
          replies.push(await a.client.next('pong'));
        }
        if (answers('users')) {
          a.client.send({ type: 'users' });
          replies.push(await a.client.next('users'));
        }
        a.client.send({ type: 'teleport_conformance' });
        replies.push(await a.client.next('error'));
        for (const frame of replies) expect(frame, frame.type).not.toHaveProperty('seq');
        await closeAll();
      });

      whenRoute('join')('gives the welcome after a join the new room\'s seq and a token for it', async () => {
        const { a } = await pair();
        const target = uniqueName('next');
        const waiting = await join({ clientId: uniqueName('w'), room: target });
        a.client.send({ type: 'join', room: target });
        const welcome = await a.client.next('welcome');
        expectResumable(welcome);
        expect(welcome.resumeToken).not.toBe(a.welcome.resumeToken);
        expect((await waiting.client.next('user_joined')).seq).toBe(welcome.seq);
        await closeAll();
      });
    });

    describe('core routes', () => {
      whenRoute('ping')('answers ping with pong to the sender only', async () => {
        const { a, b } = await pair();
        a.client.send({ type: 'ping', timestamp: Date.now() });
        expectTimestamp(await a.client.next('pong'));
        b.client.send({ type: 'ping' });
        await b.client.next('pong');
        expect(b.client.all('pong')).toHaveLength(1);
        await closeAll();
      });

      whenRoute('users')('lists the room on users', async () => {
        const { room, a, b } = await pair();
        b.client.send({ type: 'users' });
        const users = await b.client.next('users');
        expect(users).toMatchObject({ room, onlineCount: 2 });
        expect([...users.users].sort()).toEqual([a.welcome.clientId, b.welcome.clientId].sort());
        await closeAll();
      });

      whenRoute('join')('moves rooms on join: user_left behind, user_joined ahead, a fresh welcome', async () => {
        const { a, b } = await pair();
        const target = uniqueName('next');
        const waiting = await join({ clientId: uniqueName('w'), room: target });
        a.client.send({ type: 'join', room: target });
        expect(await a.client.next('welcome')).toMatchObject({ room: target, clientId: a.welcome.clientId, onlineCount: 2 });
        expect(await b.client.next('user_left')).toMatchObject({ clientId: a.welcome.clientId, onlineCount: 1 });
        expect(await waiting.client.next('user_joined')).toMatchObject({ clientId: a.welcome.clientId, room: target, onlineCount: 2 });
        await closeAll();
      });

      whenRoute('join')('answers join to an invalid room with invalid_room', async () => {
        const { a } = await pair();
        a.client.send({ type: 'join', room: 'bad room!' });
        expect(await a.client.next('error')).toMatchObject({ code: 'invalid_room' });
        await closeAll();
      });

      it('answers the core route types the app does not take with unknown_type', async () => {
        const { a } = await pair();
        for (const route of ['ping', 'join', 'users'] as const) {
          if (answers(route)) continue;
          a.client.send({ type: route, room: 'lobby' });
          expect(await a.client.next('error')).toMatchObject({ code: 'unknown_type' });
        }
        await closeAll();
      });
    });

    describe('errors', () => {
      it.each([
        ['malformed JSON', '{"type":"ping",'],
        ['an object without type', { content: 'hi' }],
        ['a mistyped type', { type: 7 }],
        ['an empty type', { type: '' }],
      ])('answers %s with invalid_message to the sender only', async (_label, frame) => {
        const { a, b } = await pair();
        await expectInvalidMessage(a.client, frame);
        await roundTrip(b.client);
        expect(b.client.all('error').filter((f) => f.code === 'invalid_message')).toHaveLength(0);
        await closeAll();
      });

      it('answers an unknown type with unknown_type', async () => {
        const { a } = await pair();
        a.client.send({ type: 'teleport_conformance' });
        expect(await a.client.next('error')).toMatchObject({ code: 'unknown_type' });
        await closeAll();
      });

      it('answers a flood with rate_limited and keeps the connection', async () => {
        const { a } = await pair();
        const frame = answers('ping') ? { type: 'ping' } : { type: 'teleport_conformance' };
        // The bucket (burst 20, 10/s) refills while a slow target works through the flood, but a frame is
        // judged at most 3 s after it came: at most 50 of 60 pass, and the refusals stay under the 50 that close.
        const flood = 60;
        for (let i = 0; i < flood; i++) a.client.send(frame);
        const replies: Frame[] = [];
        while (replies.length < flood) replies.push(await a.client.next((f) => f.type === 'pong' || f.type === 'error', 10_000));
        const limited = replies.filter((f) => f.code === 'rate_limited');
        expect(limited.length).toBeGreaterThan(0);
        expect(replies.length - limited.length).toBeGreaterThanOrEqual(20);
        expect(a.client.socketOpen()).toBe(true);
        await closeAll();
      });
    });

    describe('limits', () => {
      it('closes with 1003 on a binary frame', async () => {
        const { a, b } = await pair();
        a.client.socket.send(Buffer.from([1, 2, 3]), { binary: true });
        expect((await a.client.waitClosed()).code).toBe(1003);
        expect(await b.client.next('user_left')).toMatchObject({ clientId: a.welcome.clientId });
        await closeAll();
      });

      it('closes with 1009 on a frame over 128 KiB', async () => {
        const { a, b } = await pair();
        a.client.send(JSON.stringify({ type: 'ping', padding: 'x'.repeat(128 * 1024) }));
        expect((await a.client.waitClosed()).code).toBe(1009);
        await roundTrip(b.client);
        await closeAll();
      });
    });
  });
}
