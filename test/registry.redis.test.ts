import { nameKey } from '../shared/names.js';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { connectRedis, RegistryUnavailableError } from '../registries/redis-connection.js';
import { RedisRegistry } from '../registries/redis-registry.js';
import { silentLogger } from '../shared/log.js';
import { freshRateState, type RateLimit } from '../shared/rate-limit.js';
import type { ConnectionRecord } from '../shared/registry.js';
import { registryReplaceSuite } from './registry-replace-suite.js';
import { registrySuite } from './registry-suite.js';
import { expectNoKeyspaceWalk, recordCommands, redisForFile, startRedisServer } from './support/redis.js';

const LIMIT: RateLimit = { perSecond: 10, burst: 3, closeAfter: 5 };

const redis = redisForFile();
const client = (name?: string) => redis.client(name);

const freshPrefix = () => `t${randomBytes(4).toString('hex')}:`;

const redisRegistry = async () => ({ registry: new RedisRegistry({ client: await client(), prefix: freshPrefix() }), cleanup: async () => {} });
registrySuite('RedisRegistry on redis-server', redisRegistry, { listsIdle: true, countsFromArrival: false });
registryReplaceSuite('RedisRegistry on redis-server', redisRegistry);

let serial = 0;
const record = (clientId: string, owner?: string, room = 'lobby'): ConnectionRecord => ({
  connectionId: `c${++serial}-${randomBytes(3).toString('hex')}`,
  clientId,
  nameKey: nameKey(clientId),
  room,
  connectedAt: Date.now(),
  lastActiveAt: Date.now(),
  sourceIp: '203.0.113.9',
  identity: { roles: [], nested: { empty: {} } },
  rate: freshRateState(Date.now()),
  ...(owner ? { owner } : {}),
});

describe('RedisRegistry across instances', () => {
  it('gives a clientId to exactly one of two instances admitting it at the same moment', async () => {
    const prefix = freshPrefix();
    const [a, b] = [new RedisRegistry({ client: await client('A'), prefix, instanceId: 'A' }), new RedisRegistry({ client: await client('B'), prefix, instanceId: 'B' })];
    for (let round = 0; round < 20; round++) {
      const name = `alice${round}`;
      const [fromA, fromB] = await Promise.all([a.add(record(name, 'A')), b.add(record(name, 'B'))]);
      expect([fromA, fromB].filter(Boolean)).toHaveLength(1);
      const holder = await b.findByClientId(name);
      expect(holder?.owner).toBe(fromA ? 'A' : 'B');
    }
  });

  it('keeps identity JSON exactly, empty arrays and objects included, and names the owner', async () => {
    const registry = new RedisRegistry({ client: await client(), prefix: freshPrefix() });
    const alice = record('alice', 'A');
    await registry.add(alice);
    expect(await registry.get(alice.connectionId)).toEqual(alice);
    expect(await registry.listRoomMembers('lobby')).toEqual([{ connectionId: alice.connectionId, owner: 'A' }]);
    expect(await registry.ownedBy('A')).toEqual([alice.connectionId]);
    await registry.remove(alice.connectionId);
    expect(await registry.ownedBy('A')).toEqual([]);
  });

  it('costs one round trip per touch (rate limit included), add, remove, room listing and clientId lookup', async () => {
    const redisClient = await client();
    const registry = new RedisRegistry({ client: redisClient, prefix: freshPrefix() });
    const alice = record('alice');
    await registry.add(alice);
    const sent = recordCommands(redisClient);
    const costOf = async (action: () => Promise<unknown>) => {
      sent.length = 0;
      await action();
      return sent.length;
    };
    expect(await costOf(() => registry.touch(alice.connectionId, Date.now(), LIMIT))).toBe(1);
    expect(await costOf(() => registry.listRoom('lobby'))).toBe(1);
    expect(await costOf(() => registry.listRoomMembers('lobby'))).toBe(1);
    expect(await costOf(() => registry.findByClientId('alice'))).toBe(1);
    expect(await costOf(() => registry.moveToRoom(alice.connectionId, 'kitchen'))).toBe(1);
    expect(await costOf(() => registry.remove(alice.connectionId))).toBe(1);
    const bob = record('bob');
    expect(await costOf(() => registry.add(bob))).toBe(1);
    expect(await costOf(() => registry.replace({ ...record('bob'), session: 'first' }, bob.connectionId))).toBe(1);
  });

  it('keeps its own members in step when a connection of another instance replaces one of its own', async () => {
    const prefix = freshPrefix();
    const [a, b] = [new RedisRegistry({ client: await client('A'), prefix, instanceId: 'A' }), new RedisRegistry({ client: await client('B'), prefix, instanceId: 'B' })];
    const stale = record('alice', 'A');
    await a.add(stale);
    expect(a.ownRoomIds('lobby')).toEqual([stale.connectionId]);
    const resumed = { ...record('alice', 'B'), session: 's1' };
    expect(await b.replace(resumed, stale.connectionId)).toEqual(stale);
    expect(b.ownRoomIds('lobby')).toEqual([resumed.connectionId]);
    expect(await a.listRoomMembers('lobby')).toEqual([{ connectionId: resumed.connectionId, owner: 'B' }]);
    expect(await a.ownedBy('A')).toEqual([]);
    expect(await a.ownedBy('B')).toEqual([resumed.connectionId]);
    expect(await a.findByClientId('alice')).toEqual(resumed);
    // The owner learns of it when it closes the stale socket: its removal finds nothing and forgets its copy.
    expect(await a.remove(stale.connectionId)).toBeUndefined();
    expect(a.ownRoomIds('lobby')).toEqual([]);
  });

  it('touches its own connections in memory, so their frames cost no round trip, and sweeps them by that activity', async () => {
    const redisClient = await client();
    const prefix = freshPrefix();
    const registry = new RedisRegistry({ client: redisClient, prefix, instanceId: 'A' });
    const other = new RedisRegistry({ client: await client('B'), prefix, instanceId: 'B' });
    const base = Date.now();
    // The bucket starts at `base`, the moment of the touches, so exactly `burst` of them fit.
    const mine = { ...record('alice', 'A'), lastActiveAt: base - 60_000, rate: freshRateState(base) };
    const theirs = { ...record('bob', 'B'), lastActiveAt: base - 60_000, rate: freshRateState(base) };
    await registry.add(mine);
    await other.add(theirs);
    const sent = recordCommands(redisClient);
    for (let i = 0; i < LIMIT.burst; i++) expect((await registry.touch(mine.connectionId, base, LIMIT))?.admitted).toBe(true);
    expect((await registry.touch(mine.connectionId, base, LIMIT))?.admitted).toBe(false);
    expect(sent).toEqual([]);
    expect((await registry.get(mine.connectionId))?.lastActiveAt).toBe(base);
    expect(await registry.listIdle(base - 1)).toEqual([]);
    expect((await other.listIdle(base - 1)).map((r) => r.clientId)).toEqual(['bob']);
    // A connection owned elsewhere is touched in Redis, in one round trip.
    expect((await registry.touch(theirs.connectionId, base, LIMIT))?.admitted).toBe(true);
    expect(sent).toHaveLength(1);
  });

  it('answers from its own connections while Redis is away, and writes them back when it returns', async () => {
    const outage = await startRedisServer();
    try {
      const redisClient = redis.keep(await connectRedis(outage.url, 'outage'));
      let onRestored = () => {};
      const restored = new Promise<void>((resolve) => (onRestored = resolve));
      const logger = { ...silentLogger, info: (event: string) => event === 'redis_restored' && onRestored() };
      const registry = new RedisRegistry({ client: redisClient, prefix: 'o:', instanceId: 'A', logger });
      const alice = record('alice', 'A');
      const bob = record('bob', 'A');
      const remote = record('carol', 'B');
      for (const r of [alice, bob, remote]) expect(await registry.add(r)).toBe(true);

      await outage.stop();
      expect((await registry.listRoom('lobby')).map((r) => r.clientId).sort()).toEqual(['alice', 'bob']);
      expect((await registry.touch(alice.connectionId, Date.now(), LIMIT))?.admitted).toBe(true);
      expect(await registry.remove(bob.connectionId)).toMatchObject({ clientId: 'bob' });
      await expect(registry.add(record('dave', 'A'))).rejects.toBeInstanceOf(RegistryUnavailableError);
      expect(registry.isAway).toBe(true);

      // It comes back empty, as a Redis without persistence does.
      await outage.restart();
      await restored;
      expect(registry.isAway).toBe(false);
      const readerClient = redis.keep(await connectRedis(outage.url, 'reader'));
      const reader = new RedisRegistry({ client: readerClient, prefix: 'o:' });
      expect((await reader.listRoom('lobby')).map((r) => r.clientId)).toEqual(['alice']);
      expect((await reader.findByClientId('alice'))?.owner).toBe('A');
      expect(await reader.findByClientId('bob')).toBeUndefined();
    } finally {
      await outage.stop();
    }
  });
});

describe('commands the registry sent', () => {
  it('never included KEYS or SCAN', async () => {
    await expectNoKeyspaceWalk(await client());
  });
});
