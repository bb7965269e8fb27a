/**
 * The one suite every ConnectionRegistry passes: the behaviour the engine
 * relies on, checked through the interface only. Each test gets a fresh,
 * empty registry from `create`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nameKey } from '../shared/names.js';
import { consumeToken, freshRateState, type RateLimit } from '../shared/rate-limit.js';
import type { ConnectionRecord, ConnectionRegistry } from '../shared/registry.js';

export interface RegistryCapabilities {
  /**
   * Whether listIdle finds idle connections. Registries that let a TTL and
   * the platform's own idle timeout remove entries return [] instead, and
   * the suite checks exactly that.
   */
  listsIdle: boolean;
  /** touch takes the frame's arrival time apart from its handling (AWS, where invocations queue); the CloudBase registries judge on arrival. */
  countsFromArrival: boolean;
}

export interface RegistryUnderTest {
  registry: ConnectionRegistry;
  cleanup(): Promise<void>;
}

const LIMIT: RateLimit = { perSecond: 10, burst: 3, closeAfter: 5 };
const INTERVAL = 1000 / LIMIT.perSecond;

/**
 * Records for a suite's tests: each with a connection id of its own, times
 * at `base()` and the nameKey of its clientId. `added` stores one and expects
 * the store to take it.
 */
export function testRecords(registry: () => ConnectionRegistry, base: () => number) {
  let serial = 0;
  const record = (clientId: string, room = 'lobby', overrides: Partial<ConnectionRecord> = {}): ConnectionRecord => ({
    connectionId: `conn-${++serial}-${clientId}=`,
    clientId,
    nameKey: nameKey(clientId),
    room,
    connectedAt: base(),
    lastActiveAt: base(),
    sourceIp: '203.0.113.7',
    identity: {},
    rate: freshRateState(base()),
    ...overrides,
  });
  const added = async (clientId: string, room = 'lobby', overrides: Partial<ConnectionRecord> = {}) => {
    const entry = record(clientId, room, overrides);
    expect(await registry().add(entry)).toBe(true);
    return entry;
  };
  return { record, added };
}

export function registrySuite(name: string, create: () => Promise<RegistryUnderTest>, capabilities: RegistryCapabilities): void {
  describe(`registry suite: ${name}`, () => {
    let subject: RegistryUnderTest;
    let registry: ConnectionRegistry;
    let base: number;

    beforeEach(async () => {
      subject = await create();
      registry = subject.registry;
      base = Date.now();
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    const { record, added } = testRecords(() => registry, () => base);

    const clientIds = (records: ConnectionRecord[]) => records.map((r) => r.clientId).sort();

    describe('add and get', () => {
      it('stores a record and returns it whole', async () => {
        const alice = await added('alice', 'lobby', { identity: { user: 'a', roles: ['admin'], level: 3 }, sourceIp: '198.51.100.1' });
        expect(await registry.get(alice.connectionId)).toEqual(alice);
      });

      it('returns undefined for an unknown connection', async () => {
        expect(await registry.get('never-added=')).toBeUndefined();
      });

      it('refuses a clientId held by another live connection and stores nothing for it', async () => {
        await added('alice');
        const second = record('alice');
        expect(await registry.add(second)).toBe(false);
        expect(await registry.get(second.connectionId)).toBeUndefined();
        expect(clientIds(await registry.listRoom('lobby'))).toEqual(['alice']);
      });

      it('gives exactly one of several simultaneous claims of a clientId', async () => {
        const contenders = Array.from({ length: 6 }, () => record('bob'));
        const results = await Promise.all(contenders.map((c) => registry.add(c)));
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = contenders[results.indexOf(true)]!;
        expect((await registry.findByClientId('bob'))?.connectionId).toBe(winner.connectionId);
      });

      it('refuses a connectionId that is already stored, and leaves the other clientId free', async () => {
        const alice = await added('alice');
        expect(await registry.add({ ...record('carol'), connectionId: alice.connectionId })).toBe(false);
        expect((await registry.get(alice.connectionId))?.clientId).toBe('alice');
        await added('carol');
      });

      it('lets a clientId be claimed again once its holder is removed', async () => {
        const first = await added('alice');
        await registry.remove(first.connectionId);
        const second = await added('alice');
        expect((await registry.findByClientId('alice'))?.connectionId).toBe(second.connectionId);
      });

      // Cyrillic а (U+0430) and Latin a: different clientIds, one nameKey.
      const lookAlike = '\u0430lice';

      it('refuses a clientId whose nameKey a live connection holds, and finds neither by the other', async () => {
        const alice = await added('alice');
        const impostor = record(lookAlike);
        expect(impostor.nameKey).toBe(alice.nameKey);
        expect(await registry.add(impostor)).toBe(false);
        expect(await registry.get(impostor.connectionId)).toBeUndefined();
        expect(await registry.findByClientId(lookAlike)).toBeUndefined();
        expect((await registry.findByClientId('alice'))?.connectionId).toBe(alice.connectionId);
      });

      it('gives exactly one of simultaneous claims of look-alike clientIds', async () => {
        const contenders = ['alice', lookAlike, 'al\u0456ce', 'a\u217Cice'].map((clientId) => record(clientId));
        const results = await Promise.all(contenders.map((c) => registry.add(c)));
        expect(results.filter(Boolean)).toHaveLength(1);
      });

      it('frees the nameKey with its holder, for a look-alike to take', async () => {
        const alice = await added('alice');
        expect((await registry.remove(alice.connectionId))?.nameKey).toBe(alice.nameKey);
        const second = await added(lookAlike);
        expect(await registry.get(second.connectionId)).toEqual(second);
        expect(await registry.add(record('alice'))).toBe(false);
      });
    });

    describe('findByClientId', () => {
      it('finds the connection holding a clientId, wherever its room', async () => {
        await added('alice', 'lobby');
        const bob = await added('bob', 'kitchen');
        expect(await registry.findByClientId('bob')).toEqual(bob);
      });

      it('returns undefined for a clientId nobody holds, or held no longer', async () => {
        const alice = await added('alice');
        expect(await registry.findByClientId('nobody')).toBeUndefined();
        await registry.remove(alice.connectionId);
        expect(await registry.findByClientId('alice')).toBeUndefined();
      });
    });

    describe('rooms', () => {
      it('lists and counts each room separately', async () => {
        await added('alice', 'lobby');
        await added('bob', 'lobby');
        await added('carol', 'kitchen');
        expect(clientIds(await registry.listRoom('lobby'))).toEqual(['alice', 'bob']);
        expect(clientIds(await registry.listRoom('kitchen'))).toEqual(['carol']);
        expect(await registry.countRoom('lobby')).toBe(2);
        expect(await registry.countRoom('kitchen')).toBe(1);
      });

      it('lists the same connection ids through listRoomIds, where a registry has it', async () => {
        const alice = await added('alice', 'lobby');
        const bob = await added('bob', 'lobby');
        await added('carol', 'kitchen');
        const ids = registry.listRoomIds
          ? await registry.listRoomIds('lobby')
          : (await registry.listRoom('lobby')).map((record) => record.connectionId);
        expect([...ids].sort()).toEqual([alice.connectionId, bob.connectionId].sort());
        await registry.moveToRoom(bob.connectionId, 'kitchen');
        expect(await (registry.listRoomIds?.('lobby') ?? registry.listRoom('lobby').then((rs) => rs.map((r) => r.connectionId)))).toEqual([alice.connectionId]);
      });

      it('counts a room and lists it up to a size through countRoomAndList, where a registry has it, and only counts it past that', async () => {
        const members: ConnectionRecord[] = [];
        for (const clientId of ['alice', 'bob', 'carol', 'dave']) members.push(await added(clientId, 'lobby'));
        await added('erin', 'kitchen');
        const census = (listUpTo: number) =>
          registry.countRoomAndList
            ? registry.countRoomAndList('lobby', listUpTo)
            : registry.countRoom('lobby').then(async (count) => (count > listUpTo ? { count } : { count, connectionIds: await registry.listRoomIds!('lobby') }));
        const ids = members.map((member) => member.connectionId).sort();
        for (const listUpTo of [4, 5, 100]) {
          const { count, connectionIds } = await census(listUpTo);
          expect({ count, connectionIds: connectionIds && [...connectionIds].sort() }).toEqual({ count: 4, connectionIds: ids });
        }
        for (const listUpTo of [0, 1, 3]) expect(await census(listUpTo)).toEqual({ count: 4 });
        await registry.remove(members[0]!.connectionId);
        expect(await census(3)).toMatchObject({ count: 3 });
        expect((await census(3)).connectionIds).toHaveLength(3);
      });

      it('returns whole records from a room listing', async () => {
        const alice = await added('alice', 'lobby', { identity: { user: 'a' } });
        expect(await registry.listRoom('lobby')).toEqual([alice]);
      });

      it('has nothing in a room nobody entered', async () => {
        await added('alice', 'lobby');
        expect(await registry.listRoom('empty')).toEqual([]);
        expect(await registry.countRoom('empty')).toBe(0);
      });

      it('moves a connection between rooms', async () => {
        const alice = await added('alice', 'lobby');
        await added('bob', 'lobby');
        const moved = await registry.moveToRoom(alice.connectionId, 'kitchen');
        expect(moved).toEqual({ ...alice, room: 'kitchen' });
        expect(clientIds(await registry.listRoom('lobby'))).toEqual(['bob']);
        expect(clientIds(await registry.listRoom('kitchen'))).toEqual(['alice']);
        expect(await registry.countRoom('kitchen')).toBe(1);
        expect((await registry.get(alice.connectionId))?.room).toBe('kitchen');
        expect((await registry.findByClientId('alice'))?.room).toBe('kitchen');
      });

      it('does not move a connection that is gone', async () => {
        const alice = await added('alice');
        await registry.remove(alice.connectionId);
        expect(await registry.moveToRoom(alice.connectionId, 'kitchen')).toBeUndefined();
        expect(await registry.moveToRoom('never-added=', 'kitchen')).toBeUndefined();
        expect(await registry.listRoom('kitchen')).toEqual([]);
      });
    });

    describe('touch', () => {
      it('records the activity and returns the record after it', async () => {
        const alice = await added('alice');
        const touched = await registry.touch(alice.connectionId, base + 5000, LIMIT);
        expect(touched?.admitted).toBe(true);
        expect(touched?.record.lastActiveAt).toBe(base + 5000);
        expect(touched?.record.clientId).toBe('alice');
        expect(await registry.get(alice.connectionId)).toEqual(touched?.record);
      });

      it('returns undefined for a connection that is gone', async () => {
        const alice = await added('alice');
        await registry.remove(alice.connectionId);
        expect(await registry.touch(alice.connectionId, base, LIMIT)).toBeUndefined();
        expect(await registry.touch('never-added=', base, LIMIT)).toBeUndefined();
        expect(await registry.get(alice.connectionId)).toBeUndefined();
      });

      it('admits a burst, then refuses and counts strikes, exactly as the token bucket decides', async () => {
        const alice = await added('alice');
        // Times in ms after connecting: a burst, a refused run, recovery, a gap, another burst.
        const offsets = [0, 0, 0, 0, 0, 10, INTERVAL, INTERVAL, INTERVAL + 5, 3 * INTERVAL, 5000, 5000, 5000, 5000];
        let expected = alice.rate;
        const decisions: Array<{ admitted: boolean; strikes: number }> = [];
        const modelled: Array<{ admitted: boolean; strikes: number }> = [];
        for (const offset of offsets) {
          const now = base + offset;
          const model = consumeToken(expected, now, LIMIT);
          expected = model.state;
          modelled.push({ admitted: model.admitted, strikes: model.state.strikes });
          const touched = await registry.touch(alice.connectionId, now, LIMIT);
          decisions.push({ admitted: touched!.admitted, strikes: touched!.record.rate.strikes });
          expect(touched!.record.rate.tat).toBeCloseTo(model.state.tat, 6);
          expect(touched!.record.lastActiveAt).toBe(now);
        }
        expect(decisions).toEqual(modelled);
        // The sequence must have exercised both outcomes and the reset of strikes.
        expect(decisions.slice(0, 5).map((d) => d.admitted)).toEqual([true, true, true, false, false]);
        expect(decisions[4]!.strikes).toBe(2);
        expect(decisions.some((d, i) => i > 4 && d.admitted && d.strikes === 0)).toBe(true);
      });

      it('admits exactly the burst when frames arrive at the same moment', async () => {
        const alice = await added('alice');
        const results = await Promise.all(Array.from({ length: 6 }, () => registry.touch(alice.connectionId, base, LIMIT)));
        expect(results.filter((r) => r?.admitted)).toHaveLength(LIMIT.burst);
        expect((await registry.get(alice.connectionId))?.rate.strikes).toBe(6 - LIMIT.burst);
      });

      if (capabilities.countsFromArrival) {
        it('limits a flood however late its frames are handled, as the token bucket decides', async () => {
          const alice = await added('alice');
          let expected = alice.rate;
          const decisions: boolean[] = [];
          const modelled: boolean[] = [];
          // Sixty frames that arrived at once, handled 100 ms apart: judged at their handling, all would pass.
          for (let i = 0; i < 60; i++) {
            const now = base + i * 100;
            const model = consumeToken(expected, now, LIMIT, base);
            expected = model.state;
            modelled.push(model.admitted);
            decisions.push((await registry.touch(alice.connectionId, now, LIMIT, base))!.admitted);
          }
          expect(decisions).toEqual(modelled);
          expect(decisions.filter((admitted) => !admitted).length).toBeGreaterThan(0);
        });
      }

      it('admits everything when the limit is off', async () => {
        const alice = await added('alice');
        const off: RateLimit = { perSecond: 0, burst: 1, closeAfter: 1 };
        for (let i = 0; i < 8; i++) {
          const touched = await registry.touch(alice.connectionId, base, off);
          expect(touched?.admitted).toBe(true);
          expect(touched?.record.rate.strikes).toBe(0);
        }
      });

      it('keeps each connection in its own bucket', async () => {
        const alice = await added('alice');
        const bob = await added('bob');
        for (let i = 0; i < LIMIT.burst + 2; i++) await registry.touch(alice.connectionId, base, LIMIT);
        expect((await registry.touch(bob.connectionId, base, LIMIT))?.admitted).toBe(true);
        expect((await registry.touch(alice.connectionId, base, LIMIT))?.admitted).toBe(false);
      });
    });

    describe('remove', () => {
      it('returns the record once, then undefined', async () => {
        const alice = await added('alice');
        expect(await registry.remove(alice.connectionId)).toEqual(alice);
        expect(await registry.remove(alice.connectionId)).toBeUndefined();
        expect(await registry.remove('never-added=')).toBeUndefined();
      });

      it('takes the connection out of every lookup', async () => {
        const alice = await added('alice', 'kitchen');
        const bob = await added('bob', 'kitchen');
        await registry.remove(alice.connectionId);
        expect(await registry.get(alice.connectionId)).toBeUndefined();
        expect(await registry.findByClientId('alice')).toBeUndefined();
        expect(await registry.listRoom('kitchen')).toEqual([bob]);
        expect(await registry.countRoom('kitchen')).toBe(1);
      });

      it('removes concurrently exactly once', async () => {
        const alice = await added('alice');
        const results = await Promise.all([1, 2, 3].map(() => registry.remove(alice.connectionId)));
        expect(results.filter((r) => r !== undefined)).toHaveLength(1);
      });
    });

    describe('listIdle', () => {
      const setUp = async () => {
        const idle = await added('idle', 'lobby', { lastActiveAt: base - 60_000 });
        const busy = await added('busy');
        await registry.touch(busy.connectionId, base + 1000, LIMIT);
        return idle;
      };
      if (capabilities.listsIdle) {
        it('lists the connections idle since before the cut-off, and only those', async () => {
          const idle = await setUp();
          expect((await registry.listIdle(base)).map((r) => r.connectionId)).toEqual([idle.connectionId]);
          expect(await registry.listIdle(base - 120_000)).toEqual([]);
        });
      } else {
        it('returns [] even with idle connections (entries expire by TTL instead)', async () => {
          await setUp();
          expect(await registry.listIdle(base)).toEqual([]);
          expect(await registry.listIdle(base + 3_600_000)).toEqual([]);
        });
      }
    });
  });
}
