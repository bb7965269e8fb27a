/**
 * The log every room keeps of the frames delivered to its members, so a
 * client that lost its connection can be given what it missed (protocol.md,
 * "Sequence numbers and resuming"). The log also assigns the room's `seq`:
 * a store that several writers share (Redis, DynamoDB) must assign it
 * atomically, so all members agree on one order.
 *
 * Entries hold the encoded frame without its `seq`; `withSeq` adds it on the
 * way out. That lets a store write the entry in the same operation that
 * assigns the number (a DynamoDB item cannot refer to the value it is being
 * updated to).
 */

export interface LogEntryInput {
  /** The encoded frame (JSON object text), without `seq`. */
  data: string;
  /** Epoch ms when it was sent; what the age bound is measured against. */
  at: number;
  /** For a frame meant for one member only (a private message): that member's nameKey. */
  to?: string;
  /**
   * For a frame the whole room got but one member (its own `user_joined`, an
   * app's broadcast with `except`, its own `user_left`): that member's
   * nameKey, so a resume does not hand it what it was never sent.
   */
  except?: string;
}

export interface LogEntry extends LogEntryInput {
  seq: number;
}

export type LogRead =
  /** Every entry after `after`, in seq order; `latest` is the room's highest seq at the read. */
  | { ok: true; entries: LogEntry[]; latest: number }
  /** The log no longer holds `after + 1` (overflowed, aged out, or lost with a restart). */
  | { ok: false; latest: number };

export interface RoomLogLimits {
  /** Entries a room keeps at least (a store may keep some more). */
  maxEntries: number;
  /** Entries older than this are not replayed. */
  maxAgeMs: number;
}

/** A room frame as `RoomLog.appendToAll` numbered and handed on. */
export interface RoomAppend {
  seq: number;
  /** The room's head count the frame was made for. */
  onlineCount: number;
  /** The frame with its seq, as every recipient gets it. */
  data: string;
}

export interface AppendToAllOptions {
  /** The connection left out of the room's delivery on every instance. */
  exceptConnection?: string;
  /** That member's nameKey, kept with the entry as LogEntryInput.except. */
  except?: string;
  /** What the room counts while the store is away: this instance's own members. */
  ownCount: number;
}

/** Implementations must pass test/room-log-suite.ts. */
export interface RoomLog {
  /**
   * Set by a log whose numbering can start over (one kept in a process's
   * memory starts at 1 again after a restart): what tells its seqs from those
   * of an earlier log of the same rooms. Resume tokens carry it, so a seq
   * handed out by a lost log is a gap, not a place in the new numbering.
   * A store that keeps its numbering (Redis, DynamoDB) leaves it out.
   */
  readonly epoch?: string;
  /** Stores the entry as the room's next seq and returns that seq (the first is 1). */
  append(room: string, entry: LogEntryInput): Promise<number>;
  /** The entries after `after`, as of `now` (older ones than maxAgeMs count as gone). */
  read(room: string, after: number, now: number): Promise<LogRead>;
  /** The room's highest seq so far; 0 for a room that has none. */
  latest(room: string): Promise<number>;
  /**
   * Optional, for a log kept in the store that also holds the rooms'
   * membership and carries the instances' backplane (Redis): counts the
   * room, appends the frame made for that count, and hands it with its seq
   * to every other instance as a backplane 'room' message, in one step where
   * the three would each cost a round trip. `frame` is the encoded frame
   * (without seq), or what encodes it for a head count. The count is the
   * room's at the moment the seq is assigned. While the store is away the
   * frame is numbered as `append` would number it and reaches no other
   * instance, as a backplane drops what it cannot carry.
   */
  appendToAll?(room: string, frame: string | ((onlineCount: number) => string), at: number, options: AppendToAllOptions): Promise<RoomAppend>;
}

/** The frame text with `"seq":N` as its last field; `data` is a JSON object's text, so it ends with `}`. */
export function withSeq(data: string, seq: number): string {
  return `${data.slice(0, -1)},"seq":${seq}}`;
}
