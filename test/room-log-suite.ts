/**
 * The one suite every RoomLog passes: numbering, reads after a seq, gaps
 * (overflow, age, a seq the log never handed out), private entries, and
 * concurrent appends, checked through the interface only. Each test gets a
 * fresh, empty log from `create`, made with the test's limits and a clock the
 * test moves: entries carry their own `at` and reads their `now`, so a store
 * that keeps real time for its own expiry still sees a consistent age.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { LogEntryInput, RoomLog, RoomLogLimits } from '../shared/room-log.js';

export interface RoomLogUnderTest {
  log: RoomLog;
  cleanup(): Promise<void>;
}

export type RoomLogFactory = (limits: RoomLogLimits, clock: () => number) => Promise<RoomLogUnderTest>;

const LIMITS: RoomLogLimits = { maxEntries: 50, maxAgeMs: 60_000 };

export function roomLogSuite(name: string, create: RoomLogFactory): void {
  describe(`room log suite: ${name}`, () => {
    let subject: RoomLogUnderTest | undefined;
    let offset = 0;
    const base = Date.now();
    const clock = () => base + offset;
    let serial = 0;
    // Rooms unique per test, so a store shared by tests (one Redis, one table) starts each one empty.
    const room = (label = 'room') => `${label}_${process.pid}_${++serial}_${base}`;

    const open = async (limits: RoomLogLimits = LIMITS) => {
      offset = 0;
      subject = await create(limits, clock);
      return subject.log;
    };
    afterEach(async () => {
      await subject?.cleanup();
      subject = undefined;
    });

    const frame = (text: string): LogEntryInput => ({ data: JSON.stringify({ type: 'chat', message: text }), at: clock() });
    const appendAll = async (log: RoomLog, into: string, count: number) => {
      const seqs: number[] = [];
      for (let i = 1; i <= count; i++) seqs.push(await log.append(into, frame(`m${i}`)));
      return seqs;
    };

    it('numbers each room from 1, one by one, rooms apart', async () => {
      const log = await open();
      const a = room('a');
      const b = room('b');
      expect(await appendAll(log, a, 3)).toEqual([1, 2, 3]);
      expect(await log.append(b, frame('first in b'))).toBe(1);
      expect(await log.append(a, frame('m4'))).toBe(4);
    });

    it('says latest 0 for a room that has nothing, then the highest seq handed out', async () => {
      const log = await open();
      const a = room();
      expect(await log.latest(a)).toBe(0);
      await appendAll(log, a, 5);
      expect(await log.latest(a)).toBe(5);
    });

    it('reads every entry after a seq, in order, with the data and time they were stored with', async () => {
      const log = await open();
      const a = room();
      const stored: LogEntryInput[] = [];
      for (let i = 1; i <= 6; i++) {
        offset += 1000;
        const entry = frame(`m${i}`);
        stored.push(entry);
        await log.append(a, entry);
      }
      const read = await log.read(a, 2, clock());
      expect(read).toEqual({ ok: true, latest: 6, entries: stored.slice(2).map((entry, i) => ({ seq: 3 + i, data: entry.data, at: entry.at })) });
    });

    it('reads nothing, and no gap, after the latest seq, and after 0 in a room that has nothing', async () => {
      const log = await open();
      const a = room();
      await appendAll(log, a, 3);
      expect(await log.read(a, 3, clock())).toEqual({ ok: true, entries: [], latest: 3 });
      expect(await log.read(room('empty'), 0, clock())).toEqual({ ok: true, entries: [], latest: 0 });
    });

    it('reports a gap after a seq it never handed out, as a log that lost its entries would', async () => {
      const log = await open();
      const a = room();
      await appendAll(log, a, 2);
      expect(await log.read(a, 5, clock())).toEqual({ ok: false, latest: 2 });
      expect(await log.read(room('empty'), 1, clock())).toEqual({ ok: false, latest: 0 });
    });

    it('keeps at least maxEntries and reports a gap once the next seq wanted has been dropped for newer ones', async () => {
      const maxEntries = 5;
      const log = await open({ maxEntries, maxAgeMs: 60_000 });
      const a = room();
      // Far more than any store's slack over maxEntries.
      const total = 300;
      await appendAll(log, a, total);
      expect(await log.read(a, 0, clock())).toEqual({ ok: false, latest: total });
      const recent = await log.read(a, total - maxEntries, clock());
      expect(recent.ok).toBe(true);
      expect(recent.ok && recent.entries.map((entry) => entry.seq)).toEqual([296, 297, 298, 299, 300]);
      expect(recent.ok && JSON.parse(recent.entries[4]!.data).message).toBe('m300');
    });

    it('reports a gap once the next seq wanted is older than maxAgeMs, and still reads what is younger', async () => {
      const log = await open({ maxEntries: 50, maxAgeMs: 60_000 });
      const a = room();
      await log.append(a, frame('old'));
      offset += 30_000;
      await log.append(a, frame('newer'));
      offset += 29_000;
      expect((await log.read(a, 0, clock())).ok).toBe(true);
      offset += 2_000;
      // Seq 1 is now 61 s old, seq 2 31 s.
      expect(await log.read(a, 0, clock())).toEqual({ ok: false, latest: 2 });
      const younger = await log.read(a, 1, clock());
      expect(younger.ok && younger.entries.map((entry) => JSON.parse(entry.data).message)).toEqual(['newer']);
      expect(await log.read(a, 2, clock())).toEqual({ ok: true, entries: [], latest: 2 });
    });

    it('keeps the recipient of an entry meant for one member, and no recipient where none was given', async () => {
      const log = await open();
      const a = room();
      await log.append(a, frame('for everyone'));
      await log.append(a, { ...frame('for bob'), to: 'bob' });
      const read = await log.read(a, 0, clock());
      expect(read.ok).toBe(true);
      if (!read.ok) return;
      expect(read.entries[0]!.to).toBeUndefined();
      expect(read.entries[1]).toMatchObject({ seq: 2, to: 'bob' });
    });

    it('keeps the one member an entry is not for, beside one it is for, through a wrap of the log', async () => {
      const log = await open({ maxEntries: 3, maxAgeMs: 60_000 });
      const a = room();
      await log.append(a, frame('old'));
      await log.append(a, { ...frame('not for ann'), except: 'ann' });
      await log.append(a, { ...frame('for bob, not for ann'), to: 'bob', except: 'ann' });
      await log.append(a, frame('for everyone'));
      const read = await log.read(a, 1, clock());
      expect(read.ok).toBe(true);
      if (!read.ok) return;
      expect(read.entries.map(({ seq, to, except }) => ({ seq, to, except }))).toEqual([
        { seq: 2, to: undefined, except: 'ann' },
        { seq: 3, to: 'bob', except: 'ann' },
        { seq: 4, to: undefined, except: undefined },
      ]);
    });

    it('gives concurrent appends distinct, consecutive seqs, each entry under the seq it was given', async () => {
      const log = await open({ maxEntries: 100, maxAgeMs: 60_000 });
      const a = room();
      const count = 40;
      const seqs = await Promise.all(Array.from({ length: count }, (_, i) => log.append(a, frame(`c${i}`))));
      expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
      const read = await log.read(a, 0, clock());
      expect(read.ok).toBe(true);
      if (!read.ok) return;
      expect(read.latest).toBe(count);
      for (const entry of read.entries) expect(JSON.parse(entry.data).message).toBe(`c${seqs.indexOf(entry.seq)}`);
    });
  });
}
