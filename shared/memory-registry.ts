import type { ConnectionRecord, ConnectionRegistry, TouchResult } from './registry.js';
import { consumeToken, type RateLimit } from './rate-limit.js';

/**
 * The registry of a single long-lived process. Rooms are indexed so listing a
 * room costs its size, not the number of connections.
 */
export class MemoryRegistry implements ConnectionRegistry {
  private readonly byConnection = new Map<string, ConnectionRecord>();
  private readonly byClientId = new Map<string, ConnectionRecord>();
  private readonly byNameKey = new Set<string>();
  private readonly rooms = new Map<string, Map<string, ConnectionRecord>>();

  get size(): number {
    return this.byConnection.size;
  }

  async add(record: ConnectionRecord): Promise<boolean> {
    if (this.byNameKey.has(record.nameKey) || this.byClientId.has(record.clientId) || this.byConnection.has(record.connectionId)) return false;
    const stored = { ...record, rate: { ...record.rate } };
    this.byConnection.set(stored.connectionId, stored);
    this.byClientId.set(stored.clientId, stored);
    this.byNameKey.add(stored.nameKey);
    this.roomOf(stored.room).set(stored.connectionId, stored);
    return true;
  }

  async get(connectionId: string): Promise<ConnectionRecord | undefined> {
    return copy(this.byConnection.get(connectionId));
  }

  async findByClientId(clientId: string): Promise<ConnectionRecord | undefined> {
    return copy(this.byClientId.get(clientId));
  }

  async listRoom(room: string): Promise<ConnectionRecord[]> {
    const members = this.rooms.get(room);
    return members ? Array.from(members.values(), (record) => ({ ...record })) : [];
  }

  async listRoomIds(room: string): Promise<string[]> {
    const members = this.rooms.get(room);
    return members ? Array.from(members.keys()) : [];
  }

  async countRoom(room: string): Promise<number> {
    return this.rooms.get(room)?.size ?? 0;
  }

  async moveToRoom(connectionId: string, room: string): Promise<ConnectionRecord | undefined> {
    const record = this.byConnection.get(connectionId);
    if (!record) return undefined;
    this.leaveRoom(record);
    record.room = room;
    this.roomOf(room).set(connectionId, record);
    return { ...record };
  }

  async touch(connectionId: string, now: number, limit: RateLimit): Promise<TouchResult | undefined> {
    const record = this.byConnection.get(connectionId);
    if (!record) return undefined;
    const decision = consumeToken(record.rate, now, limit);
    record.rate = decision.state;
    record.lastActiveAt = now;
    return { record: { ...record }, admitted: decision.admitted };
  }

  async remove(connectionId: string): Promise<ConnectionRecord | undefined> {
    const record = this.byConnection.get(connectionId);
    if (!record) return undefined;
    this.byConnection.delete(connectionId);
    this.byClientId.delete(record.clientId);
    this.byNameKey.delete(record.nameKey);
    this.leaveRoom(record);
    return record;
  }

  async listIdle(before: number): Promise<ConnectionRecord[]> {
    const idle: ConnectionRecord[] = [];
    for (const record of this.byConnection.values()) {
      if (record.lastActiveAt < before) idle.push({ ...record });
    }
    return idle;
  }

  private roomOf(room: string): Map<string, ConnectionRecord> {
    let members = this.rooms.get(room);
    if (!members) {
      members = new Map();
      this.rooms.set(room, members);
    }
    return members;
  }

  private leaveRoom(record: ConnectionRecord): void {
    const members = this.rooms.get(record.room);
    if (!members) return;
    members.delete(record.connectionId);
    if (members.size === 0) this.rooms.delete(record.room);
  }
}

function copy(record: ConnectionRecord | undefined): ConnectionRecord | undefined {
  return record ? { ...record } : undefined;
}
