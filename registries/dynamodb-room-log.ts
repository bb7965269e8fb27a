/**
 * The room log (shared/room-log.ts) of the AWS target, in the registry's
 * table (registries/dynamodb-registry.ts): a ring of ROOM_LOG_SLOTS items per
 * room, each holding a run of consecutive entries.
 *
 * Items (partition key `pk`):
 *   log#{room}#{index}  a slot, index 0 .. slots - 1: `first` (the seq of
 *                       entries[0]), `seq` (the seq of its last entry),
 *                       `bytes` (its entries' size as counted here),
 *                       `entries` (a list; entry i has seq first + i), `room`,
 *                       `expiresAt` (a day after its last write).
 * An entry is a map: d = the frame, a = epoch ms, t = the one member it is for,
 * x = the one member it is not for.
 *
 * Appends go to the slot with the highest `first` (the open slot) while it
 * holds less than chunkBytes (and fewer than CHUNK_ENTRIES entries). One
 * UpdateItem adds one to its `seq` and list_appends the entry together,
 * conditional on the slot still being open with the same `first`, so the
 * entry's seq is that `seq` and needs no second write. The append that finds
 * the open slot full starts the next slot round the ring (a PutItem with
 * `first` one past the full slot's `seq`, conditional on that slot holding
 * older entries or none): it overwrites the oldest run, so nothing is ever
 * copied, and a slot, once full, never changes until it is reused. A
 * writer's view that is out of date makes its condition fail; it goes on
 * from that slot as it is now (DynamoDB returns it with the failure).
 *
 * Which slot is open, the writer learns without a request of its own: slots
 * carry `room`, so the byRoom index lists them beside the room's members, and
 * the registry hands what its room Query saw to `sawSlots` (the index
 * projects `first`, `seq` and `bytes`). A chat message lists its room anyway
 * to fan out, so its append is its only write to the log. That costs every
 * room Query up to ROOM_LOG_SLOTS small extra items, and each append one
 * index write. Indexes are eventually consistent: on AWS, a writer whose
 * Query ran before another's rotation reached the index pays the failed
 * append and a read.
 *
 * Bounds: by count, a read reaches back at most maxEntries; by age, a read
 * treats an entry older than maxAgeMs as gone; by size, the ring holds
 * `slots` runs of about chunkBytes (320 KiB of frames at the defaults), so
 * large frames keep fewer than maxEntries. A slot expires a day after its last
 * write, longer than any connection or resume token; a room quiet that long
 * numbers from 1 again, and a seq past the room's latest is read as a gap,
 * never as "nothing new". An entry over MAX_ENTRY_BYTES is kept as a stub
 * (numbered, no frame): a replay across it is a gap. A slot stays under
 * chunkBytes plus one entry, far from the 400 KB item limit.
 *
 * Requests per operation:
 *   append  1 UpdateItem (ReturnValues UPDATED_NEW: the open slot), or 1
 *           PutItem when it starts the next slot. Without a current view of
 *           the room's slots (no room Query, read or own write within
 *           VIEW_CURRENT_MS: a `private` frame into another room, a room
 *           counted, not listed), + 1 BatchGetItem first. Each failed
 *           condition: the write again, + 1 GetItem where the store cannot
 *           return the item with the failure (dynalite).
 *   latest  1 BatchGetItem (consistent; `first` and `seq`): with a current
 *           view, of the open slot and the next; else of every slot. + 1
 *           (of one slot) per slot started since the view, MAX_WALK at most.
 *   read    1 BatchGetItem (consistent): with a current view, of the slots
 *           that reach back to the seq wanted, the open one and the next;
 *           else of every slot. + 1 per slot started since the view, as above.
 */
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { CloudsocketError } from '../shared/errors.js';
import type { LogEntry, LogEntryInput, LogRead, RoomLog, RoomLogLimits } from '../shared/room-log.js';
import { batchGetItems, isConditionFailure, n, num, s, str, type Item } from './dynamodb-items.js';
import { LOG_KEY_PREFIX, PARTITION_KEY, ROOM_LOG_SLOTS, TTL_ATTRIBUTE, type RoomLogSightings } from './dynamodb-registry.js';

/** Bytes of entries a slot gathers before the next one is started. */
export const DEFAULT_CHUNK_BYTES = 8 * 1024;
/** Entries a slot gathers at most, however small. */
export const CHUNK_ENTRIES = 100;
/** A larger frame is logged as a stub; API Gateway posts nothing over 128 KiB anyway. */
export const MAX_ENTRY_BYTES = 200 * 1024;
/** How long a slot outlives its last write. */
export const SLOT_TTL_SECONDS = 24 * 60 * 60;
/** Attribute names and the map around each entry, rounded up: DynamoDB counts fewer. */
const ENTRY_OVERHEAD_BYTES = 32;
/**
 * Failed conditions of one append before giving up. Each means another
 * writer's append went in first, and a slot takes several appends before it
 * fills, so a writer fails far fewer times than there are writers racing it.
 */
const MAX_APPEND_ATTEMPTS = 50;
/** Rooms whose slots a container remembers; past that the memory starts over, which costs each room one read. */
const MAX_VIEWED_ROOMS = 1000;
/**
 * How long a view counts as current after a room Query, a read or an own
 * write confirmed it. A current view is at most a slot or two behind, which
 * failed conditions walk forward; an older one is read again first.
 */
const VIEW_CURRENT_MS = 1000;
/** Slots started since a current view that a read follows one by one before it reads them all instead. */
const MAX_WALK = 3;

export interface DynamoDbRoomLogOptions {
  client: DynamoDBClient;
  /** The registry's table. */
  tableName: string;
  limits: RoomLogLimits;
  /** See DEFAULT_CHUNK_BYTES; at most 64 KiB, so a slot stays far from the item limit. */
  chunkBytes?: number;
  /** The ring's size, 2 to ROOM_LOG_SLOTS (the default; the registry reads that many extra items per room Query at most). */
  slots?: number;
  /** Epoch ms; decides expiry. */
  clock?: () => number;
}

/** An append whose conditions failed more often than racing writers explain. */
export class RoomLogContentionError extends CloudsocketError {
  constructor(room: string) {
    super('room_log_contention', `the log of room ${room} is being written concurrently; gave up`);
  }
}

/** A slot as a writer last saw it. */
interface SlotState {
  index: number;
  first: number;
  seq: number;
  bytes: number;
}

/** A room's live slots by index, as last seen, and when that was confirmed. Only a guess: conditions decide. */
interface View {
  slots: Map<number, SlotState>;
  confirmedAt: number;
}

export class DynamoDbRoomLog implements RoomLog, RoomLogSightings {
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  private readonly limits: RoomLogLimits;
  private readonly chunkBytes: number;
  private readonly slots: number;
  private readonly clock: () => number;
  private readonly views = new Map<string, View>();

  constructor(options: DynamoDbRoomLogOptions) {
    if (!(options.limits.maxEntries >= 1)) throw new RangeError('maxEntries must be at least 1');
    if (!(options.limits.maxAgeMs > 0)) throw new RangeError('maxAgeMs must be more than 0');
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!(chunkBytes >= 1024 && chunkBytes <= 64 * 1024)) throw new RangeError('chunkBytes must be 1 KiB to 64 KiB');
    const slots = options.slots ?? ROOM_LOG_SLOTS;
    if (!(Number.isInteger(slots) && slots >= 2 && slots <= ROOM_LOG_SLOTS)) throw new RangeError(`slots must be 2 to ${ROOM_LOG_SLOTS}`);
    this.client = options.client;
    this.tableName = options.tableName;
    this.limits = options.limits;
    this.chunkBytes = chunkBytes;
    this.slots = slots;
    this.clock = options.clock ?? Date.now;
  }

  /**
   * What the registry's Query of `room` on the byRoom index found of this
   * log (its slot items, projected); `complete`: the Query read the whole
   * room, so these are all its slots and the view is current.
   */
  sawSlots(room: string, items: readonly Item[], complete: boolean): void {
    const view = this.viewOf(room);
    for (const item of items) this.note(view, item);
    if (complete) view.confirmedAt = this.clock();
  }

  async append(room: string, input: LogEntryInput): Promise<number> {
    const entry = encodeEntry(input);
    const size = sizeOf([entry]);
    const known = this.views.get(room);
    const view = known && this.isCurrent(known) ? known : await this.readView(room);
    for (let attempt = 0; attempt < MAX_APPEND_ATTEMPTS; attempt++) {
      const open = openSlotOf(view);
      const appending = open !== undefined && !this.isFull(open);
      const index = appending ? open.index : open ? (open.index + 1) % this.slots : 0;
      try {
        const seq = appending ? await this.appendTo(room, view, open, entry, size) : await this.startSlot(room, view, index, open, entry, size);
        view.confirmedAt = this.clock();
        return seq;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        // Another writer moved on first: go on from that slot as it is now. DynamoDB hands it back; other stores cost a read.
        this.settle(view, index, error.Item ?? (await this.getSlot(room, index)));
      }
    }
    throw new RoomLogContentionError(room);
  }

  async read(room: string, after: number, now: number): Promise<LogRead> {
    const read = this.readFrom(await this.slotsFrom(room, after + 1, false), after, now);
    // A view can be wrong about which slot holds `after + 1`; only all of them tell a gap for sure.
    return read.ok || !this.isCurrent(this.viewOf(room)) ? read : this.readFrom(await this.readSlots(room, false), after, now);
  }

  private readFrom(found: Item[], after: number, now: number): LogRead {
    const slots = [...found].sort((a, b) => num(a.first) - num(b.first));
    const latest = slots.reduce((highest, item) => Math.max(highest, num(item.seq)), 0);
    const gap: LogRead = { ok: false, latest };
    // Past the room's latest: its slots expired and numbering started again.
    if (!(Number.isSafeInteger(after) && after >= 0) || after > latest) return gap;
    if (after === latest) return { ok: true, entries: [], latest };

    const from = after + 1;
    if (from <= latest - this.limits.maxEntries) return gap;
    const entries: LogEntry[] = [];
    for (const item of slots) {
      const first = num(item.first);
      const stored = item.entries?.L ?? [];
      for (let offset = Math.max(0, from - first); offset < stored.length; offset++) {
        const seq = first + offset;
        // A run that overlaps the one before is a slot started over while this read was under way.
        if (seq !== (entries.at(-1)?.seq ?? from - 1) + 1) return gap;
        entries.push(decodeEntry(stored[offset]!, seq));
      }
    }
    const firstEntry = entries[0];
    if (!firstEntry || firstEntry.seq !== from || entries.at(-1)!.seq !== latest || firstEntry.at < now - this.limits.maxAgeMs) return gap;
    // A stub has no frame to replay (a frame is never empty: it is a JSON object's text).
    if (entries.some((entry) => entry.data === '')) return gap;
    return { ok: true, entries, latest };
  }

  async latest(room: string): Promise<number> {
    const slots = await this.slotsFrom(room, Number.MAX_SAFE_INTEGER, true);
    return slots.reduce((highest, item) => Math.max(highest, num(item.seq)), 0);
  }

  /**
   * The live slots that hold seq `from` and after. With a current view, only
   * those it says reach `from`, the open one and the one after it (a read
   * unit per 4 KB of each, however little of it is wanted), then each next
   * slot while it holds a newer run than the one before: runs started since
   * the view. Without a current view, or when the view is far behind, all.
   */
  private async slotsFrom(room: string, from: number, briefly: boolean): Promise<Item[]> {
    const view = this.views.get(room);
    const open = view && this.isCurrent(view) ? openSlotOf(view) : undefined;
    if (!view || !open) return this.readSlots(room, briefly);
    const indexes = new Set([...view.slots.values()].filter((slot) => slot.seq >= from).map((slot) => slot.index));
    indexes.add(open.index);
    indexes.add((open.index + 1) % this.slots);
    const found = new Map((await this.readSlotsAt(room, [...indexes], briefly)).map((item) => [this.indexOf(item), item]));
    let newest = found.get(open.index);
    for (let step = 0; newest && step < MAX_WALK; step++) {
      const nextIndex = (this.indexOf(newest) + 1) % this.slots;
      let next = found.get(nextIndex);
      if (!next && !indexes.has(nextIndex)) {
        indexes.add(nextIndex);
        next = (await this.readSlotsAt(room, [nextIndex], briefly))[0];
        if (next) found.set(nextIndex, next);
      }
      if (!next || num(next.first) !== num(newest.seq) + 1) return [...found.values()];
      newest = next;
    }
    // The open slot is gone (expired, deleted), or the ring has moved on a long way since the view.
    return this.readSlots(room, briefly);
  }

  private isCurrent(view: View): boolean {
    return this.clock() - view.confirmedAt <= VIEW_CURRENT_MS;
  }

  private isFull(slot: SlotState): boolean {
    return slot.bytes >= this.chunkBytes || slot.seq - slot.first + 1 >= CHUNK_ENTRIES;
  }

  /** Appends to the open slot, as long as it is still open and still holds the run that starts at `first`. */
  private async appendTo(room: string, view: View, open: SlotState, entry: AttributeValue, size: number): Promise<number> {
    const { Attributes } = await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: slotKey(room, open.index),
        UpdateExpression: 'SET #seq = #seq + :one, #entries = list_append(#entries, :entry), #bytes = #bytes + :size, #expiresAt = :expiresAt',
        ConditionExpression: '#first = :first AND #bytes < :chunkBytes AND #seq < :lastSeq AND #expiresAt > :now',
        ExpressionAttributeNames: { '#seq': 'seq', '#first': 'first', '#entries': 'entries', '#bytes': 'bytes', '#expiresAt': TTL_ATTRIBUTE },
        ExpressionAttributeValues: {
          ':one': n(1),
          ':entry': { L: [entry] },
          ':size': n(size),
          ':first': n(open.first),
          ':chunkBytes': n(this.chunkBytes),
          ':lastSeq': n(open.first + CHUNK_ENTRIES - 1),
          ':expiresAt': n(this.nowSeconds() + SLOT_TTL_SECONDS),
          ':now': n(this.nowSeconds()),
        },
        ReturnValues: 'UPDATED_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    const seq = num(Attributes?.seq);
    mergeSlot(view, { index: open.index, first: open.first, seq, bytes: num(Attributes?.bytes) });
    return seq;
  }

  /**
   * Starts slot `index`, the one after the full one (or slot 0 in a room with
   * none), with this entry. It may be overwritten only while it holds an older
   * run than the one it is to start (or an expired one): of writers racing to
   * start it, one does and the others find it taken.
   */
  private async startSlot(room: string, view: View, index: number, full: SlotState | undefined, entry: AttributeValue, size: number): Promise<number> {
    const first = full ? full.seq + 1 : 1;
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: {
          ...slotKey(room, index),
          room: s(room),
          first: n(first),
          seq: n(first),
          bytes: n(size),
          entries: { L: [entry] },
          [TTL_ATTRIBUTE]: n(this.nowSeconds() + SLOT_TTL_SECONDS),
        },
        ConditionExpression: 'attribute_not_exists(#pk) OR #first < :first OR #expiresAt <= :now',
        ExpressionAttributeNames: { '#pk': PARTITION_KEY, '#first': 'first', '#expiresAt': TTL_ATTRIBUTE },
        ExpressionAttributeValues: { ':first': n(first), ':now': n(this.nowSeconds()) },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    mergeSlot(view, { index, first, seq: first, bytes: size });
    return first;
  }

  /** The room's live slots as they are now, and the writer's view made from them. */
  private async readView(room: string): Promise<View> {
    const items = await this.readSlots(room, true);
    this.views.delete(room);
    const view = this.viewOf(room);
    for (const item of items) this.note(view, item);
    view.confirmedAt = this.clock();
    return view;
  }

  private async getSlot(room: string, index: number): Promise<Item | undefined> {
    const { Item } = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: slotKey(room, index), ConsistentRead: true }));
    return Item;
  }

  /** What a failed condition found in slot `index`: the slot as it is, or none (deleted, or expired). */
  private settle(view: View, index: number, item: Item | undefined): void {
    if (item && num(item[TTL_ATTRIBUTE]) > this.nowSeconds()) view.slots.set(index, { index, first: num(item.first), seq: num(item.seq), bytes: num(item.bytes) });
    else view.slots.delete(index);
  }

  /** Every live slot of the room (consistent reads); `briefly`: without their entries. */
  private readSlots(room: string, briefly: boolean): Promise<Item[]> {
    return this.readSlotsAt(
      room,
      Array.from({ length: this.slots }, (_, index) => index),
      briefly,
    );
  }

  /** The live ones of these slots (consistent reads); `briefly`: without their entries. */
  private async readSlotsAt(room: string, indexes: readonly number[], briefly: boolean): Promise<Item[]> {
    const keys = indexes.map((index) => slotKey(room, index));
    const projection = briefly
      ? { expression: '#pk, #first, #seq, #bytes, #expiresAt', names: { '#pk': PARTITION_KEY, '#first': 'first', '#seq': 'seq', '#bytes': 'bytes', '#expiresAt': TTL_ATTRIBUTE } }
      : undefined;
    const items = await batchGetItems(this.client, this.tableName, keys, true, projection);
    const now = this.nowSeconds();
    return items.filter((item) => num(item[TTL_ATTRIBUTE]) > now);
  }

  private viewOf(room: string): View {
    let view = this.views.get(room);
    if (!view) {
      if (this.views.size >= MAX_VIEWED_ROOMS) this.views.clear();
      view = { slots: new Map(), confirmedAt: -Infinity };
      this.views.set(room, view);
    }
    return view;
  }

  private note(view: View, item: Item): void {
    const index = this.indexOf(item);
    if (index >= 0) mergeSlot(view, { index, first: num(item.first), seq: num(item.seq), bytes: num(item.bytes) });
  }

  /** A slot item's place in the ring; -1 for an item that is not one of this log's slots. */
  private indexOf(item: Item): number {
    const key = str(item[PARTITION_KEY]);
    const index = Number(key.slice(key.lastIndexOf('#') + 1));
    return key.startsWith(LOG_KEY_PREFIX) && Number.isInteger(index) && index >= 0 && index < this.slots ? index : -1;
  }

  private nowSeconds(): number {
    return Math.floor(this.clock() / 1000);
  }
}

/** A slot's newer state wins: a later run (higher `first`), or more of the same run. */
function mergeSlot(view: View, slot: SlotState): void {
  const known = view.slots.get(slot.index);
  if (!known || slot.first > known.first || (slot.first === known.first && slot.seq > known.seq)) view.slots.set(slot.index, slot);
}

/** The slot holding the newest run: the one appends go to. */
function openSlotOf(view: View): SlotState | undefined {
  let open: SlotState | undefined;
  for (const slot of view.slots.values()) if (!open || slot.first > open.first) open = slot;
  return open;
}

export function slotKey(room: string, index: number): Item {
  return { [PARTITION_KEY]: s(`${LOG_KEY_PREFIX}${room}#${index}`) };
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

/** What an entry counts against chunkBytes: its strings' UTF-8 bytes and a fixed overhead. */
function entryBytes(fields: Item): number {
  return Buffer.byteLength(str(fields.d)) + Buffer.byteLength(str(fields.t)) + Buffer.byteLength(str(fields.x)) + ENTRY_OVERHEAD_BYTES;
}

function sizeOf(entries: AttributeValue[]): number {
  return entries.reduce((total, entry) => total + entryBytes(entry.M ?? {}), 0);
}
