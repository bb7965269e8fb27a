/**
 * The app API, proven with an app that is not the chat: a per-room counter
 * with its own routes, hooks and authentication. Also the framework rules
 * every app gets: the rate limit, the origin rule and the AUTH_TOKEN setting.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineApp, route, type App } from '../shared/app.js';
import { coreRoutes } from '../shared/routes.js';
import { ClosedForAbuseError, InvalidMessageError } from '../shared/errors.js';
import { handshakeStatus, TestClient, uniqueName, withQuery } from './support/client.js';
import { startSourceServer, type SourceServer } from './support/servers.js';

/** A counter per room: `increment` adds to it and everyone in the room hears the new value. */
function createCounterApp(events: string[]): App {
  const counts = new Map<string, number>();
  return defineApp({
    name: 'counter',
    authenticate: (request) => {
      const user = request.headers['x-user'];
      if (!user) return { allow: false, reason: 'x-user header required' };
      if (user === 'crash') throw new Error('database password is hunter2');
      return { allow: true, identity: { user, ip: request.sourceIp }, clientId: user };
    },
    onConnect: async (ctx) => {
      events.push(`connect:${ctx.connection.clientId}:${String(ctx.connection.identity.user)}`);
      await ctx.reply({ type: 'count', room: ctx.connection.room, value: counts.get(ctx.connection.room) ?? 0 });
    },
    routes: {
      ping: coreRoutes.ping,
      increment: route({
        parse: (fields) => {
          const by = Object.hasOwn(fields, 'by') ? fields.by : 1;
          if (typeof by !== 'number' || !Number.isInteger(by) || by < 1 || by > 100) {
            throw new InvalidMessageError('"by" must be a whole number from 1 to 100');
          }
          return by;
        },
        handle: async (ctx, by) => {
          const { room } = ctx.connection;
          const value = (counts.get(room) ?? 0) + by;
          counts.set(room, value);
          await ctx.broadcast(room, { type: 'count', room, value, by: ctx.connection.clientId });
        },
      }),
    },
    onDisconnect: (ctx) => {
      events.push(`disconnect:${ctx.connection.clientId}`);
    },
  });
}

describe('a second app on the same core: a room counter', () => {
  const events: string[] = [];
  let target: SourceServer;
  beforeAll(async () => {
    target = await startSourceServer({}, createCounterApp(events));
  });
  afterAll(() => target.stop());

  it('runs its own routes and hooks, with the identity from its authenticate hook', async () => {
    const room = uniqueName('counter');
    const alice = await TestClient.join(withQuery(target.url, { room }), { headers: { 'x-user': 'alice' } });
    expect(alice.welcome.clientId).toBe('alice');
    expect(await alice.client.next('count')).toMatchObject({ value: 0, room });
    // The peer's address reaches the hook and the record (the server does not keep its own copy on the socket).
    const record = await target.server.registry.findByClientId('alice');
    expect(record?.sourceIp).toMatch(/127\.0\.0\.1$/);
    expect(record?.identity).toEqual({ user: 'alice', ip: record?.sourceIp });
    const bob = await TestClient.join(withQuery(target.url, { room }), { headers: { 'x-user': 'bob' } });
    expect(await bob.client.next('count')).toMatchObject({ value: 0 });

    alice.client.send({ type: 'increment', by: 5 });
    expect(await bob.client.next('count')).toMatchObject({ value: 5, by: 'alice' });
    bob.client.send({ type: 'increment' });
    expect(await alice.client.next((f) => f.type === 'count' && f.value === 6)).toMatchObject({ by: 'bob' });
    expect(events).toContain('connect:alice:alice');

    await bob.client.close();
    expect(await alice.client.next('user_left')).toMatchObject({ clientId: 'bob' });
    expect(events).toContain('disconnect:bob');
    await alice.client.close();
  });

  it('validates its typed routes and refuses what it does not know', async () => {
    const { client } = await TestClient.join(withQuery(target.url, { room: uniqueName('counter') }), { headers: { 'x-user': uniqueName('carol') } });
    client.send({ type: 'increment', by: 'lots' });
    expect(await client.next('error')).toMatchObject({ code: 'invalid_message', message: '"by" must be a whole number from 1 to 100' });
    client.send({ type: 'chat', content: 'the counter has no chat' });
    expect(await client.next('error')).toMatchObject({ code: 'unknown_type' });
    client.send('plain text');
    expect(await client.next('error')).toMatchObject({ code: 'invalid_message' });
    await client.close();
  });

  it('runs authenticate on a resume too: the token must name the clientId it gives, and a continued session is no new connection', async () => {
    const user = uniqueName('dana');
    const room = uniqueName('counter');
    const dana = await TestClient.join(withQuery(target.url, { room }), { headers: { 'x-user': user } });
    await dana.client.next('count');
    const resumeQuery = dana.client.resumeQuery();

    expect((await handshakeStatus(withQuery(target.url, resumeQuery))).status).toBe(401);
    const other = await TestClient.connect(withQuery(target.url, resumeQuery), { headers: { 'x-user': `${user}_other` } });
    expect(await other.next()).toMatchObject({ type: 'resume_failed', code: 'resume_token_invalid' });
    expect(await other.next()).toMatchObject({ type: 'welcome', clientId: `${user}_other`, room: 'lobby' });
    expect(dana.client.socketOpen()).toBe(true);

    const back = await TestClient.connect(withQuery(target.url, resumeQuery), { headers: { 'x-user': user } });
    expect(await back.next()).toMatchObject({ type: 'resumed', clientId: user, room });
    expect((await dana.client.waitClosed()).code).toBe(4001);
    back.send({ type: 'ping' });
    await back.next('pong');
    // The app saw one connection of dana's, never a disconnect: the resume continued it.
    expect(events.filter((event) => event.startsWith(`connect:${user}:`) || event === `disconnect:${user}`)).toEqual([`connect:${user}:${user}`]);
    expect(back.all('count')).toEqual([]);
    await Promise.all([back.close(), other.close()]);
  });

  it('turns an auth refusal into HTTP 401 and a crashing hook into 500 without details', async () => {
    const refused = await handshakeStatus(target.url);
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toEqual({ code: 'unauthorized', message: 'x-user header required' });
    const crashed = await handshakeStatus(target.url, { 'x-user': 'crash' });
    expect(crashed.status).toBe(500);
    expect(crashed.body).not.toContain('hunter2');
    expect(crashed.body).not.toMatch(/\bat\b.*:\d+:\d+/);
  });
});

describe('AUTH_TOKEN on the chat', () => {
  let target: SourceServer;
  beforeAll(async () => {
    target = await startSourceServer({ AUTH_TOKEN: 's3cret' });
  });
  afterAll(() => target.stop());

  it('refuses a missing or wrong token with 401 and admits the right one', async () => {
    expect((await handshakeStatus(target.url)).status).toBe(401);
    const wrong = await handshakeStatus(withQuery(target.url, { token: 'guess' }));
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.body).code).toBe('unauthorized');
    const { client, welcome } = await TestClient.join(withQuery(target.url, { token: 's3cret' }));
    expect(welcome.type).toBe('welcome');
    await client.close();
  });
});

describe('ALLOWED_ORIGINS', () => {
  let target: SourceServer;
  beforeAll(async () => {
    target = await startSourceServer({ ALLOWED_ORIGINS: 'https://chat.example.com, http://localhost:5173/' });
  });
  afterAll(() => target.stop());

  it('refuses other origins with 403', async () => {
    const { status, body } = await handshakeStatus(target.url, { Origin: 'https://evil.example' });
    expect(status).toBe(403);
    expect(JSON.parse(body).code).toBe('forbidden_origin');
  });

  it('admits listed origins, whatever their case or trailing slash, and clients that send none', async () => {
    expect((await handshakeStatus(target.url, { Origin: 'https://CHAT.example.com' })).status).toBe(101);
    expect((await handshakeStatus(target.url, { Origin: 'http://localhost:5173' })).status).toBe(101);
    expect((await handshakeStatus(target.url)).status).toBe(101);
  });
});

describe('rate limit', () => {
  let target: SourceServer;
  beforeAll(async () => {
    target = await startSourceServer({ RATE_LIMIT: '10', RATE_BURST: '20', RATE_LIMIT_CLOSE_AFTER: '10' });
  });
  afterAll(() => target.stop());

  it('admits a burst of 20 and answers the rest with rate_limited', async () => {
    const { client } = await TestClient.join(withQuery(target.url, { room: uniqueName('rl') }));
    for (let i = 0; i < 25; i++) client.send({ type: 'ping' });
    const answers = [];
    for (let i = 0; i < 25; i++) answers.push(await client.next((f) => f.type === 'pong' || f.type === 'error'));
    // The bucket refills by one token per 100 ms, so a slow machine may admit one or two more.
    const pongs = answers.filter((f) => f.type === 'pong').length;
    expect(pongs).toBeGreaterThanOrEqual(20);
    expect(pongs).toBeLessThan(25);
    expect(answers.filter((f) => f.type === 'error').every((f) => f.code === 'rate_limited')).toBe(true);
    expect(client.socketOpen()).toBe(true);
    await client.close();
  });

  it('closes sustained abuse with 1008, and the room goes on', async () => {
    const room = uniqueName('rl');
    const abuser = await TestClient.join(withQuery(target.url, { room }));
    const neighbour = await TestClient.join(withQuery(target.url, { room }));
    for (let i = 0; i < 60; i++) abuser.client.send({ type: 'chat', content: `spam ${i}` });
    expect((await abuser.client.waitClosed()).code).toBe(1008);
    // The close is announced by a frame of its own: on AWS the close cannot carry 1008.
    expect(abuser.client.frames).toContainEqual(expect.objectContaining({ type: 'error', code: 'closed_for_abuse', message: new ClosedForAbuseError().message }));
    expect(await neighbour.client.next('user_left')).toMatchObject({ clientId: abuser.welcome.clientId });
    neighbour.client.send({ type: 'chat', content: 'calm again' });
    expect(await neighbour.client.next((f) => f.type === 'chat' && f.message === 'calm again')).toBeTruthy();
    await neighbour.client.close();
  });
});
