/**
 * The room log (shared/room-log.ts) of the AWS target, in the registry's
 * table (registries/dynamodb-registry.ts). Its items have neither `room` nor
 * `clientId`, so the registry's indexes never see them, and nothing Scans.
 *
 * Items (partition key `pk`):
 *   log#{room}          the head: `seq` (the room's latest), `first` (the seq of
 *                       recent[0]), `recent` (the newest entries, a list),
 *                       `bytes` (their size as counted here), `chunks` (the
 *                       `first` of every chunk item still within maxEntries,
 *                       oldest first), `expiresAt`.
 *   log#{room}#{first}  a chunk: `entries` (a list; entry i has seq first + i),
 *                       `first`, `expiresAt`.
 * An entry is a map: d = the frame, a = epoch ms, t = the one member it is for,
 * x = the one member it is not for.
 *
 * One UpdateItem appends: it adds one to `seq` and list_appends the entry to
 * `recent` together, atomically, so the entry's seq is `first` plus its
 * position and needs no second write. Keeping every entry in that one item
 * would make a replay a single GetItem, but a write costs a write unit per KB
 * of the whole item (the larger of before and after): with 1000 chat frames
 * of ~200 bytes in it, every message costs ~180 write units instead of ~5
 * (bench/aws-log.ts), and ReturnValues sends the item back each time. So
 * the head stays small: the writer whose append takes `recent` past chunkBytes (or CHUNK_ENTRIES
 * entries) copies it into a chunk item (a PutItem) and cuts the copied
 * entries from the head (an UpdateItem conditional on `first`, so of racing
 * writers one cuts; a chunk is overwritten only by a longer copy of
 * itself), again while others' appends keep the head at its bound. Appends
 * go on meanwhile up to twice the bound; past that they are refused, and a
 * refused writer waits about as long as a copy takes, then copies itself:
 * a writer that died before its copy costs the next one a wait. An entry
 * over MAX_ENTRY_BYTES is kept as a stub (numbered, no frame): a replay
 * across it is a gap. So the head never nears the 400 KB item limit.
 *
 * The bound by count: `chunks` forgets a chunk once the entries after it are
 * at least maxEntries. By age: a read treats an entry older than maxAgeMs as
 * gone, and a chunk's expiresAt is its last entry's time plus maxAgeMs, so
 * TTL deletes it once none of it could be replayed. The head expires a day
 * after its last append, longer than any connection or resume token; a seq
 * past a restarted head's is read as a gap, never as "nothing new".
 *
 * Requests per operation:
 *   append  1 UpdateItem (ReturnValues ALL_NEW: the head, under 2 × chunkBytes
 *           and one entry).
 *           The append that fills the head: + 1 PutItem (the chunk) + 1
 *           UpdateItem (the cut), once every ~chunkBytes of frames (about 30
 *           chat messages at the default 8 KiB). Refused by a full head: + 1
 *           UpdateItem after the wait; refused again, + 1 GetItem where the
 *           store cannot return the item with the failure (dynalite), the
 *           copy, and the append again.
 *   latest  1 GetItem (consistent).
 *   read    1 GetItem (consistent) when `after` is within the head; else
 *           + 1 BatchGetItem (consistent) per 100 chunks.
 */
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { CloudsocketError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/log.js';
import type { LogEntry, LogEntryInput, LogRead, RoomLog, RoomLogLimits } from '../shared/room-log.js';
import { batchGetItems, conditionally, isConditionFailure, n, num, s, str, type Item } from './dynamodb-items.js';
import { PARTITION_KEY, TTL_ATTRIBUTE } from './dynamodb-registry.js';

/** Bytes of entries the head gathers before they move to a chunk. */
export const DEFAULT_CHUNK_BYTES = 8 * 1024;
/** Entries the head gathers before they move to a chunk, however small; also keeps the cut's REMOVE list short. */
export const CHUNK_ENTRIES = 100;
/** A larger frame is logged as a stub; API Gateway posts nothing over 128 KiB anyway. */
export const MAX_ENTRY_BYTES = 200 * 1024;
/** How long a head outlives its last append. */
export const HEAD_TTL_SECONDS = 24 * 60 * 60;
/** Chunks a head names at most, so its list stays a few KB even when every chunk is one large frame. */
const MAX_CHUNKS = 4000;
/** Attribute names and the map around each entry, rounded up: DynamoDB counts fewer. */
const ENTRY_OVERHEAD_BYTES = 32;
/** Chunk items outlive their last entry's age by this much, for clocks that disagree a little. */
const CHUNK_TTL_MARGIN_SECONDS = 60;
/** Refusals of one append by a full head before giving up: each is followed by a copy. */
const MAX_APPEND_ATTEMPTS = 10;
/** About how long a copy takes (a PutItem and an UpdateItem): a refused append waits that long once before copying itself. */
const REFUSED_WAIT_MS = 20;

export interface DynamoDbRoomLogOptions {
  client: DynamoDBClient;
  /** The registry's table. */
  tableName: string;
  limits: RoomLogLimits;
  /** See DEFAULT_CHUNK_BYTES; at most 64 KiB, so the head stays far from the item limit. */
  chunkBytes?: number;
  logger?: Logger;
  /** Epoch ms; decides expiry. */
  clock?: () => number;
}

/** An append refused by a full head more often than copies could be made. */
export class RoomLogContentionError extends CloudsocketError {
  constructor(room: string) {
    super('room_log_contention', `the log of room ${room} is being written concurrently; gave up`);
  }
}

interface Head {
  seq: number;
  first: number;
  /** As stored, so a copy writes exactly what was appended. */
  recent: AttributeValue[];
  chunks: number[];
}

export class DynamoDbRoomLog implements RoomLog {
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  private readonly limits: RoomLogLimits;
  private readonly chunkBytes: number;
  private readonly logger: Logger;
  private readonly clock: () => number;

  constructor(options: DynamoDbRoomLogOptions) {
    if (!(options.limits.maxEntries >= 1)) throw new RangeError('maxEntries must be at least 1');
    if (!(options.limits.maxAgeMs > 0)) throw new RangeError('maxAgeMs must be more than 0');
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!(chunkBytes >= 1024 && chunkBytes <= 64 * 1024)) throw new RangeError('chunkBytes must be 1 KiB to 64 KiB');
    this.client = options.client;
    this.tableName = options.tableName;
    this.limits = options.limits;
    this.chunkBytes = chunkBytes;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? Date.now;
  }

  async append(room: string, input: LogEntryInput): Promise<number> {
    const entry = encodeEntry(input);
    for (let attempt = 0; attempt < MAX_APPEND_ATTEMPTS; attempt++) {
      let head: Head;
      try {
        head = await this.appendToHead(room, entry);
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        // Full: the writer that filled it is most likely copying it now. Give it a moment first; then copy it here.
        if (attempt === 0) {
          await new Promise((resolve) => setTimeout(resolve, REFUSED_WAIT_MS * (0.5 + Math.random())));
          continue;
        }
        const old = error.Item ?? (await this.getHead(room));
        await this.moveToChunk(room, old && toHead(old));
        continue;
      }
      if (this.filledBy(head, entry)) {
        // The entry is stored; a failed copy is made by whoever finds the head full.
        await this.moveToChunk(room, head).catch((error: unknown) => this.logger.warn('room_log_copy_failed', { room, error }));
      }
      return head.seq;
    }
    throw new RoomLogContentionError(room);
  }

  async read(room: string, after: number, now: number): Promise<LogRead> {
    const item = await this.getHead(room);
    const head = item ? toHead(item) : { seq: 0, first: 1, recent: [], chunks: [] };
    const latest = head.seq;
    const gap: LogRead = { ok: false, latest };
    // Past the room's latest: the head was lost (expired) and numbering started again.
    if (!(Number.isSafeInteger(after) && after >= 0) || after > latest) return gap;
    if (after === latest) return { ok: true, entries: [], latest };

    const from = after + 1;
    const entries: LogEntry[] = [];
    if (from < head.first) {
      const older = await this.readChunks(room, head, from);
      if (!older) return gap;
      entries.push(...older);
    }
    head.recent.forEach((value, index) => {
      if (head.first + index >= from) entries.push(decodeEntry(value, head.first + index));
    });
    const firstEntry = entries[0];
    if (!firstEntry || firstEntry.seq !== from || firstEntry.at < now - this.limits.maxAgeMs) return gap;
    // A stub has no frame to replay (a frame is never empty: it is a JSON object's text).
    if (entries.some((entry) => entry.data === '')) return gap;
    return { ok: true, entries, latest };
  }

  async latest(room: string): Promise<number> {
    const { Item } = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: headKey(room), ConsistentRead: true, ProjectionExpression: '#seq', ExpressionAttributeNames: { '#seq': 'seq' } }),
    );
    return num(Item?.seq);
  }

  /** Whether this append is the one that took the head to its bound: of the writers past it, only that one copies. */
  private filledBy(head: Head, entry: AttributeValue): boolean {
    const after = sizeOf(head.recent);
    const before = after - sizeOf([entry]);
    return (before < this.chunkBytes && after >= this.chunkBytes) || head.recent.length === CHUNK_ENTRIES;
  }

  private async appendToHead(room: string, entry: AttributeValue): Promise<Head> {
    const bytes = sizeOf([entry]);
    const { Attributes } = await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: headKey(room),
        UpdateExpression:
          'SET #seq = if_not_exists(#seq, :zero) + :one, #first = if_not_exists(#first, :one), ' +
          '#recent = list_append(if_not_exists(#recent, :none), :entry), #bytes = if_not_exists(#bytes, :zero) + :size, #expiresAt = :expiresAt',
        // Twice the bound: room for appends while a copy is under way. An empty head takes any entry.
        ConditionExpression: 'attribute_not_exists(#recent) OR size(#recent) = :zero OR (#bytes <= :spare AND size(#recent) < :maxEntries)',
        ExpressionAttributeNames: { '#seq': 'seq', '#first': 'first', '#recent': 'recent', '#bytes': 'bytes', '#expiresAt': TTL_ATTRIBUTE },
        ExpressionAttributeValues: {
          ':zero': n(0),
          ':one': n(1),
          ':none': { L: [] },
          ':entry': { L: [entry] },
          ':size': n(bytes),
          ':spare': n(2 * this.chunkBytes - bytes),
          ':maxEntries': n(2 * CHUNK_ENTRIES),
          ':expiresAt': n(this.nowSeconds() + HEAD_TTL_SECONDS),
        },
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    return toHead(Attributes!);
  }

  /**
   * Copies the head's entries into the chunk item that starts at its `first`,
   * then cuts them from the head, as long as the head it leaves is still at
   * its bound (others appended meanwhile): one writer drains it, and appends
   * are refused only when they outpace it. The cut is conditional on
   * `first`: when writers race, one cuts and the others find `first` moved on.
   */
  private async moveToChunk(room: string, head: Head | undefined): Promise<void> {
    for (let round = 0; head && round < MAX_APPEND_ATTEMPTS; round++) {
      if (head.recent.length === 0) return;
      await this.copyToChunk(room, head);
      head = await this.cut(room, head);
      if (head && !this.atBound(head)) return;
    }
  }

  private async copyToChunk(room: string, head: Head): Promise<void> {
    const count = head.recent.length;
    const lastAt = num(head.recent[count - 1]!.M!.a);
    await conditionally(
      this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: {
            ...chunkKey(room, head.first),
            first: n(head.first),
            entries: { L: head.recent },
            [TTL_ATTRIBUTE]: n(Math.ceil((lastAt + this.limits.maxAgeMs) / 1000) + CHUNK_TTL_MARGIN_SECONDS),
          },
          // A racing writer's copy may hold more of the same entries; an expired one is a previous life of the room.
          ConditionExpression: 'attribute_not_exists(#pk) OR size(#entries) < :count OR #expiresAt <= :now',
          ExpressionAttributeNames: { '#pk': PARTITION_KEY, '#entries': 'entries', '#expiresAt': TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':count': n(count), ':now': n(this.nowSeconds()) },
        }),
      ),
    );
  }

  /** Removes the copied entries from the head; the head after the cut, or undefined when another writer cut first. */
  private async cut(room: string, head: Head): Promise<Head | undefined> {
    const count = head.recent.length;
    const next = head.first + count;
    const chunks = [...head.chunks, head.first];
    while (chunks.length > MAX_CHUNKS || (chunks.length > 1 && next - chunks[1]! >= this.limits.maxEntries)) chunks.shift();
    // Highest index first: the indexes then name the same elements however the store applies them.
    const removed = Array.from({ length: count }, (_, i) => `#recent[${count - 1 - i}]`).join(', ');
    try {
      const { Attributes } = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: headKey(room),
          UpdateExpression: `SET #first = :next, #bytes = #bytes - :size, #chunks = :chunks REMOVE ${removed}`,
          ConditionExpression: '#first = :first',
          ExpressionAttributeNames: { '#first': 'first', '#bytes': 'bytes', '#chunks': 'chunks', '#recent': 'recent' },
          ExpressionAttributeValues: { ':next': n(next), ':size': n(sizeOf(head.recent)), ':chunks': { L: chunks.map(n) }, ':first': n(head.first) },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return toHead(Attributes!);
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  private atBound(head: Head): boolean {
    return sizeOf(head.recent) >= this.chunkBytes || head.recent.length >= CHUNK_ENTRIES;
  }

  /** The entries from `from` up to the head's `first`, or undefined when the chunks no longer reach back that far. */
  private async readChunks(room: string, head: Head, from: number): Promise<LogEntry[] | undefined> {
    let start = -1;
    head.chunks.forEach((first, index) => {
      if (first <= from) start = index;
    });
    if (start < 0) return undefined;
    const firsts = head.chunks.slice(start);
    const items = await this.batchGet(firsts.map((first) => chunkKey(room, first)));
    const entries: LogEntry[] = [];
    for (const [index, first] of firsts.entries()) {
      const item = items.get(first);
      const end = firsts[index + 1] ?? head.first;
      const stored = item?.entries?.L ?? [];
      if (stored.length < end - first) return undefined;
      for (let seq = Math.max(first, from); seq < end; seq++) entries.push(decodeEntry(stored[seq - first]!, seq));
    }
    return entries;
  }

  /** Chunk items by their `first`. */
  private async batchGet(keys: Item[]): Promise<Map<number, Item>> {
    const items = await batchGetItems(this.client, this.tableName, keys, true);
    return new Map(items.map((item) => [num(item.first), item]));
  }

  private async getHead(room: string): Promise<Item | undefined> {
    const { Item } = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: headKey(room), ConsistentRead: true }));
    return Item;
  }

  private nowSeconds(): number {
    return Math.floor(this.clock() / 1000);
  }
}

function headKey(room: string): Item {
  return { [PARTITION_KEY]: s(`log#${room}`) };
}

function chunkKey(room: string, first: number): Item {
  return { [PARTITION_KEY]: s(`log#${room}#${first}`) };
}

function toHead(item: Item): Head {
  return {
    seq: num(item.seq),
    first: num(item.first),
    recent: item.recent?.L ?? [],
    chunks: (item.chunks?.L ?? []).map(num),
  };
}

function encodeEntry(input: LogEntryInput): AttributeValue {
  const fields: Item = { d: s(input.data), a: n(input.at) };
  if (input.to !== undefined) fields.t = s(input.to);
  if (input.except !== undefined) fields.x = s(input.except);
  if (entryBytes(fields) > MAX_ENTRY_BYTES) return { M: { a: n(input.at) } };
  return { M: fields };
}

function decodeEntry(value: AttributeValue, seq: number): LogEntry {
  const fields = value.M ?? {};
  const entry: LogEntry = { seq, data: str(fields.d), at: num(fields.a) };
  if (fields.t) entry.to = str(fields.t);
  if (fields.x) entry.except = str(fields.x);
  return entry;
}

/** What an entry counts against chunkBytes: its strings' UTF-8 bytes and a fixed overhead, the same on append and cut. */
function entryBytes(fields: Item): number {
  return Buffer.byteLength(str(fields.d)) + Buffer.byteLength(str(fields.t)) + Buffer.byteLength(str(fields.x)) + ENTRY_OVERHEAD_BYTES;
}

function sizeOf(entries: AttributeValue[]): number {
  return entries.reduce((total, entry) => total + entryBytes(entry.M ?? {}), 0);
}
