import { describe, expect, it } from 'vitest';
import { MemoryRoomLog } from '../shared/memory-room-log.js';
import { roomLogSuite } from './room-log-suite.js';

roomLogSuite('MemoryRoomLog', async (limits, clock) => ({ log: new MemoryRoomLog({ ...limits, clock }), cleanup: async () => {} }));

describe('MemoryRoomLog rooms', () => {
  const frame = (at: number) => ({ data: '{"type":"chat"}', at });

  it('keeps the numbering of a room whose entries aged out, then forgets the room once no token can name its seqs', async () => {
    let now = 1_000_000;
    const log = new MemoryRoomLog({ maxEntries: 10, maxAgeMs: 60_000, numberingKeptMs: 120_000, clock: () => now });
    for (let i = 0; i < 3; i++) await log.append('quiet', frame(now));
    now += 61_000;
    // Any use sweeps once a sweep is due; a write to another room is one.
    await log.append('busy', frame(now));
    expect(await log.read('quiet', 0, now)).toEqual({ ok: false, latest: 3 });
    expect(await log.append('quiet', frame(now))).toBe(4);
    expect(log.roomCount).toBe(2);

    now += 200_000;
    await log.append('busy', frame(now));
    expect(log.roomCount).toBe(1);
    expect(await log.latest('quiet')).toBe(0);
  });

  it('has an epoch of its own, so a restarted process tells its numbering from the last one', () => {
    const limits = { maxEntries: 10, maxAgeMs: 1000 };
    const first = new MemoryRoomLog(limits);
    const second = new MemoryRoomLog(limits);
    expect(first.epoch).toMatch(/^[0-9a-f]{16}$/);
    expect(second.epoch).not.toBe(first.epoch);
  });

  it('reads a full ring across its wrap in seq order', async () => {
    const log = new MemoryRoomLog({ maxEntries: 4, maxAgeMs: 60_000 });
    const now = Date.now();
    for (let i = 1; i <= 7; i++) await log.append('r', { data: `{"n":${i}}`, at: now });
    const read = await log.read('r', 3, now);
    expect(read.ok && read.entries.map((entry) => [entry.seq, entry.data])).toEqual([
      [4, '{"n":4}'],
      [5, '{"n":5}'],
      [6, '{"n":6}'],
      [7, '{"n":7}'],
    ]);
  });

  it('grows a ring again after its oldest entries aged out, keeping them in order', async () => {
    let now = 0;
    const log = new MemoryRoomLog({ maxEntries: 8, maxAgeMs: 10_000, clock: () => now });
    for (let i = 1; i <= 4; i++) await log.append('r', { data: `{"n":${i}}`, at: now });
    now = 5_000;
    for (let i = 5; i <= 6; i++) await log.append('r', { data: `{"n":${i}}`, at: now });
    now = 12_000;
    // Entries 1-4 are past the age now and give their slots to 7-10; the ring then grows for 11-12.
    for (let i = 7; i <= 12; i++) await log.append('r', { data: `{"n":${i}}`, at: now });
    const read = await log.read('r', 4, now);
    expect(read.ok && read.entries.map((entry) => entry.seq)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    expect(read.ok && read.entries.map((entry) => JSON.parse(entry.data).n)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    expect(await log.read('r', 3, now)).toEqual({ ok: false, latest: 12 });
  });
});
