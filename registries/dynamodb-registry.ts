/**
 * The registry of the AWS target: one DynamoDB table shared by every Lambda
 * container. It never Scans; rooms and clientIds are read through two sparse
 * global secondary indexes, and every write is a single-item conditional
 * write, because DynamoDB Local-style stores (dynalite) have no transactions.
 *
 * Items (partition key `pk`, see infra/aws/template.yaml ConnectionsTable):
 *   conn#{connectionId}  the ConnectionRecord (`owner` and `session` when it
 *                        has them); carries `room` and `clientId`, so it
 *                        appears in both indexes (byRoom, byClientId).
 *   client#{nameKey}     the claim that makes a clientId unique, and with it
 *                        every name that looks like it (shared/names.ts):
 *                        `owner` is the connectionId holding it. It has
 *                        neither `room` nor `clientId`, so the indexes never
 *                        see it. One claim is enough, as equal clientIds have
 *                        equal keys; for most names the key is the clientId.
 *   log#{room}#{index}   a slot of the room's log (dynamodb-room-log.ts). It
 *                        carries `room`, so a room Query meets it beside the
 *                        members: the log is told what it saw (roomLog), and
 *                        no member list or count includes it.
 * The indexes project only *_INDEX_ATTRIBUTES, which change rarely: every frame
 * writes `lastActiveAt`, `tat` and `strikes` (touch), and were those in an
 * index, each touch would write the index too (3 write units, not 1). So a
 * Query on an index reads ids (and expiry), and full records come from the
 * table.
 * Both carry `expiresAt` (epoch seconds) for DynamoDB's TTL, so the entries of
 * a connection whose `$disconnect` never came disappear by themselves. TTL
 * deletes lazily (up to days late), so every read also ignores expired items.
 *
 * Requests per operation (the common case first):
 *   add            2 writes (claim Put, connection Put); a taken clientId: 1 write.
 *                  A connectionId that already exists: 3 (the claim is released).
 *   get            1 GetItem.
 *   markGreeted    1 UpdateItem.
 *   findByClientId 1 Query on byClientId, then 1 GetItem (consistent) of the
 *                  connection it names (clientIds are unique, so one).
 *   listRoomIds    1 Query on byRoom per 1 MB page.
 *   listRoom       the same, then 1 BatchGetItem per 100 members.
 *   countRoom      1 Query (Select COUNT) per 1 MB page.
 *   countRoomAndList  a room of at most listUpTo: 1 Query; a larger one: 1
 *                  when that Query (listUpTo + 1 + ROOM_LOG_SLOTS items, the
 *                  log's slots among them) reads it whole, else 2 (then a COUNT
 *                  of the rest) the first time, then 1 (a COUNT) while it
 *                  stays larger.
 *   moveToRoom     1 UpdateItem.
 *   touch          1 UpdateItem when the bucket has room to spare (tat <= now);
 *                  inside a burst, 1 more UpdateItem (plus 1 GetItem where the
 *                  store cannot return the old item with the failed condition);
 *                  once per ttl/2 of activity, 2 more writes refresh expiresAt.
 *   replace        3 writes (claim Update from the stale connectionId to the new
 *                  one, connection Put, stale connection Delete); lost to another
 *                  replace, or the stale connection gone: 1. Stale connection
 *                  removed halfway (its claim still there): 2 more undo it.
 *   remove         2 writes (connection Delete, claim Delete); already gone: 1.
 *   listIdle       none: see the method.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type QueryCommandInput,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { CloudsocketError } from '../shared/errors.js';
import type { JsonObject } from '../shared/protocol.js';
import { judgingTime, type RateLimit } from '../shared/rate-limit.js';
import type { ConnectionRecord, ConnectionRegistry, TouchResult } from '../shared/registry.js';
import { batchGetItems, conditionally, isConditionFailure, n, num, s, str, type Item } from './dynamodb-items.js';

/** Names the template's ConnectionsTable must use; test/template.test.ts holds the two together. */
export const PARTITION_KEY = 'pk';
export const ROOM_INDEX = 'byRoom';
export const CLIENT_ID_INDEX = 'byClientId';
export const TTL_ATTRIBUTE = 'expiresAt';
/** How the registry's own items' keys begin; the room log and room state share the table under other prefixes. */
export const CONNECTION_KEY_PREFIX = 'conn#';
export const CLAIM_KEY_PREFIX = 'client#';
/** The room log's slots (registries/dynamodb-room-log.ts): they carry `room`, so byRoom lists them beside the members. */
export const LOG_KEY_PREFIX = 'log#';
/** Slots a room's log has at most: a room Query reads that many items more than the room's members, at most. */
export const ROOM_LOG_SLOTS = 40;
/** What the log learns from a room Query: the slot items it found, with the attributes the index projects. */
export interface RoomLogSightings {
  /** `complete`: the Query read the whole room, so `items` are all its slots. */
  sawSlots(room: string, items: readonly Item[], complete: boolean): void;
}
/**
 * The non-key attributes the indexes project (the template's INCLUDE lists;
 * test/template.test.ts holds them together): the id a Query returns and the
 * expiry its filter reads; byRoom also where a room's log stands (its
 * slots' `first`, `seq` and `bytes`), so a broadcast learns that from the
 * Query it makes anyway.
 */
export const CLIENT_ID_INDEX_ATTRIBUTES = ['connectionId', TTL_ATTRIBUTE] as const;
export const ROOM_INDEX_ATTRIBUTES = [...CLIENT_ID_INDEX_ATTRIBUTES, 'first', 'seq', 'bytes'] as const;

/** API Gateway closes every connection after 2 hours, so no entry needs to outlive that. */
export const DEFAULT_CONNECTION_TTL_SECONDS = 7200;

export interface DynamoDbRegistryOptions {
  client: DynamoDBClient;
  tableName: string;
  /** How long an entry outlives its last refresh; at least twice API Gateway's 10-minute idle timeout. */
  ttlSeconds: number;
  /** Epoch ms; decides what has expired. */
  clock?: () => number;
  /** The room log in the same table, told what each room Query saw of its slots. */
  roomLog?: RoomLogSightings;
}

/** A conditional write lost to concurrent writers more times than is plausible. */
export class RegistryContentionError extends CloudsocketError {
  constructor(connectionId: string) {
    super('registry_contention', `connection ${connectionId} is being updated concurrently; gave up`);
  }
}

/** Concurrent frames of one connection race only on its rate-limit state; a few rounds settle it. */
const MAX_TOUCH_ATTEMPTS = 10;

/** Rooms remembered as large; past that many the memory starts over, which costs each one Query once. */
const MAX_LARGE_ROOMS = 1000;

export class DynamoDbRegistry implements ConnectionRegistry {
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  private readonly ttlSeconds: number;
  private readonly roomLog: RoomLogSightings | undefined;
  private readonly clock: () => number;
  /**
   * Rooms the last census found larger than what presence lists: theirs
   * starts with a COUNT, one Query while they stay large. Only a guess of
   * which Query to send first; the answer is always read from the table.
   */
  private readonly largeRooms = new Set<string>();

  constructor(options: DynamoDbRegistryOptions) {
    if (!(options.ttlSeconds > 0)) throw new RangeError('ttlSeconds must be more than 0');
    this.client = options.client;
    this.tableName = options.tableName;
    this.ttlSeconds = options.ttlSeconds;
    this.clock = options.clock ?? Date.now;
    this.roomLog = options.roomLog;
  }

  /**
   * Claims the nameKey first, then stores the connection. Without
   * transactions the two writes can be interleaved with other connects, so
   * each is conditional and a failed second write gives the claim back.
   */
  async add(record: ConnectionRecord): Promise<boolean> {
    const nowSeconds = this.nowSeconds();
    const expiresAt = nowSeconds + this.ttlSeconds;
    const claimed = await conditionally(
      this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: { [PARTITION_KEY]: s(claimKey(record.nameKey)), owner: s(record.connectionId), [TTL_ATTRIBUTE]: n(expiresAt) },
          ConditionExpression: 'attribute_not_exists(#pk) OR #expiresAt <= :now',
          ExpressionAttributeNames: { '#pk': PARTITION_KEY, '#expiresAt': TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':now': n(nowSeconds) },
        }),
      ),
    );
    if (!claimed) return false;
    return this.putConnection(record, expiresAt, nowSeconds, () => this.releaseClaim(record.nameKey, record.connectionId));
  }

  /**
   * Moves the claim from the stale connection to the new one (the one write
   * racing replaces contend for: exactly one moves it), stores the new
   * record, then deletes the stale one. For a moment between the last two
   * the room lists both; never neither. If the stale connection turns out to
   * be gone already (its `$disconnect` ran meanwhile), everything is undone,
   * since its room was told it left.
   */
  async replace(record: ConnectionRecord, staleConnectionId: string): Promise<ConnectionRecord | undefined> {
    const nowSeconds = this.nowSeconds();
    const expiresAt = nowSeconds + this.ttlSeconds;
    const moved = await conditionally(
      this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { [PARTITION_KEY]: s(claimKey(record.nameKey)) },
          UpdateExpression: 'SET #owner = :owner, #expiresAt = :expiresAt',
          ConditionExpression: '#owner = :stale AND #expiresAt > :now',
          ExpressionAttributeNames: { '#owner': 'owner', '#expiresAt': TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':owner': s(record.connectionId), ':stale': s(staleConnectionId), ':expiresAt': n(expiresAt), ':now': n(nowSeconds) },
        }),
      ),
    );
    if (!moved) return undefined;

    const giveClaimBack = () => this.moveClaim(record.nameKey, record.connectionId, staleConnectionId);
    if (!(await this.putConnection(record, expiresAt, nowSeconds, giveClaimBack))) return undefined;

    const { Attributes } = await this.client.send(
      new DeleteItemCommand({ TableName: this.tableName, Key: connectionKey(staleConnectionId), ReturnValues: 'ALL_OLD' }),
    );
    if (Attributes && this.isLive(Attributes)) return toRecord(Attributes);
    await this.client.send(new DeleteItemCommand({ TableName: this.tableName, Key: connectionKey(record.connectionId) }));
    await this.releaseClaim(record.nameKey, record.connectionId);
    return undefined;
  }

  async get(connectionId: string): Promise<ConnectionRecord | undefined> {
    const { Item } = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: connectionKey(connectionId), ConsistentRead: true }),
    );
    return Item && this.isLive(Item) ? toRecord(Item) : undefined;
  }

  async findByClientId(clientId: string): Promise<ConnectionRecord | undefined> {
    const items = await this.queryLive({
      IndexName: CLIENT_ID_INDEX,
      KeyConditionExpression: '#clientId = :key',
      ProjectionExpression: '#connectionId',
      ExpressionAttributeNames: { '#clientId': 'clientId', '#connectionId': 'connectionId' },
      ExpressionAttributeValues: { ':key': s(clientId) },
    });
    // The index lags the table a little; the item itself says whether the connection is still there and still this clientId's.
    for (const item of items) {
      const record = await this.get(str(item.connectionId));
      if (record?.clientId === clientId) return record;
    }
    return undefined;
  }

  async listRoom(room: string): Promise<ConnectionRecord[]> {
    const ids = await this.listRoomIds(room);
    // Eventually consistent reads, half the price, as the index the ids come from is eventually consistent anyway; those
    // that left or moved meanwhile are dropped.
    const items = await batchGetItems(this.client, this.tableName, ids.map(connectionKey), false);
    const records = new Map(items.filter((item) => this.isLive(item) && str(item.room) === room).map((item) => [str(item.connectionId), toRecord(item)]));
    return ids.flatMap((id) => records.get(id) ?? []);
  }

  /** Only the ids, all a broadcast needs, and all the index holds besides the expiry. */
  async listRoomIds(room: string): Promise<string[]> {
    return this.membersOf(room, await this.queryLive(roomIdsQuery(room)), true);
  }

  /** The member ids among a room Query's items; the log's slots among them go to the log (`complete`: the whole room was read). */
  private membersOf(room: string, items: readonly Item[], complete: boolean): string[] {
    const ids: string[] = [];
    const slots: Item[] = [];
    for (const item of items) {
      if (item.connectionId) ids.push(str(item.connectionId));
      else if (str(item[PARTITION_KEY]).startsWith(LOG_KEY_PREFIX)) slots.push(item);
    }
    // A part of the room without slots says nothing of the log; the whole room without them says it has none.
    if (this.roomLog && (complete || slots.length > 0)) this.roomLog.sawSlots(room, slots, complete);
    return ids;
  }

  async countRoom(room: string): Promise<number> {
    return this.countLive(room, undefined);
  }

  /**
   * A small room in one Query (its ids, which are also its count); a larger
   * one reads no more items than counting it would, its first listUpTo + 1
   * as ids and the rest counted from where they stopped. A room found large
   * is counted outright next time, and listed only if it has shrunk.
   */
  async countRoomAndList(room: string, listUpTo: number): Promise<{ count: number; connectionIds?: string[] }> {
    if (this.largeRooms.has(room)) {
      const count = await this.countLive(room, undefined);
      if (count > listUpTo) return { count };
      this.largeRooms.delete(room);
    }
    const ids: string[] = [];
    const items: Item[] = [];
    let startKey: Item | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          ...this.liveOnly(roomIdsQuery(room)),
          // Items examined, before the filter: every page but the last stops there. The log's slots may be among them.
          Limit: listUpTo + 1 - ids.length + ROOM_LOG_SLOTS,
          ExclusiveStartKey: startKey,
        }),
      );
      items.push(...(page.Items ?? []));
      for (const item of page.Items ?? []) if (item.connectionId) ids.push(str(item.connectionId));
      startKey = page.LastEvaluatedKey;
    } while (startKey && ids.length <= listUpTo);
    this.membersOf(room, items, !startKey);
    if (ids.length <= listUpTo) return { count: ids.length, connectionIds: ids };
    if (this.largeRooms.size >= MAX_LARGE_ROOMS) this.largeRooms.clear();
    this.largeRooms.add(room);
    return { count: ids.length + (startKey ? await this.countLive(room, startKey) : 0) };
  }

  /** The room's live items from `startKey` on (from the start when undefined), counted 1 MB at a time. */
  private async countLive(room: string, startKey: Item | undefined): Promise<number> {
    let count = 0;
    do {
      const query = this.liveOnly(roomQuery(room));
      const page = await this.client.send(
        new QueryCommand({
          ...query,
          // Members only: the log's slots are in the index too.
          FilterExpression: `${query.FilterExpression} AND attribute_exists(#connectionId)`,
          ExpressionAttributeNames: { ...query.ExpressionAttributeNames, '#connectionId': 'connectionId' },
          Select: 'COUNT',
          ExclusiveStartKey: startKey,
        }),
      );
      count += page.Count ?? 0;
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return count;
  }

  async markGreeted(connectionId: string): Promise<ConnectionRecord | undefined> {
    const item = await this.updateLive(connectionId, { UpdateExpression: 'SET greeted = :greeted', ExpressionAttributeValues: { ':greeted': { BOOL: true } } });
    return item ? toRecord(item) : undefined;
  }

  async moveToRoom(connectionId: string, room: string): Promise<ConnectionRecord | undefined> {
    const item = await this.updateLive(connectionId, { UpdateExpression: 'SET #room = :room', ExpressionAttributeNames: { '#room': 'room' }, ExpressionAttributeValues: { ':room': s(room) } });
    return item ? toRecord(item) : undefined;
  }

  /**
   * The rate limit (GCRA, see rate-limit.ts) and the activity touch in one
   * UpdateItem. GCRA needs max(tat, now), which an update expression cannot
   * compute, so the common case is written as a condition: when `tat <= now`
   * the bucket has room and the new tat is simply now + interval. Only inside
   * a burst does the old tat have to be read and the write repeated against it.
   */
  async touch(connectionId: string, now: number, limit: RateLimit, receivedAt = now): Promise<TouchResult | undefined> {
    const result = await this.spendToken(connectionId, now, limit, receivedAt);
    if (result) await this.refreshExpiryIfDue(result.expiresAt, result.touched.record);
    return result?.touched;
  }

  /** Deletes the connection, then gives its name back. */
  async remove(connectionId: string): Promise<ConnectionRecord | undefined> {
    const { Attributes } = await this.client.send(
      new DeleteItemCommand({ TableName: this.tableName, Key: connectionKey(connectionId), ReturnValues: 'ALL_OLD' }),
    );
    if (!Attributes) return undefined;
    const record = toRecord(Attributes);
    await this.releaseClaim(record.nameKey, connectionId);
    return this.isLive(Attributes) ? record : undefined;
  }

  /**
   * Always empty. Finding idle connections would need a Scan or an index over
   * every connection's activity (written on every frame); instead API Gateway
   * closes idle connections itself after 10 minutes (and fires `$disconnect`),
   * and the TTL removes the entries of those whose `$disconnect` was lost.
   */
  async listIdle(_before: number): Promise<ConnectionRecord[]> {
    return [];
  }

  /** consumeToken's decision (shared/rate-limit.ts), written conditionally: `receivedAt` moves the bucket, judgingTime judges it. */
  private async spendToken(connectionId: string, now: number, limit: RateLimit, receivedAt: number): Promise<{ touched: TouchResult; expiresAt: number } | undefined> {
    const touched = (item: Item | undefined, admitted: boolean) =>
      item ? { touched: { record: toRecord(item), admitted }, expiresAt: num(item[TTL_ATTRIBUTE]) } : undefined;

    if (limit.perSecond <= 0) {
      const item = await this.updateLive(connectionId, {
        UpdateExpression: 'SET lastActiveAt = :at, tat = :at, strikes = :zero',
        ExpressionAttributeValues: { ':at': n(receivedAt), ':zero': n(0) },
      });
      return touched(item, true);
    }

    const interval = 1000 / limit.perSecond;
    const tolerance = interval * (limit.burst - 1);
    for (let attempt = 0; attempt < MAX_TOUCH_ATTEMPTS; attempt++) {
      const quiet = await this.updateLive(
        connectionId,
        {
          UpdateExpression: 'SET lastActiveAt = :at, tat = :next, strikes = :zero',
          ExpressionAttributeValues: { ':at': n(receivedAt), ':next': n(receivedAt + interval), ':zero': n(0) },
        },
        'tat <= :at',
      );
      if (quiet.item) return touched(quiet.item, true);
      const old = quiet.old;
      if (!old || !this.isLive(old)) return undefined;

      const oldTat = old.tat?.N;
      if (oldTat === undefined || Number(oldTat) <= receivedAt) continue;
      if (Number(oldTat) - judgingTime(now, receivedAt) > tolerance) {
        // Refused frames still count as activity, and the strikes decide when to close.
        const item = await this.updateLive(connectionId, {
          UpdateExpression: 'SET lastActiveAt = :at, strikes = strikes + :one',
          ExpressionAttributeValues: { ':at': n(receivedAt), ':one': n(1) },
        });
        return touched(item, false);
      }
      const burst = await this.updateLive(
        connectionId,
        {
          UpdateExpression: 'SET lastActiveAt = :at, tat = tat + :interval, strikes = :zero',
          ExpressionAttributeValues: { ':at': n(receivedAt), ':interval': n(interval), ':zero': n(0), ':oldTat': { N: oldTat } },
        },
        'tat = :oldTat',
      );
      if (burst.item) return touched(burst.item, true);
      if (!burst.old || !this.isLive(burst.old)) return undefined;
      // Another frame of this connection moved tat first; decide again from the new value.
    }
    throw new RegistryContentionError(connectionId);
  }

  /**
   * Extends both items' expiry once less than half the TTL is left, so the
   * hot path writes nothing extra and an active connection costs two more
   * writes per ttl/2.
   */
  private async refreshExpiryIfDue(expiresAt: number, record: ConnectionRecord): Promise<void> {
    const nowSeconds = this.nowSeconds();
    if (expiresAt - nowSeconds >= this.ttlSeconds / 2) return;
    const extended = n(nowSeconds + this.ttlSeconds);
    await this.updateLive(record.connectionId, {
      UpdateExpression: 'SET #expiresAt = :expiresAt',
      ExpressionAttributeNames: { '#expiresAt': TTL_ATTRIBUTE },
      ExpressionAttributeValues: { ':expiresAt': extended },
    });
    await conditionally(
      this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { [PARTITION_KEY]: s(claimKey(record.nameKey)) },
          UpdateExpression: 'SET #expiresAt = :expiresAt',
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#expiresAt': TTL_ATTRIBUTE, '#owner': 'owner' },
          ExpressionAttributeValues: { ':expiresAt': extended, ':owner': s(record.connectionId) },
        }),
      ),
    );
  }

  /** Stores the connection item unless a live one has its connectionId; `undo` gives the claim back when it was not stored. */
  private async putConnection(record: ConnectionRecord, expiresAt: number, nowSeconds: number, undo: () => Promise<void>): Promise<boolean> {
    let stored: boolean;
    try {
      stored = await conditionally(
        this.client.send(
          new PutItemCommand({
            TableName: this.tableName,
            Item: toItem(record, expiresAt),
            ConditionExpression: 'attribute_not_exists(#pk) OR #expiresAt <= :now',
            ExpressionAttributeNames: { '#pk': PARTITION_KEY, '#expiresAt': TTL_ATTRIBUTE },
            ExpressionAttributeValues: { ':now': n(nowSeconds) },
          }),
        ),
      );
    } catch (error) {
      await undo().catch(() => undefined);
      throw error;
    }
    if (!stored) await undo();
    return stored;
  }

  /** Hands a claim back from `from` to `to`, if `from` still holds it. */
  private async moveClaim(nameKey: string, from: string, to: string): Promise<void> {
    await conditionally(
      this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { [PARTITION_KEY]: s(claimKey(nameKey)) },
          UpdateExpression: 'SET #owner = :to',
          ConditionExpression: '#owner = :from',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':from': s(from), ':to': s(to) },
        }),
      ),
    );
  }

  /** Deletes the claim only if this connection still holds it; someone may have taken it over after expiry. */
  private async releaseClaim(nameKey: string, owner: string): Promise<void> {
    await conditionally(
      this.client.send(
        new DeleteItemCommand({
          TableName: this.tableName,
          Key: { [PARTITION_KEY]: s(claimKey(nameKey)) },
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': s(owner) },
        }),
      ),
    );
  }

  /**
   * An UpdateItem on a live connection item (it exists and has not expired),
   * returning the new item. With `extraCondition`, a failed condition hands
   * back the item as it was, so the caller can tell "gone" from "condition".
   */
  private async updateLive(connectionId: string, update: Partial<UpdateItemCommandInput>): Promise<Item | undefined>;
  private async updateLive(connectionId: string, update: Partial<UpdateItemCommandInput>, extraCondition: string): Promise<{ item?: Item; old?: Item }>;
  private async updateLive(
    connectionId: string,
    update: Partial<UpdateItemCommandInput>,
    extraCondition?: string,
  ): Promise<Item | undefined | { item?: Item; old?: Item }> {
    const liveCondition = 'attribute_exists(#pk) AND #expiresAt > :nowSeconds';
    try {
      const { Attributes } = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: connectionKey(connectionId),
          ...update,
          ConditionExpression: extraCondition ? `${liveCondition} AND ${extraCondition}` : liveCondition,
          ExpressionAttributeNames: { ...update.ExpressionAttributeNames, '#pk': PARTITION_KEY, '#expiresAt': TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ':nowSeconds': n(this.nowSeconds()) },
          ReturnValues: 'ALL_NEW',
          ...(extraCondition ? { ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const } : {}),
        }),
      );
      return extraCondition ? { item: Attributes } : Attributes;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      if (!extraCondition) return undefined;
      // DynamoDB returns the old item with the failure; stores that cannot (dynalite) cost one read.
      const old = error.Item ?? (await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: connectionKey(connectionId), ConsistentRead: true }))).Item;
      return { old };
    }
  }

  private async queryLive(input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    const items: Item[] = [];
    let startKey: Item | undefined;
    do {
      const page = await this.client.send(new QueryCommand({ ...this.liveOnly(input), ExclusiveStartKey: startKey }));
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  }

  /** A Query of this table that skips expired items, which TTL may not have deleted yet. */
  private liveOnly(input: Omit<QueryCommandInput, 'TableName'>): QueryCommandInput {
    return {
      ...input,
      TableName: this.tableName,
      FilterExpression: '#expiresAt > :now',
      ExpressionAttributeNames: { ...input.ExpressionAttributeNames, '#expiresAt': TTL_ATTRIBUTE },
      ExpressionAttributeValues: { ...input.ExpressionAttributeValues, ':now': n(this.nowSeconds()) },
    };
  }

  private isLive(item: Item): boolean {
    return num(item[TTL_ATTRIBUTE]) > this.nowSeconds();
  }

  private nowSeconds(): number {
    return Math.floor(this.clock() / 1000);
  }
}

function roomQuery(room: string): Omit<QueryCommandInput, 'TableName'> {
  return { IndexName: ROOM_INDEX, KeyConditionExpression: '#room = :key', ExpressionAttributeNames: { '#room': 'room' }, ExpressionAttributeValues: { ':key': s(room) } };
}

function roomIdsQuery(room: string): Omit<QueryCommandInput, 'TableName'> {
  const query = roomQuery(room);
  return {
    ...query,
    // And, of the log's slots among the items, what the log needs (see membersOf).
    ProjectionExpression: '#connectionId, #pk, #first, #seq, #bytes',
    ExpressionAttributeNames: { ...query.ExpressionAttributeNames, '#connectionId': 'connectionId', '#pk': PARTITION_KEY, '#first': 'first', '#seq': 'seq', '#bytes': 'bytes' },
  };
}

function connectionKey(connectionId: string): Item {
  return { [PARTITION_KEY]: s(`${CONNECTION_KEY_PREFIX}${connectionId}`) };
}

function claimKey(nameKey: string): string {
  return `${CLAIM_KEY_PREFIX}${nameKey}`;
}

function toItem(record: ConnectionRecord, expiresAt: number): Item {
  return {
    ...connectionKey(record.connectionId),
    connectionId: s(record.connectionId),
    clientId: s(record.clientId),
    nameKey: s(record.nameKey),
    room: s(record.room),
    connectedAt: n(record.connectedAt),
    lastActiveAt: n(record.lastActiveAt),
    sourceIp: s(record.sourceIp),
    identity: s(JSON.stringify(record.identity)),
    tat: n(record.rate.tat),
    strikes: n(record.rate.strikes),
    ...(record.owner === undefined ? {} : { owner: s(record.owner) }),
    ...(record.session === undefined ? {} : { session: s(record.session) }),
    ...(record.greeted ? { greeted: { BOOL: true } } : {}),
    [TTL_ATTRIBUTE]: n(expiresAt),
  };
}

function toRecord(item: Item): ConnectionRecord {
  const record: ConnectionRecord = {
    connectionId: str(item.connectionId),
    clientId: str(item.clientId),
    // Items written before names had keys claimed `client#{clientId}`; that is the claim to give back.
    nameKey: item.nameKey?.S ?? str(item.clientId),
    room: str(item.room),
    connectedAt: num(item.connectedAt),
    lastActiveAt: num(item.lastActiveAt),
    sourceIp: str(item.sourceIp),
    identity: JSON.parse(str(item.identity) || '{}') as JsonObject,
    rate: { tat: num(item.tat), strikes: num(item.strikes) },
  };
  if (item.owner) record.owner = str(item.owner);
  if (item.session) record.session = str(item.session);
  if (item.greeted?.BOOL) record.greeted = true;
  return record;
}
