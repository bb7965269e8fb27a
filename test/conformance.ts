/**
 * The protocol conformance suite: every row of docs/protocol.md, over real
 * sockets, against any running target. A target file calls
 * `conformanceSuite('name', () => baseUrl)` where baseUrl is the WebSocket
 * URL without query (ws://127.0.0.1:PORT/ or ws://127.0.0.1:PORT/dev).
 *
 * Tests isolate themselves with fresh rooms and clientIds, so they can share
 * one server with each other and with other suites.
 */
import { describe, expect, it } from 'vitest';
import { handshakeStatus, TestClient, uniqueName, withQuery, type Frame } from './support/client.js';

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

export function conformanceSuite(target: string, baseUrl: () => string): void {
  const url = (query: Record<string, string | undefined> = {}) => withQuery(baseUrl(), query);
  const open: TestClient[] = [];
  /** Joins a fresh (or given) room; every client is closed when its test ends. */
  async function join(query: Record<string, string | undefined> = {}) {
    const joined = await TestClient.join(url(query));
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

  describe(`protocol conformance: ${target}`, () => {
    describe('connecting', () => {
      it('assigns a client_ id and the lobby when no parameters are given', async () => {
        const { client, welcome } = await join();
        expect(welcome).toMatchObject({ type: 'welcome', room: 'lobby' });
        expect(welcome.clientId).toMatch(/^client_[\w-]+$/);
        expect(welcome.onlineCount).toBeGreaterThanOrEqual(1);
        expect(typeof welcome.message).toBe('string');
        expectTimestamp(welcome);
        await client.close();
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

      it.each([
        ['a space', 'bad id'],
        ['33 characters', 'x'.repeat(33)],
        ['punctuation', 'eve!'],
      ])('refuses a clientId with %s: HTTP 400', async (_label, clientId) => {
        const { status, body } = await handshakeStatus(url({ clientId }));
        expect(status).toBe(400);
        expect(body).not.toMatch(/at .*\.(ts|js|mjs):\d+/);
      });

      it('refuses an invalid room: HTTP 400', async () => {
        expect((await handshakeStatus(url({ room: 'no/slashes' }))).status).toBe(400);
      });
    });

    describe('chat', () => {
      it('broadcasts a chat to the whole room, sender included', async () => {
        const { room, a, b } = await pair();
        a.client.send({ type: 'chat', content: 'hello room', timestamp: Date.now() });
        const [toA, toB] = await Promise.all([a.client.next('chat'), b.client.next('chat')]);
        for (const frame of [toA, toB]) {
          expect(frame).toMatchObject({ type: 'chat', clientId: a.welcome.clientId, room, message: 'hello room', onlineCount: 2 });
          expect(typeof frame.id).toBe('string');
          expectTimestamp(frame);
        }
        expect(toA.id).toBe(toB.id);
        await closeAll();
      });

      it('keeps rooms apart', async () => {
        const { a, b } = await pair();
        const outsider = await join({ room: uniqueName('elsewhere') });
        outsider.client.send({ type: 'chat', content: 'only for my room' });
        await outsider.client.next('chat');
        a.client.send({ type: 'chat', content: 'marker' });
        const seen = await b.client.next('chat');
        expect(seen.message).toBe('marker');
        await closeAll();
      });

      it('treats a plain text frame as chat', async () => {
        const { a, b } = await pair();
        a.client.send('just text, not JSON');
        expect(await b.client.next('chat')).toMatchObject({ clientId: a.welcome.clientId, message: 'just text, not JSON' });
        await closeAll();
      });

      it('accepts the AWS sample frame {"action":"sendmessage","data":...} as chat', async () => {
        const { a, b } = await pair();
        a.client.send({ action: 'sendmessage', data: 'from the aws sample' });
        expect(await b.client.next('chat')).toMatchObject({ message: 'from the aws sample' });
        await closeAll();
      });

      it('accepts content of exactly 4000 characters', async () => {
        const { a } = await pair();
        const content = '界'.repeat(4000);
        a.client.send({ type: 'chat', content });
        expect((await a.client.next('chat')).message).toBe(content);
        await closeAll();
      });
    });

    describe('ping, users, private, join', () => {
      it('answers ping with pong to the sender only', async () => {
        const { a, b } = await pair();
        a.client.send({ type: 'ping', timestamp: Date.now() });
        expectTimestamp(await a.client.next('pong'));
        b.client.send({ type: 'chat', content: 'after ping' });
        await b.client.next('chat');
        expect(b.client.all('pong')).toHaveLength(0);
        await closeAll();
      });

      it('lists the room on users', async () => {
        const { room, a, b } = await pair();
        b.client.send({ type: 'users' });
        const users = await b.client.next('users');
        expect(users).toMatchObject({ room, onlineCount: 2 });
        expect([...users.users].sort()).toEqual([a.welcome.clientId, b.welcome.clientId].sort());
        await closeAll();
      });

      it('delivers private messages to the recipient only, across rooms', async () => {
        const { a, b } = await pair();
        const far = await join({ clientId: uniqueName('far'), room: uniqueName('other') });
        a.client.send({ type: 'private', to: far.welcome.clientId, content: 'psst' });
        expect(await far.client.next('private')).toMatchObject({
          type: 'private',
          clientId: a.welcome.clientId,
          to: far.welcome.clientId,
          message: 'psst',
        });
        a.client.send({ type: 'chat', content: 'public marker' });
        await b.client.next('chat');
        expect(b.client.all('private')).toHaveLength(0);
        await closeAll();
      });

      it('answers a private message to nobody with recipient_not_found', async () => {
        const { a } = await pair();
        a.client.send({ type: 'private', to: 'nobody_here_at_all', content: 'hello?' });
        expect(await a.client.next('error')).toMatchObject({ code: 'recipient_not_found' });
        await closeAll();
      });

      it('moves rooms on join: user_left behind, user_joined ahead, a fresh welcome', async () => {
        const { a, b } = await pair();
        const target = uniqueName('next');
        const waiting = await join({ clientId: uniqueName('w'), room: target });
        a.client.send({ type: 'join', room: target });
        expect(await a.client.next('welcome')).toMatchObject({ room: target, clientId: a.welcome.clientId, onlineCount: 2 });
        expect(await b.client.next('user_left')).toMatchObject({ clientId: a.welcome.clientId, onlineCount: 1 });
        expect(await waiting.client.next('user_joined')).toMatchObject({ clientId: a.welcome.clientId, room: target, onlineCount: 2 });
        a.client.send({ type: 'chat', content: 'in the new room' });
        expect((await waiting.client.next('chat')).message).toBe('in the new room');
        await closeAll();
      });

      it('answers join to an invalid room with invalid_room', async () => {
        const { a } = await pair();
        a.client.send({ type: 'join', room: 'bad room!' });
        expect(await a.client.next('error')).toMatchObject({ code: 'invalid_room' });
        await closeAll();
      });
    });

    describe('presence', () => {
      it('announces user_joined to the others, never to the newcomer', async () => {
        const room = uniqueName('room');
        const first = await join({ room });
        const second = await join({ room, clientId: uniqueName('late') });
        expect(await first.client.next('user_joined')).toMatchObject({ clientId: second.welcome.clientId, room, onlineCount: 2 });
        second.client.send({ type: 'ping' });
        await second.client.next('pong');
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

    describe('errors', () => {
      it.each([
        ['malformed JSON', '{"type":"chat","content":'],
        ['an object without type', { content: 'hi' }],
        ['a missing content', { type: 'chat' }],
        ['a mistyped content', { type: 'chat', content: 42 }],
        ['a mistyped type', { type: 7, content: 'x' }],
        ['an empty content', { type: 'chat', content: '' }],
      ])('answers %s with invalid_message to the sender only', async (_label, frame) => {
        const { a, b } = await pair();
        a.client.send(frame);
        const error = await a.client.next('error');
        expect(error).toMatchObject({ type: 'error', code: 'invalid_message' });
        expect(typeof error.message).toBe('string');
        expectTimestamp(error);
        a.client.send({ type: 'chat', content: 'still here' });
        expect((await b.client.next('chat')).message).toBe('still here');
        expect(b.client.all('error')).toHaveLength(0);
        await closeAll();
      });

      it('answers an unknown type with unknown_type', async () => {
        const { a } = await pair();
        a.client.send({ type: 'teleport' });
        expect(await a.client.next('error')).toMatchObject({ code: 'unknown_type' });
        await closeAll();
      });

      it('answers 4001 characters of content with message_too_large', async () => {
        const { a } = await pair();
        a.client.send({ type: 'chat', content: 'x'.repeat(4001) });
        expect(await a.client.next('error')).toMatchObject({ code: 'message_too_large' });
        a.client.send({ type: 'ping' });
        await a.client.next('pong');
        await closeAll();
      });

      it('answers a flood with rate_limited and keeps the connection', async () => {
        const { a } = await pair();
        for (let i = 0; i < 40; i++) a.client.send({ type: 'ping' });
        const answers: Frame[] = [];
        while (answers.length < 40) answers.push(await a.client.next((f) => f.type === 'pong' || f.type === 'error', 10_000));
        const limited = answers.filter((f) => f.type === 'error');
        expect(limited.length).toBeGreaterThan(0);
        for (const error of limited) expect(error.code).toBe('rate_limited');
        expect(answers.filter((f) => f.type === 'pong').length).toBeGreaterThanOrEqual(20);
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
        a.client.send(JSON.stringify({ type: 'chat', content: 'x'.repeat(128 * 1024) }));
        expect((await a.client.waitClosed()).code).toBe(1009);
        b.client.send({ type: 'chat', content: 'the room goes on' });
        expect((await b.client.next('chat')).message).toBe('the room goes on');
        await closeAll();
      });
    });
  });
}
