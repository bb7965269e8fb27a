import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { connectRedis } from '../registries/redis-connection.js';
import { CLOCK_SKEW_MS, COUNTER_TTL_MS, RedisRoomLog } from '../registries/redis-room-log.js';
import type { RoomLogLimits } from '../shared/room-log.js';
import { roomLogSuite } from './room-log-suite.js';
import { expectNoKeyspaceWalk, recordCommands, redisForFile, startRedisServer } from './support/redis.js';

const LIMITS: RoomLogLimits = { maxEntries: 50, maxAgeMs: 60_000 };

const redis = redisForFile();

/** A connection to the file's redis-server, or to `url` (a server of a test's own), closed after the file. */
async function client(url?: string): Promise<Redis> {
  return url === undefined ? redis.client('room-log-test') : redis.keep(await connectRedis(url, 'room-log-test'));
}

const freshPrefix = () => `l${randomBytes(4).toString('hex')}:`;
const frame = (text: string) => JSON.stringify({ type: 'chat', message: text });

roomLogSuite('RedisRoomLog on redis-server', async (limits, clock) => ({
  log: new RedisRoomLog({ client: await client(), prefix: freshPrefix(), limits, clock }),
  cleanup: async () => {},
}));

describe('RedisRoomLog', () => {
  it('costs one round trip per append, read and latest', async () => {
    const redisClient = await client();
    const log = new RedisRoomLog({ client: redisClient, prefix: freshPrefix(), limits: LIMITS });
    await log.append('lobby', { data: frame('warm'), at: Date.now() });
    const sent = recordCommands(redisClient);
    const costOf = async (action: () => Promise<unknown>) => {
      sent.length = 0;
      await action();
      return [...sent];
    };
    expect(await costOf(() => log.append('lobby', { data: frame('x'), at: Date.now() }))).toEqual(['evalsha']);
    expect(await costOf(() => log.read('lobby', 0, Date.now()))).toEqual(['evalsha']);
    expect(await costOf(() => log.latest('lobby'))).toEqual(['get']);
  });

  it('stores each entry under its seq as the stream id, with the member it is for', async () => {
    const redisClient = await client();
    const prefix = freshPrefix();
    const log = new RedisRoomLog({ client: redisClient, prefix, limits: LIMITS });
    const at = Date.now();
    expect(await log.append('lobby', { data: frame('a'), at })).toBe(1);
    expect(await log.append('lobby', { data: frame('b'), at: at + 1, to: 'bob' })).toBe(2);
    expect(await redisClient.xrange(`${prefix}log:lobby`, '-', '+')).toEqual([
      ['1-0', ['d', frame('a'), 'a', String(at)]],
      ['2-0', ['d', frame('b'), 'a', String(at + 1), 't', 'bob']],
    ]);
    expect(await log.read('lobby', 0, at + 2)).toEqual({
      ok: true,
      latest: 2,
      entries: [
        { seq: 1, data: frame('a'), at },
        { seq: 2, data: frame('b'), at: at + 1, to: 'bob' },
      ],
    });
  });

  it('keeps at least maxEntries and not much more, trimmed by XADD itself', async () => {
    const redisClient = await client();
    const prefix = freshPrefix();
    const log = new RedisRoomLog({ client: redisClient, prefix, limits: LIMITS });
    const at = Date.now();
    for (let i = 0; i < 1000; i++) await log.append('busy', { data: frame(`m${i}`), at });
    const length = await redisClient.xlen(`${prefix}log:busy`);
    const [, nodeEntries] = (await redisClient.config('GET', 'stream-node-max-entries')) as [string, string];
    expect(length).toBeGreaterThanOrEqual(LIMITS.maxEntries);
    expect(length).toBeLessThanOrEqual(LIMITS.maxEntries + Number(nodeEntries));

    const recent = await log.read('busy', 1000 - LIMITS.maxEntries, at);
    expect(recent.ok && recent.entries.map((entry) => entry.seq)).toEqual(Array.from({ length: LIMITS.maxEntries }, (_, i) => 951 + i));
    expect(await log.read('busy', 0, at)).toEqual({ ok: false, latest: 1000 });
    expect(await log.read('busy', -1, at)).toEqual({ ok: false, latest: 1000 });
  });

  it('expires the stream maxAgeMs after its last append and the counter a day after', async () => {
    const redisClient = await client();
    const prefix = freshPrefix();
    const log = new RedisRoomLog({ client: redisClient, prefix, limits: LIMITS });
    await log.append('lobby', { data: frame('a'), at: Date.now() });
    const streamTtl = await redisClient.pttl(`${prefix}log:lobby`);
    const counterTtl = await redisClient.pttl(`${prefix}logseq:lobby`);
    expect(streamTtl).toBeGreaterThan(LIMITS.maxAgeMs - 5000);
    expect(streamTtl).toBeLessThanOrEqual(LIMITS.maxAgeMs);
    expect(counterTtl).toBeGreaterThan(COUNTER_TTL_MS - 5000);
    expect(counterTtl).toBeLessThanOrEqual(COUNTER_TTL_MS);
  });

  it('gives distinct seqs in one order to appends racing from two instances', async () => {
    const prefix = freshPrefix();
    const [a, b] = [new RedisRoomLog({ client: await client(), prefix, limits: { ...LIMITS, maxEntries: 1000 } }), new RedisRoomLog({ client: await client(), prefix, limits: { ...LIMITS, maxEntries: 1000 } })];
    const at = Date.now();
    const sent = Array.from({ length: 200 }, (_, i) => frame(`race ${i}`));
    const seqs = await Promise.all(sent.map((data, i) => (i % 2 ? a : b).append('race', { data, at })));
    expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    const read = await a.read('race', 0, at);
    expect(read.ok && read.entries.map((entry) => entry.data)).toEqual(seqs.map((_, i) => sent[seqs.indexOf(i + 1)]));
  });

  it('numbers frames by itself while Redis is away, and lifts the counter past them once it is back empty', async () => {
    const outage = await startRedisServer();
    try {
      const redisClient = await client(outage.url);
      const now = Date.UTC(2030, 0, 1);
      const log = new RedisRoomLog({ client: redisClient, prefix: 'o:', limits: LIMITS, clock: () => now });
      for (let i = 1; i <= 3; i++) expect(await log.append('lobby', { data: frame(`before ${i}`), at: now })).toBe(i);

      await outage.stop();
      expect(await log.append('lobby', { data: frame('away 1'), at: now })).toBe(now * 1000);
      expect(await log.append('lobby', { data: frame('away 2'), at: now })).toBe(now * 1000 + 1);
      expect(await log.latest('lobby')).toBe(now * 1000 + 1);
      expect(await log.read('lobby', 3, now)).toEqual({ ok: false, latest: now * 1000 + 1 });

      // It comes back empty, as a Redis without persistence does.
      await outage.restart();
      await once(redisClient, 'ready');
      const lifted = (now + CLOCK_SKEW_MS) * 1000 + 1;
      expect(await log.append('lobby', { data: frame('back'), at: now })).toBe(lifted);
      expect(await log.read('lobby', lifted - 1, now)).toMatchObject({ ok: true, latest: lifted, entries: [{ seq: lifted, data: frame('back') }] });
      // What was numbered while away is not in the stream.
      expect(await log.read('lobby', now * 1000, now)).toEqual({ ok: false, latest: lifted });

      // Emptied again with no append in between: the counter this instance saw is lifted past all the same.
      await outage.restart();
      await once(redisClient, 'ready');
      const reader = new RedisRoomLog({ client: await client(outage.url), prefix: 'o:', limits: LIMITS });
      expect(await reader.latest('lobby')).toBe(0);
      expect(await log.append('lobby', { data: frame('again'), at: now })).toBe(lifted + 1);
      expect(await log.append('elsewhere', { data: frame('new room'), at: now })).toBe(1);
    } finally {
      await outage.stop();
    }
  });
});

describe('commands the room log sent', () => {
  it('never included KEYS or SCAN', async () => {
    await expectNoKeyspaceWalk(await client());
  });
});
