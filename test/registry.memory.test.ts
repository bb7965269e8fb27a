import { describe, expect, it } from 'vitest';
import { MemoryRegistry } from '../shared/memory-registry.js';
import { nameKey } from '../shared/names.js';
import { freshRateState } from '../shared/rate-limit.js';
import { registrySuite } from './registry-suite.js';

registrySuite('MemoryRegistry', async () => ({ registry: new MemoryRegistry(), cleanup: async () => {} }), { listsIdle: true });

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
});
