import type { JsonObject } from './protocol.js';
import { nameKey } from './names.js';
import type { ConnectionRecord, ConnectionRegistry, TouchResult } from './registry.js';
import { consumeToken, type RateLimit, type RateState } from './rate-limit.js';

/**
 * Entries keep times as ms since this module loaded, not since 1970: small
 * integers V8 stores inside the entry, where an epoch-ms number is a heap
 * object of its own (16 bytes, three per entry). After about 24 days they
 * outgrow that and V8 boxes them as before; nothing else changes.
 */
const EPOCH = Date.now();

/** `ms` since EPOCH, as a small integer whenever it is one (arithmetic on epoch-ms numbers yields heap numbers). */
function sinceEpoch(ms: number): number {
  const offset = ms - EPOCH;
  return offset === (offset | 0) ? offset | 0 : offset;
}

/**
 * One stored connection, kept small because a process holds one per open
 * socket: the rate state inline instead of an object of its own, one shared
 * object for the usual empty identity, the nameKey, room, address and session
 * sharing the strings they equal (a first connection's session is its own
 * id). Callers get ConnectionRecords built from it, never it.
 */
class Entry {
  readonly connectedAt: number;
  lastActiveAt: number;
  tat: number;

  constructor(
    readonly connectionId: string,
    readonly clientId: string,
    readonly nameKey: string,
    public room: string,
    connectedAt: number,
    lastActiveAt: number,
    readonly sourceIp: string,
    readonly identity: JsonObject,
    tat: number,
    public strikes: number,
    readonly owner: string | undefined,
    readonly session: string | undefined,
  ) {
    this.connectedAt = sinceEpoch(connectedAt);
    this.lastActiveAt = sinceEpoch(lastActiveAt);
    this.tat = sinceEpoch(tat);
  }

  get rate(): RateState {
    return { tat: this.tat + EPOCH, strikes: this.strikes };
  }

  touch(now: number, rate: RateState): void {
    this.lastActiveAt = sinceEpoch(now);
    this.tat = sinceEpoch(rate.tat);
    this.strikes = rate.strikes;
  }

  toRecord(): ConnectionRecord {
    const record: ConnectionRecord = {
      connectionId: this.connectionId,
      clientId: this.clientId,
      nameKey: this.nameKey,
      room: this.room,
      connectedAt: this.connectedAt + EPOCH,
      lastActiveAt: this.lastActiveAt + EPOCH,
      sourceIp: this.sourceIp,
      identity: this.identity === NO_IDENTITY ? {} : this.identity,
      rate: this.rate,
    };
    if (this.owner !== undefined) record.owner = this.owner;
    if (this.session !== undefined) record.session = this.session;
    return record;
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
  /**
   * The source address last stored. Connections arrive in runs from one
   * address (a gateway, a proxy, a NAT), and each handshake reads its own
   * copy of the string; runs share one.
   */
  private lastSourceIp = '';

  get size(): number {
    return this.byConnection.size;
  }

  async add(record: ConnectionRecord): Promise<boolean> {
    if (this.byNameKey.has(record.nameKey) || this.byConnection.has(record.connectionId)) return false;
    this.store(this.entryFor(record));
    return true;
  }

  async replace(record: ConnectionRecord, staleConnectionId: string): Promise<ConnectionRecord | undefined> {
    const stale = this.byConnection.get(staleConnectionId);
    if (!stale || stale.nameKey !== record.nameKey || this.byConnection.has(record.connectionId)) return undefined;
    // One synchronous step: nothing sees the name free, or held twice, in between.
    this.byConnection.delete(staleConnectionId);
    this.leaveRoom(stale);
    this.store(this.entryFor(record));
    return stale.toRecord();
  }

  private entryFor(record: ConnectionRecord): Entry {
    const { connectionId, clientId, identity, session } = record;
    return new Entry(
      connectionId,
      clientId,
      record.nameKey === clientId ? clientId : record.nameKey,
      this.roomName(record.room),
      record.connectedAt,
      record.lastActiveAt,
      this.sharedSourceIp(record.sourceIp),
      Object.keys(identity).length === 0 ? NO_IDENTITY : identity,
      record.rate.tat,
      record.rate.strikes,
      record.owner,
      session === connectionId ? connectionId : session,
    );
  }

  private store(entry: Entry): void {
    this.byConnection.set(entry.connectionId, entry);
    this.byNameKey.set(entry.nameKey, entry);
    this.roomOf(entry.room).add(entry);
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

  async touch(connectionId: string, now: number, limit: RateLimit, receivedAt = now): Promise<TouchResult | undefined> {
    const entry = this.byConnection.get(connectionId);
    if (!entry) return undefined;
    const decision = consumeToken(entry.rate, now, limit, receivedAt);
    entry.touch(receivedAt, decision.state);
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
      if (entry.lastActiveAt + EPOCH < before) idle.push(entry.toRecord());
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

  private sharedSourceIp(sourceIp: string): string {
    if (sourceIp !== this.lastSourceIp) this.lastSourceIp = sourceIp;
    return this.lastSourceIp;
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
