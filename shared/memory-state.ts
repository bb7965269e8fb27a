/**
 * Room state in this process's memory: what one CloudBase instance shares
 * between its own connections. Each operation reads and writes without an
 * await in between, so it is atomic for the process. A room whose last key
 * is deleted is forgotten.
 */
import { StateFullError } from './errors.js';
import { incremented, STATE_LIMITS, type StateStore } from './room-state.js';

export class MemoryStateStore implements StateStore {
  private readonly rooms = new Map<string, Map<string, string>>();

  async get(room: string, key: string): Promise<string | undefined> {
    return this.rooms.get(room)?.get(key);
  }

  async set(room: string, key: string, json: string): Promise<void> {
    this.writable(room, key).set(key, json);
  }

  async delete(room: string, key: string): Promise<boolean> {
    const entries = this.rooms.get(room);
    if (!entries?.delete(key)) return false;
    if (entries.size === 0) this.rooms.delete(room);
    return true;
  }

  async increment(room: string, key: string, by: number): Promise<number> {
    const value = incremented(key, this.rooms.get(room)?.get(key), by);
    this.writable(room, key).set(key, String(value));
    return value;
  }

  async list(room: string): Promise<Array<[string, string]>> {
    return [...(this.rooms.get(room) ?? [])];
  }

  /** The room's map, when `key` may be written to it. */
  private writable(room: string, key: string): Map<string, string> {
    let entries = this.rooms.get(room);
    if (!entries) {
      entries = new Map();
      this.rooms.set(room, entries);
    } else if (!entries.has(key) && entries.size >= STATE_LIMITS.maxKeysPerRoom) {
      throw new StateFullError(STATE_LIMITS.maxKeysPerRoom);
    }
    return entries;
  }
}
