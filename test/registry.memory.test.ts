import { describe, expect, it } from 'vitest';
import { MemoryRegistry } from '../shared/memory-registry.js';
import { nameKey } from '../shared/names.js';
import { freshRateState } from '../shared/rate-limit.js';
import { registryReplaceSuite } from './registry-replace-suite.js';
import { registrySuite } from './registry-suite.js';

const memoryRegistry = async () => ({ registry: new MemoryRegistry(), cleanup: async () => {} });
registrySuite('MemoryRegistry', memoryRegistry, { listsIdle: true, countsFromArrival: true });
registryReplaceSuite('MemoryRegistry', memoryRegistry);

describe('MemoryRegistry records', () => {
  it('keeps the owning instance of a record, and leaves it out where there is none', async () => {
    const registry = new MemoryRegistry();
    const now = Date.now();
    const base = { room: 'lobby', connectedAt: now, lastActiveAt: now, sourceIp: '198.51.100.2', identity: {}, rate: freshRateState(now) };
    const owned = { ...base, connectionId: 'owned=', clientId: 'alice', nameKey: nameKey('alice'), owner: 'instance-a' };
    const ownerless = { ...base, connectionId: 'ownerless=', clientId: 'bob', nameKey: nameKey('bob') };
    expect(await registry.add(owned)).toBe(true);
    expect(await registry.add(ownerless)).toBe(true);
    expect(await registry.get('owned=')).toStrictEqual(owned);
    expect(await registry.get('ownerless=')).toStrictEqual(ownerless);
    expect((await registry.touch('owned=', now + 1, { perSecond: 10, burst: 5, closeAfter: 5 }))?.record.owner).toBe('instance-a');
  });

  it('keeps the session of a record, and leaves it out where there is none', async () => {
    const registry = new MemoryRegistry();
    const now = Date.now();
    const base = { room: 'lobby', connectedAt: now, lastActiveAt: now, sourceIp: '198.51.100.2', identity: {}, rate: freshRateState(now) };
    // A first connection's session is its own id; a resumed one carries the id of the first.
    const first = { ...base, connectionId: 'first=', clientId: 'alice', nameKey: nameKey('alice'), session: 'first=' };
    const resumed = { ...base, connectionId: 'resumed=', clientId: 'bob', nameKey: nameKey('bob'), session: 'bob-first=' };
    const sessionless = { ...base, connectionId: 'sessionless=', clientId: 'carol', nameKey: nameKey('carol') };
    for (const record of [first, resumed, sessionless]) expect(await registry.add(record)).toBe(true);
    expect(await registry.get('first=')).toStrictEqual(first);
    expect(await registry.get('resumed=')).toStrictEqual(resumed);
    expect(await registry.get('sessionless=')).toStrictEqual(sessionless);
    expect((await registry.listRoom('lobby')).map((record) => record.session).sort()).toEqual(['bob-first=', 'first=', undefined]);
  });
});
