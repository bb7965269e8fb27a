import type { JsonObject } from './protocol.js';
import { nameKey } from './names.js';
import type { ConnectionRecord, ConnectionRegistry, TouchResult } from './registry.js';
import { consumeToken, type RateLimit } from './rate-limit.js';

/**
 * One stored connection, kept small because a process holds one per open
 * socket: the rate state inline instead of an object of its own, one shared
 * object for the usual empty identity, the nameKey and room sharing the
 * strings they equal. Callers get ConnectionRecords built from it, never it.
 */
class Entry {
  constructor(
    readonly connectionId: string,
    readonly clientId: string,
    readonly nameKey: string,
    public room: string,
    readonly connectedAt: number,
    public lastActiveAt: number,
    readonly sourceIp: string,
    readonly identity: JsonObject,
    public tat: number,
    public strikes: number,
  ) {}

  toRecord(): ConnectionRecord {
    return {
      connectionId: this.connectionId,
      clientId: this.clientId,
      nameKey: this.nameKey,
      room: this.room,
      connectedAt: this.connectedAt,
      lastActiveAt: this.lastActiveAt,
      sourceIp: this.sourceIp,
      identity: this.identity === NO_IDENTITY ? {} : this.identity,
      rate: { tat: this.tat, strikes: this.strikes },
    };
  }
}

const NO_IDENTITY: JsonObject = Object.freeze({});

/**
 * The registry of a single long-lived process. Rooms are indexed so listing a
 * room costs its size, not the number of connections; a clientId is found
 * through its nameKey, which equal clientIds share, so one map serves both.
 */
export class MemoryRegistry implements ConnectionRegistry {
  private readonly byConnection = new Map<string, Entry>();
  private readonly byNameKey = new Map<string, Entry>();
  private readonly rooms = new Map<string, Set<Entry>>();

  get size(): number {
    return this.byConnection.size;
  }

  async add(record: ConnectionRecord): Promise<boolean> {
    if (this.byNameKey.has(record.nameKey) || this.byConnection.has(record.connectionId)) return false;
    const { clientId, identity } = record;
    const members = this.roomOf(record.room);
    const entry = new Entry(
      record.connectionId,
      clientId,
      record.nameKey === clientId ? clientId : record.nameKey,
      this.roomName(record.room),
      record.connectedAt,
      record.lastActiveAt,
      record.sourceIp,
      Object.keys(identity).length === 0 ? NO_IDENTITY : identity,
      record.rate.tat,
      record.rate.strikes,
    );
    this.byConnection.set(entry.connectionId, entry);
    this.byNameKey.set(entry.nameKey, entry);
    members.add(entry);
    return true;
  }

  async get(connectionId: string): Promise<ConnectionRecord | undefined> {
    return this.byConnection.get(connectionId)?.toRecord();
  }

  async findByClientId(clientId: string): Promise<ConnectionRecord | undefined> {
    const entry = this.byNameKey.get(nameKey(clientId));
    // A look-alike holds the key: it is another name, not this one.
    return entry?.clientId === clientId ? entry.toRecord() : undefined;
  }

  async listRoom(room: string): Promise<ConnectionRecord[]> {
    const members = this.rooms.get(room);
    return members ? Array.from(members, (entry) => entry.toRecord()) : [];
  }

  async listRoomIds(room: string): Promise<string[]> {
    const members = this.rooms.get(room);
    return members ? Array.from(members, (entry) => entry.connectionId) : [];
  }

  async countRoom(room: string): Promise<number> {
    return this.rooms.get(room)?.size ?? 0;
  }

  async moveToRoom(connectionId: string, room: string): Promise<ConnectionRecord | undefined> {
    const entry = this.byConnection.get(connectionId);
    if (!entry) return undefined;
    this.leaveRoom(entry);
    const members = this.roomOf(room);
    entry.room = this.roomName(room);
    members.add(entry);
    return entry.toRecord();
  }

  async touch(connectionId: string, now: number, limit: RateLimit): Promise<TouchResult | undefined> {
    const entry = this.byConnection.get(connectionId);
    if (!entry) return undefined;
    const decision = consumeToken(entry, now, limit);
    entry.tat = decision.state.tat;
    entry.strikes = decision.state.strikes;
    entry.lastActiveAt = now;
    return { record: entry.toRecord(), admitted: decision.admitted };
  }

  async remove(connectionId: string): Promise<ConnectionRecord | undefined> {
    const entry = this.byConnection.get(connectionId);
    if (!entry) return undefined;
    this.byConnection.delete(connectionId);
    this.byNameKey.delete(entry.nameKey);
    this.leaveRoom(entry);
    return entry.toRecord();
  }

  async listIdle(before: number): Promise<ConnectionRecord[]> {
    const idle: ConnectionRecord[] = [];
    for (const entry of this.byConnection.values()) {
      if (entry.lastActiveAt < before) idle.push(entry.toRecord());
    }
    return idle;
  }

  private roomOf(room: string): Set<Entry> {
    let members = this.rooms.get(room);
    if (!members) {
      members = new Set();
      this.rooms.set(room, members);
    }
    return members;
  }

  /** The room's name as the rooms map already holds it, so its members share one string. */
  private roomName(room: string): string {
    for (const entry of this.rooms.get(room) ?? []) return entry.room;
    return room;
  }

  private leaveRoom(entry: Entry): void {
    const members = this.rooms.get(entry.room);
    if (!members) return;
    members.delete(entry);
    if (members.size === 0) this.rooms.delete(entry.room);
  }
}
