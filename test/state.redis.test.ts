import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { connectRedis } from '../registries/redis-connection.js';
import { RedisStateStore } from '../registries/redis-state.js';
import { ProtocolError } from '../shared/errors.js';
import { roomStateOf } from '../shared/room-state.js';
import { stateSuite } from './state-suite.js';
import { recordCommands, redisForFile, startRedisServer } from './support/redis.js';

const redis = redisForFile();
const client = (name = 'state') => redis.client(name);

const freshPrefix = () => `s${randomBytes(4).toString('hex')}:`;

stateSuite(
  'RedisStateStore on redis-server',
  async ({ ttlMs }) => {
    const prefix = freshPrefix();
    // Each peer on a connection of its own, as another instance would be.
    return {
      store: new RedisStateStore({ client: await client(), prefix, ttlMs }),
      peer: async () => new RedisStateStore({ client: await client('peer'), prefix, ttlMs }),
      cleanup: async () => {},
    };
  },
  'kept by the server',
);

describe('RedisStateStore specifics', () => {
  it('keeps a room in one hash under the prefix, field by key, the JSON text as it was set', async () => {
    const redisClient = await client();
    const prefix = freshPrefix();
    const state = roomStateOf(new RedisStateStore({ client: redisClient, prefix }), 'kitchen');
    await state.set('cursor:alice', { x: 1 });
    await state.increment('count', 3);
    expect(await redisClient.hgetall(`${prefix}state:kitchen`)).toEqual({ 'cursor:alice': '{"x":1}', count: '3' });
  });

  it('has Redis forget a room ROOM_STATE_TTL after its last write: every kind of write renews the expiry', async () => {
    const redisClient = await client();
    const prefix = freshPrefix();
    const ttlMs = 600_000;
    const state = roomStateOf(new RedisStateStore({ client: redisClient, prefix, ttlMs }), 'kitchen');
    const hash = `${prefix}state:kitchen`;
    await state.set('a', 1);
    await state.set('b', 1);
    for (const write of [() => state.set('a', 2), () => state.increment('count'), () => state.delete('b')]) {
      // Shortened by hand, so only the write can have renewed it.
      await redisClient.pexpire(hash, 1_000);
      await write();
      expect(await redisClient.pttl(hash)).toBeGreaterThan(ttlMs - 60_000);
    }
    // A failed write is no write: the room stays due to go.
    await redisClient.pexpire(hash, 1_000);
    expect(await state.delete('never-set')).toBe(false);
    expect(await redisClient.pttl(hash)).toBeLessThanOrEqual(1_000);

    const forever = roomStateOf(new RedisStateStore({ client: redisClient, prefix, ttlMs: 0 }), 'kitchen');
    await forever.increment('count');
    expect(await redisClient.pttl(hash)).toBe(-1);
    // And once it is due, Redis drops the hash, so the state is gone for every instance.
    await redisClient.pexpire(hash, 1);
    const gone = async (): Promise<boolean> => (await redisClient.exists(hash)) === 0 || (await new Promise((resolve) => setTimeout(resolve, 5)), gone());
    expect(await gone()).toBe(true);
    expect(await state.list()).toEqual({});
  });

  it('costs one round trip per operation', async () => {
    const redisClient = await client();
    const state = roomStateOf(new RedisStateStore({ client: redisClient, prefix: freshPrefix() }), 'lobby');
    const sent = recordCommands(redisClient);
    const costOf = async (action: () => Promise<unknown>) => {
      sent.length = 0;
      await action();
      return sent.length;
    };
    expect(await costOf(() => state.set('a', 1))).toBe(1);
    expect(await costOf(() => state.set('a', 2))).toBe(1);
    expect(await costOf(() => state.increment('a'))).toBe(1);
    expect(await costOf(() => state.increment('b'))).toBe(1);
    expect(await costOf(() => state.get('a'))).toBe(1);
    expect(await costOf(() => state.list())).toBe(1);
    expect(await costOf(() => state.delete('a'))).toBe(1);
  });

  it('fails at once while Redis is away, instead of answering from what this instance saw', async () => {
    const outage = await startRedisServer();
    try {
      const state = roomStateOf(new RedisStateStore({ client: redis.keep(await connectRedis(outage.url, 'outage')), prefix: freshPrefix() }), 'lobby');
      await state.set('count', 1);
      await outage.stop();
      for (const operation of [() => state.get('count'), () => state.list(), () => state.set('count', 2), () => state.increment('count')]) {
        const error = await operation().then(() => undefined, (failure: unknown) => failure);
        // Not a ProtocolError, so the engine logs it and tells the sender `unavailable`.
        expect(error).toBeInstanceOf(Error);
        expect(error).not.toBeInstanceOf(ProtocolError);
      }
    } finally {
      await outage.stop();
    }
  });

  it('never sent KEYS or SCAN', async () => {
    const info = await (await client()).info('commandstats');
    expect(info).toMatch(/cmdstat_evalsha:calls=\d+/);
    expect(info).toMatch(/cmdstat_hincrby:calls=\d+/);
    expect(info).not.toMatch(/cmdstat_(keys|scan|hscan|sscan|zscan):/);
  });
});
