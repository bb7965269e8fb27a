/**
 * The room log of one process (shared/room-log.ts): each room a ring of its
 * latest frames, bounded by count and by age. A room whose entries are all
 * gone keeps only its numbering, and loses that too once no resume token can
 * still name a seq of it.
 */
import { randomBytes } from 'node:crypto';
import type { LogEntry, LogEntryInput, LogRead, RoomLog, RoomLogLimits } from './room-log.js';

export interface MemoryRoomLogOptions extends RoomLogLimits {
  /**
   * How long a room with no entries left keeps its numbering after it was
   * last used. Forgotten sooner, it would number from 1 again, and a client
   * holding a seq of the old numbering would be replayed frames of the new
   * one as if they followed it; the engine sets this to the resume token's
   * lifetime. Default 3 hours.
   */
  numberingKeptMs?: number;
  /** Epoch ms; what tells when rooms are swept. */
  clock?: () => number;
}

const DEFAULT_NUMBERING_KEPT_MS = 3 * 60 * 60 * 1000;
/** Rooms no one writes to are swept at least this often, so a burst of rooms does not stay in memory. */
const MAX_SWEEP_INTERVAL_MS = 60_000;

/**
 * One room's entries in parallel arrays (no object per entry), used as
 * a ring once they reach the room's capacity; they grow only as far as the
 * room needs.
 */
class Ring {
  latest = 0;
  /** Entries held; the oldest is at `head`. */
  size = 0;
  head = 0;
  data: string[] = [];
  at: number[] = [];
  to: Array<string | undefined> = [];
  except: Array<string | undefined> = [];

  constructor(public usedAt: number) {}

  get oldestSeq(): number {
    return this.latest - this.size + 1;
  }

  push(entry: LogEntryInput, capacity: number): number {
    const slots = this.data.length;
    if (this.size < slots) {
      this.put((this.head + this.size) % slots, entry);
      this.size++;
    } else if (slots < capacity) {
      if (this.head !== 0) this.straighten();
      this.data.push(entry.data);
      this.at.push(entry.at);
      this.to.push(entry.to);
      this.except.push(entry.except);
      this.size++;
    } else {
      // Full: the oldest entry makes room.
      this.put(this.head, entry);
      this.head = (this.head + 1) % slots;
    }
    return ++this.latest;
  }

  /** The entry `index` places after the oldest. */
  entry(index: number): LogEntry {
    const slot = (this.head + index) % this.data.length;
    const to = this.to[slot];
    const except = this.except[slot];
    const entry: LogEntry = { seq: this.oldestSeq + index, data: this.data[slot]!, at: this.at[slot]! };
    if (to !== undefined) entry.to = to;
    if (except !== undefined) entry.except = except;
    return entry;
  }

  atOf(index: number): number {
    return this.at[(this.head + index) % this.data.length]!;
  }

  /** Drops entries from the oldest on while they are older than `cutoff`; an emptied ring gives its arrays back. */
  dropOlderThan(cutoff: number): void {
    while (this.size > 0 && this.at[this.head]! < cutoff) {
      this.data[this.head] = '';
      this.to[this.head] = undefined;
      this.except[this.head] = undefined;
      this.head = (this.head + 1) % this.data.length;
      this.size--;
    }
    if (this.size === 0 && this.data.length > 0) {
      this.data = [];
      this.at = [];
      this.to = [];
      this.except = [];
      this.head = 0;
    }
  }

  private put(slot: number, entry: LogEntryInput): void {
    this.data[slot] = entry.data;
    this.at[slot] = entry.at;
    this.to[slot] = entry.to;
    this.except[slot] = entry.except;
  }

  /** Rotates the arrays so the oldest entry is first, before they grow at the end. */
  private straighten(): void {
    const rotate = <T>(values: T[]) => values.slice(this.head).concat(values.slice(0, this.head));
    this.data = rotate(this.data);
    this.at = rotate(this.at);
    this.to = rotate(this.to);
    this.except = rotate(this.except);
    this.head = 0;
  }
}

export class MemoryRoomLog implements RoomLog {
  /** A restarted process starts numbering again: tokens of the old numbering must not match this one. */
  readonly epoch = randomBytes(8).toString('hex');
  private readonly rooms = new Map<string, Ring>();
  private readonly maxEntries: number;
  private readonly maxAgeMs: number;
  private readonly numberingKeptMs: number;
  private readonly clock: () => number;
  private readonly sweepIntervalMs: number;
  private lastSweep: number;

  constructor(options: MemoryRoomLogOptions) {
    this.maxEntries = options.maxEntries;
    this.maxAgeMs = options.maxAgeMs;
    this.numberingKeptMs = Math.max(options.numberingKeptMs ?? DEFAULT_NUMBERING_KEPT_MS, options.maxAgeMs);
    this.clock = options.clock ?? Date.now;
    this.sweepIntervalMs = Math.min(options.maxAgeMs, MAX_SWEEP_INTERVAL_MS);
    this.lastSweep = this.clock();
  }

  /** Rooms held, counting those that keep only their numbering. */
  get roomCount(): number {
    return this.rooms.size;
  }

  async append(room: string, entry: LogEntryInput): Promise<number> {
    const now = this.sweepIfDue();
    let ring = this.rooms.get(room);
    if (!ring) {
      ring = new Ring(now);
      this.rooms.set(room, ring);
    }
    ring.usedAt = now;
    ring.dropOlderThan(now - this.maxAgeMs);
    return ring.push(entry, this.maxEntries);
  }

  async read(room: string, after: number, now: number): Promise<LogRead> {
    const used = this.sweepIfDue();
    const ring = this.rooms.get(room);
    if (ring) ring.usedAt = used;
    const latest = ring?.latest ?? 0;
    // Past the latest is a seq this log never handed out: one lost before it.
    if (after < 0 || after > latest) return { ok: false, latest };
    if (after === latest || !ring) return { ok: true, entries: [], latest };
    const first = after + 1 - ring.oldestSeq;
    if (first < 0 || ring.atOf(first) < now - this.maxAgeMs) return { ok: false, latest };
    const entries: LogEntry[] = [];
    for (let index = first; index < ring.size; index++) entries.push(ring.entry(index));
    return { ok: true, entries, latest };
  }

  async latest(room: string): Promise<number> {
    const now = this.sweepIfDue();
    const ring = this.rooms.get(room);
    if (!ring) return 0;
    ring.usedAt = now;
    return ring.latest;
  }

  /** Ages out every room's old entries now and then; returns the clock's time. */
  private sweepIfDue(): number {
    const now = this.clock();
    if (now - this.lastSweep < this.sweepIntervalMs) return now;
    this.lastSweep = now;
    for (const [room, ring] of this.rooms) {
      ring.dropOlderThan(now - this.maxAgeMs);
      if (ring.size === 0 && ring.usedAt < now - this.numberingKeptMs) this.rooms.delete(room);
    }
    return now;
  }
}
