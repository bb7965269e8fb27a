/**
 * Room state as a handler meets it: what a refused key or value becomes for
 * the client, another room's state, the room `ctx.state` belongs to after a
 * join, and a store that cannot be reached.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudbaseServer } from '../functions/cloudbase/server.js';
import { readCloudbaseSettings } from '../functions/cloudbase/settings.js';
import { connectRedis } from '../registries/redis-connection.js';
import { RedisStateStore } from '../registries/redis-state.js';
import { defineApp, route, type App } from '../shared/app.js';
import { UnavailableError } from '../shared/errors.js';
import type { JsonValue } from '../shared/protocol.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { redisForFile, startRedisServer } from './support/redis.js';
import { startSourceServer, type SourceServer } from './support/servers.js';

const redis = redisForFile();

/** Routes that hand the client's own key and value to room state, as an app taking input would. */
function stateApp(): App {
  return defineApp({
    name: 'state-probe',
    routes: {
      put: route({
        parse: (fields) => ({ key: fields.key as string, value: fields.value as JsonValue, room: fields.room as string | undefined }),
        handle: async (ctx, { key, value, room }) => {
          const state = room === undefined ? ctx.state : ctx.roomState(room);
          await state.set(key, value);
          await ctx.reply({ type: 'stored', key });
        },
      }),
      read: route({
        parse: (fields) => fields.room as string | undefined,
        handle: async (ctx, room) => ctx.reply({ type: 'read', state: await (room === undefined ? ctx.state : ctx.roomState(room)).list() }),
      }),
      add: route({
        parse: (fields) => fields.key as string,
        handle: async (ctx, key) => ctx.reply({ type: 'added', value: await ctx.state.increment(key) }),
      }),
      hop: route({
        parse: (fields) => fields.room as string,
        handle: async (ctx, room) => {
          await ctx.joinRoom(room);
          // The context is the event's: its state is still the room the frame came from.
          await ctx.state.set('left-by', ctx.connection.clientId);
          await ctx.reply({ type: 'hopped' });
        },
      }),
    },
  });
}

describe('room state in handlers, on the CloudBase server with its default (memory) store', () => {
  let target: SourceServer;
  beforeAll(async () => {
    target = await startSourceServer({}, stateApp());
  });
  afterAll(() => target.stop());

  it('answers a refused key, value or increment with an error frame of its code, and the connection goes on', async () => {
    const { client } = await TestClient.join(withQuery(target.url, { room: uniqueName('r') }));
    const refusals: Array<[object, string]> = [
      [{ type: 'put', key: 'no spaces', value: 1 }, 'invalid_state_key'],
      [{ type: 'put', key: 'big', value: 'x'.repeat(2000) }, 'state_value_too_large'],
      [{ type: 'put', key: 'odd', value: 1, room: 'not a room' }, 'invalid_room'],
    ];
    for (const [frame, code] of refusals) {
      client.send(frame);
      expect(await client.next('error')).toMatchObject({ code, message: expect.any(String) });
    }
    client.send({ type: 'put', key: 'word', value: 'hello' });
    await client.next('stored');
    client.send({ type: 'add', key: 'word' });
    expect(await client.next('error')).toMatchObject({ code: 'state_not_integer' });
    // The message is the error's own sentence, never a stack.
    for (const frame of client.all('error')) expect(frame.message).not.toMatch(/\n|\bat .*:\d+:\d+/);
    client.send({ type: 'add', key: 'n' });
    expect(await client.next('added')).toMatchObject({ value: 1 });
    expect(client.socketOpen()).toBe(true);
    await client.close();
  });

  it("reaches another room's state, and shares a room's state between its connections", async () => {
    const [here, there] = [uniqueName('here'), uniqueName('there')];
    const { client: a } = await TestClient.join(withQuery(target.url, { room: here }));
    const { client: b } = await TestClient.join(withQuery(target.url, { room: there }));
    a.send({ type: 'put', key: 'note', value: { from: 'a' }, room: there });
    await a.next('stored');
    b.send({ type: 'read' });
    expect((await b.next('read')).state).toEqual({ note: { from: 'a' } });
    a.send({ type: 'read' });
    expect((await a.next('read')).state).toEqual({});
    await Promise.all([a.close(), b.close()]);
  });

  it('keeps ctx.state on the room the event came from, after a join', async () => {
    const [from, to] = [uniqueName('from'), uniqueName('to')];
    const { client, welcome } = await TestClient.join(withQuery(target.url, { room: from }));
    client.send({ type: 'hop', room: to });
    await client.next('hopped');
    client.send({ type: 'read', room: from });
    expect((await client.next('read')).state).toEqual({ 'left-by': welcome.clientId });
    client.send({ type: 'read' });
    expect((await client.next('read')).state).toEqual({});
    await client.close();
  });
});

describe('room state whose store cannot be reached', () => {
  it('answers `unavailable` and logs the cause, the connection staying open', async () => {
    const lost = await startRedisServer();
    const failures: unknown[] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (event: string, fields?: Record<string, unknown>) => void (event === 'handler_failed' && failures.push(fields?.error)) };
    const server = new CloudbaseServer({
      app: stateApp(),
      state: new RedisStateStore({ client: redis.keep(await connectRedis(lost.url, 'lost')), prefix: 'lost:' }),
      settings: readCloudbaseSettings({ PORT: '0', HOST: '127.0.0.1' }),
      logger,
    });
    const { port } = await server.listen();
    try {
      const { client } = await TestClient.join(`ws://127.0.0.1:${port}/`);
      client.send({ type: 'add', key: 'n' });
      expect(await client.next('added')).toMatchObject({ value: 1 });
      await lost.stop();
      client.send({ type: 'add', key: 'n' });
      expect(await client.next('error')).toMatchObject({ code: 'unavailable', message: new UnavailableError().message });
      expect(failures).toHaveLength(1);
      expect(client.socketOpen()).toBe(true);
      await client.close();
    } finally {
      await server.shutdown();
      await lost.stop();
    }
  });
});
