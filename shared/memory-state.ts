/**
 * Room state in this process's memory: what one CloudBase instance shares
 * between its own connections. Each operation reads and writes without an
 * await in between, so it is atomic for the process. A room whose last key
 * is deleted is forgotten, and so is one nobody has written to for `ttlMs`.
 */
import { StateFullError } from './errors.js';
import { DEFAULT_STATE_TTL_MS, incremented, STATE_LIMITS, type StateStore } from './room-state.js';

export interface MemoryStateStoreOptions {
  /** A room's state is forgotten this long after its last write; 0 keeps it. Default a day (ROOM_STATE_TTL). */
  ttlMs?: number;
  /** Epoch ms. */
  clock?: () => number;
}

/** Rooms are looked over for expired ones at least this often, on a write. */
const MAX_SWEEP_INTERVAL_MS = 60_000;

interface RoomEntries {
  entries: Map<string, string>;
  writtenAt: number;
}

export class MemoryStateStore implements StateStore {
  private readonly rooms = new Map<string, RoomEntries>();
  private readonly ttlMs: number;
  private readonly clock: () => number;
  private lastSweep: number;

  constructor(options: MemoryStateStoreOptions = {}) {
    this.ttlMs = options.ttlMs ?? DEFAULT_STATE_TTL_MS;
    this.clock = options.clock ?? Date.now;
    this.lastSweep = this.clock();
  }

  /** Rooms held, expired ones not yet swept included. */
  get roomCount(): number {
    return this.rooms.size;
  }

  async get(room: string, key: string): Promise<string | undefined> {
    return this.live(room, this.clock())?.get(key);
  }

  async set(room: string, key: string, json: string): Promise<void> {
    this.writable(room, key).set(key, json);
  }

  async delete(room: string, key: string): Promise<boolean> {
    const now = this.clock();
    const entries = this.live(room, now);
    if (!entries?.delete(key)) return false;
    if (entries.size === 0) this.rooms.delete(room);
    else this.rooms.get(room)!.writtenAt = now;
    return true;
  }

  async increment(room: string, key: string, by: number): Promise<number> {
    const value = incremented(key, this.live(room, this.clock())?.get(key), by);
    this.writable(room, key).set(key, String(value));
    return value;
  }

  async list(room: string): Promise<Array<[string, string]>> {
    return [...(this.live(room, this.clock()) ?? [])];
  }

  /** The room's entries unless they expired; expired ones are dropped here. */
  private live(room: string, now: number): Map<string, string> | undefined {
    const held = this.rooms.get(room);
    if (!held) return undefined;
    if (!this.expired(held, now)) return held.entries;
    this.rooms.delete(room);
    return undefined;
  }

  private expired(held: RoomEntries, now: number): boolean {
    return this.ttlMs > 0 && held.writtenAt + this.ttlMs <= now;
  }

  /** The room's map, when `key` may be written to it; the write counts as the room's latest. */
  private writable(room: string, key: string): Map<string, string> {
    const now = this.clock();
    this.sweepIfDue(now);
    let entries = this.live(room, now);
    if (!entries) {
      entries = new Map();
      this.rooms.set(room, { entries, writtenAt: now });
    } else if (!entries.has(key) && entries.size >= STATE_LIMITS.maxKeysPerRoom) {
      throw new StateFullError(STATE_LIMITS.maxKeysPerRoom);
    } else {
      this.rooms.get(room)!.writtenAt = now;
    }
    return entries;
  }

  /** Drops every expired room now and then, so rooms nobody reads again do not stay. */
  private sweepIfDue(now: number): void {
    if (this.ttlMs <= 0 || now - this.lastSweep < Math.min(this.ttlMs, MAX_SWEEP_INTERVAL_MS)) return;
    this.lastSweep = now;
    for (const [room, held] of this.rooms) if (this.expired(held, now)) this.rooms.delete(room);
  }
}
