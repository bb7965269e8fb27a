/**
 * What `ConnectionRegistry.replace` must do for a resume to take a clientId
 * back from its own stale connection: hand the name over in one step, leave
 * no trace of the stale record, change nothing when the stale connection is
 * gone or holds another name, and let exactly one of two racing replaces win.
 * Run it beside test/registry-suite.ts for every registry that has `replace`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConnectionRecord, ConnectionRegistry } from '../shared/registry.js';
import { testRecords, type RegistryUnderTest } from './registry-suite.js';

export function registryReplaceSuite(name: string, create: () => Promise<RegistryUnderTest>): void {
  describe(`registry replace suite: ${name}`, () => {
    let subject: RegistryUnderTest;
    let registry: ConnectionRegistry;
    let replace: NonNullable<ConnectionRegistry['replace']>;
    let base: number;

    beforeEach(async () => {
      subject = await create();
      registry = subject.registry;
      expect(registry.replace, `${name} has no replace`).toBeTypeOf('function');
      replace = registry.replace!.bind(registry);
      base = Date.now();
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    const made = testRecords(() => registry, () => base);
    // Each clientId's first connection opens its session, as the engine's do.
    const record = (clientId: string, room = 'lobby', overrides: Partial<ConnectionRecord> = {}) =>
      made.record(clientId, room, { session: `session-of-${clientId}`, ...overrides });
    const added = (clientId: string, room = 'lobby', overrides: Partial<ConnectionRecord> = {}) =>
      made.added(clientId, room, { session: `session-of-${clientId}`, ...overrides });
    const ids = (records: ConnectionRecord[]) => records.map((r) => r.connectionId).sort();

    it('hands the clientId to the new record and returns the stale one', async () => {
      const stale = await added('alice', 'lobby', { identity: { user: 'a' } });
      const fresh = record('alice', 'lobby', { session: stale.session, connectedAt: base + 5000, lastActiveAt: base + 5000 });
      expect(await replace(fresh, stale.connectionId)).toEqual(stale);
      expect(await registry.get(fresh.connectionId)).toEqual(fresh);
      expect(await registry.findByClientId('alice')).toEqual(fresh);
    });

    it('leaves nothing of the stale record in get, findByClientId or any room listing', async () => {
      const stale = await added('alice', 'kitchen');
      const bob = await added('bob', 'kitchen');
      const fresh = record('alice', 'lobby', { session: stale.session });
      await replace(fresh, stale.connectionId);
      expect(await registry.get(stale.connectionId)).toBeUndefined();
      expect((await registry.findByClientId('alice'))?.connectionId).toBe(fresh.connectionId);
      expect(ids(await registry.listRoom('kitchen'))).toEqual([bob.connectionId]);
      expect(await registry.countRoom('kitchen')).toBe(1);
      expect(ids(await registry.listRoom('lobby'))).toEqual([fresh.connectionId]);
      expect(await registry.countRoom('lobby')).toBe(1);
      // Gone for good: removing the stale connection later (its socket's close) finds nothing.
      expect(await registry.remove(stale.connectionId)).toBeUndefined();
      expect((await registry.findByClientId('alice'))?.connectionId).toBe(fresh.connectionId);
    });

    it('shows the name held by exactly one connection at every moment of the hand-over', async () => {
      const stale = await added('alice');
      const fresh = record('alice', 'lobby', { session: stale.session });
      const during = registry.findByClientId('alice');
      const replaced = replace(fresh, stale.connectionId);
      const intruder = registry.add(record('alice'));
      await replaced;
      expect([stale.connectionId, fresh.connectionId]).toContain((await during)?.connectionId);
      expect(await intruder).toBe(false);
      expect(ids(await registry.listRoom('lobby'))).toEqual([fresh.connectionId]);
    });

    it('changes nothing when the stale connection is gone', async () => {
      const stale = await added('alice');
      await registry.remove(stale.connectionId);
      const fresh = record('alice', 'lobby', { session: stale.session });
      expect(await replace(fresh, stale.connectionId)).toBeUndefined();
      expect(await registry.get(fresh.connectionId)).toBeUndefined();
      expect(await registry.findByClientId('alice')).toBeUndefined();
      expect(await registry.listRoom('lobby')).toEqual([]);
      expect(await replace(record('bob'), 'never-added=')).toBeUndefined();
    });

    it('changes nothing when the stale connection holds another name', async () => {
      const bob = await added('bob');
      const fresh = record('alice');
      expect(await replace(fresh, bob.connectionId)).toBeUndefined();
      expect(await registry.get(bob.connectionId)).toEqual(bob);
      expect((await registry.findByClientId('bob'))?.connectionId).toBe(bob.connectionId);
      expect(await registry.get(fresh.connectionId)).toBeUndefined();
      expect(await registry.findByClientId('alice')).toBeUndefined();
    });

    it('lets exactly one of two racing replaces of one stale connection win', async () => {
      const stale = await added('alice');
      const first = record('alice', 'lobby', { session: stale.session });
      const second = record('alice', 'lobby', { session: stale.session });
      const results = await Promise.all([replace(first, stale.connectionId), replace(second, stale.connectionId)]);
      expect(results.filter((result) => result !== undefined)).toHaveLength(1);
      const winner = results[0] ? first : second;
      const loser = results[0] ? second : first;
      expect((await registry.findByClientId('alice'))?.connectionId).toBe(winner.connectionId);
      expect(await registry.get(loser.connectionId)).toBeUndefined();
      expect(ids(await registry.listRoom('lobby'))).toEqual([winner.connectionId]);
    });

    it('stores the new record whole, its session included, and lets it be replaced in turn', async () => {
      const stale = await added('alice');
      const second = record('alice', 'lobby', { session: stale.session, owner: 'instance-b' });
      await replace(second, stale.connectionId);
      expect(await registry.get(second.connectionId)).toEqual(second);
      const third = record('alice', 'lobby', { session: stale.session });
      expect(await replace(third, second.connectionId)).toEqual(second);
      expect((await registry.findByClientId('alice'))?.connectionId).toBe(third.connectionId);
    });
  });
}
