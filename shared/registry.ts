import type { JsonObject } from './protocol.js';
import type { RoomMember } from './backplane.js';
import type { RateLimit, RateState } from './rate-limit.js';

/** What the core knows about one live connection. Plain data, so any store can hold it. */
export interface ConnectionRecord {
  /** The platform's id for the socket (ours on CloudBase, API Gateway's on AWS). */
  connectionId: string;
  /** The name other clients see, in NFKC. */
  clientId: string;
  /**
   * `nameKey(clientId)` (shared/names.ts): names that look alike share it.
   * Unique among live connections, so clientIds are too.
   */
  nameKey: string;
  room: string;
  /** Epoch ms. */
  connectedAt: number;
  /** Epoch ms of the last frame received. */
  lastActiveAt: number;
  sourceIp: string;
  /** Whatever the app's authenticate hook returned, or {}. */
  identity: JsonObject;
  rate: RateState;
  /**
   * The instance whose transport holds the socket. Absent where every
   * instance's transport reaches every connection (the AWS management API).
   */
  owner?: string;
  /**
   * The session this connection belongs to: made at its first admission and
   * carried through resumes (by the resume token), so a resumed connection
   * can take its clientId back from its own stale socket and from no one else.
   */
  session?: string;
  /**
   * Set by `markGreeted` once the connection was welcomed. Only registries
   * that implement `markGreeted` keep it.
   */
  greeted?: boolean;
}

export interface TouchResult {
  /** The record after the touch. */
  record: ConnectionRecord;
  /** Whether the frame fits in the rate limit. */
  admitted: boolean;
}

/**
 * Where connections live. Async throughout so that a remote store (DynamoDB)
 * fits the same core as the in-memory one. Implementations must pass
 * test/registry-suite.ts.
 */
export interface ConnectionRegistry {
  /**
   * Stores the record unless its nameKey belongs to another live connection;
   * then false. Checking the nameKey is enough: equal clientIds have equal keys.
   */
  add(record: ConnectionRecord): Promise<boolean>;
  get(connectionId: string): Promise<ConnectionRecord | undefined>;
  /**
   * Optional, for a registry whose connections are admitted in one process
   * and greeted in another (AWS: `$connect`, then the welcome function): marks
   * the connection greeted and returns its record, or undefined, marking
   * nothing, when it is gone. With it, a connection that leaves before its
   * welcome leaves without a `user_left`, as its room never had a
   * `user_joined`; and since the mark comes before the announcement and the
   * removal returns it, the two are either both sent or neither.
   */
  markGreeted?(connectionId: string): Promise<ConnectionRecord | undefined>;
  findByClientId(clientId: string): Promise<ConnectionRecord | undefined>;
  listRoom(room: string): Promise<ConnectionRecord[]>;
  /**
   * Optional: the connection ids of a room, all a broadcast needs. A store
   * that can list them without building a copy of every record implements it;
   * without it the core takes the ids from listRoom.
   */
  listRoomIds?(room: string): Promise<string[]>;
  /**
   * Optional: the connection ids of a room with their owners, what a
   * broadcast across instances needs; without it the core takes them from
   * listRoom.
   */
  listRoomMembers?(room: string): Promise<RoomMember[]>;
  countRoom(room: string): Promise<number>;
  /**
   * Optional: what presence needs, in one read where a store allows: the
   * room's count and, when it has at most `listUpTo` members, their
   * connection ids (none past that: a large room is only counted). Without
   * it the core counts the room, then lists it when it is small enough.
   */
  countRoomAndList?(room: string, listUpTo: number): Promise<{ count: number; connectionIds?: string[] }>;
  /**
   * Optional, for a registry shared by instances: the members of a room
   * whose sockets this instance owns, from its own memory. With it (and a
   * backplane) a broadcast is one message to every instance, each
   * delivering to its own members, instead of a room listing and one
   * message per owner.
   */
  ownRoomIds?(room: string): readonly string[];
  /** Moves a connection to another room; undefined when it is gone. */
  moveToRoom(connectionId: string, room: string): Promise<ConnectionRecord | undefined>;
  /**
   * Records activity and spends one token of the rate limit, as one operation
   * (one write on a remote store). Undefined when the connection is gone.
   * `receivedAt` (default `now`): when the frame arrived, as `consumeToken`
   * takes it; a store whose frames are judged as they arrive may ignore it.
   */
  touch(connectionId: string, now: number, limit: RateLimit, receivedAt?: number): Promise<TouchResult | undefined>;
  /**
   * Hands the clientId of `staleConnectionId` to `record` (same nameKey) in
   * one atomic step, removing the stale record without a trace in any room
   * listing between the two; returns the stale record. Undefined, and nothing
   * changed, when the stale connection is gone or no longer holds that
   * nameKey. Two calls racing for one stale connection: exactly one wins.
   */
  replace?(record: ConnectionRecord, staleConnectionId: string): Promise<ConnectionRecord | undefined>;
  /** Removes and returns the record; undefined when it was already gone. */
  remove(connectionId: string): Promise<ConnectionRecord | undefined>;
  /**
   * Connections whose last activity is before `before` (epoch ms). Registries
   * that expire entries by themselves (a TTL) may return [].
   */
  listIdle(before: number): Promise<ConnectionRecord[]>;
}
