/**
 * What the AWS target's room log costs in DynamoDB, per append and per
 * replay, against dynalite: requests, and capacity units as dynalite counts
 * them by DynamoDB's rules (a write is one unit per KB of the larger of the
 * item before and after it, a strongly consistent read one per 4 KB). One
 * writer appends chat frames to one room; then the last 20 entries and the
 * last maxEntries are read back as a resume would.
 *
 * The layout registries/dynamodb-room-log.ts uses (a ring of slots) runs at
 * several slot sizes, beside the two layouts it was chosen over, written here
 * only to be measured. The ring holds ROOM_LOG_SLOTS slots, so the smallest
 * size measured is the one whose ring still holds ROOM_LOG_SIZE of these
 * frames:
 *   one item        every entry in the room's one item: one UpdateItem numbers
 *                   and list_appends (and REMOVEs the oldest past maxEntries);
 *                   a replay is one GetItem.
 *   item per entry  an UpdateItem of the counter, then a PutItem of the entry
 *                   under its seq; a replay is a GetItem of the counter and
 *                   BatchGetItems of the entries.
 */
import { BatchGetItemCommand, GetItemCommand, PutItemCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbRoomLog } from '../registries/dynamodb-room-log.js';
import type { LogEntryInput, RoomLog, RoomLogLimits } from '../shared/room-log.js';
import { createConnectionsTable, dynamoClient, startDynalite } from '../test/support/dynalite.js';

/** ROOM_LOG_SIZE and ROOM_LOG_AGE as they are by default. */
const ROOM_LOG_DEFAULTS: RoomLogLimits = { maxEntries: 1000, maxAgeMs: 300_000 };

export interface AwsLogPlan {
  appends: number;
  chunkSizesKiB: number[];
}

export interface AwsLogRun {
  layout: string;
  appends: number;
  /** Bytes of each frame appended. */
  frameBytes: number;
  requestsPerAppend: number;
  /** The most one append cost. */
  maxRequestsPerAppend: number;
  writeUnitsPerAppend: number;
  /** Replaying the last 20 entries; then the last maxEntries. */
  shortReplay: { requests: number; readUnits: number };
  fullReplay: { requests: number; readUnits: number };
}

/** Tallies requests and the capacity DynamoDB reports for them; every request is asked to report it. */
class CapacityMeter {
  requests = 0;
  units = 0;

  constructor(client: DynamoDBClient) {
    client.middlewareStack.add(
      (next) => async (args) => {
        (args.input as { ReturnConsumedCapacity?: string }).ReturnConsumedCapacity = 'TOTAL';
        this.requests++;
        try {
          const result = await next(args);
          this.add((result.output as { ConsumedCapacity?: unknown }).ConsumedCapacity);
          return result;
        } catch (error) {
          // A refused conditional write still consumes a write unit; dynalite reports none with the failure.
          this.units += 1;
          throw error;
        }
      },
      { step: 'initialize', name: 'meterCapacity' },
    );
  }

  async measure(action: () => Promise<unknown>): Promise<{ requests: number; units: number }> {
    const [requests, units] = [this.requests, this.units];
    await action();
    return { requests: this.requests - requests, units: this.units - units };
  }

  private add(consumed: unknown): void {
    for (const entry of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) this.units += (entry as { CapacityUnits?: number }).CapacityUnits ?? 0;
  }
}

/** A chat frame as the engine logs it (no seq), 64 characters of content as in the other AWS figures. */
function chatFrame(index: number): string {
  return JSON.stringify({
    type: 'chat',
    id: `m${String(index).padStart(7, '0')}`,
    clientId: 'member-00042',
    room: 'bench',
    message: `message ${index} `.padEnd(64, 'x'),
    onlineCount: 10,
    timestamp: new Date(Date.UTC(2030, 0, 1) + index).toISOString(),
  });
}

export async function runAwsLog(plan: AwsLogPlan): Promise<AwsLogRun[]> {
  const dynalite = await startDynalite();
  const client = dynamoClient(dynalite.endpoint);
  const meter = new CapacityMeter(client);
  const limits = ROOM_LOG_DEFAULTS;
  try {
    const runs: AwsLogRun[] = [];
    const layouts: Array<[string, (tableName: string) => RoomLog]> = [
      ...plan.chunkSizesKiB.map((kib): [string, (tableName: string) => RoomLog] => [
        `ring of slots, ${kib} KiB`,
        (tableName) => new DynamoDbRoomLog({ client, tableName, limits, chunkBytes: kib * 1024 }),
      ]),
      ['one item', (tableName) => new OneItemLog(client, tableName, limits)],
      ['item per entry', (tableName) => new ItemPerEntryLog(client, tableName)],
    ];
    for (const [layout, make] of layouts) {
      const table = await createConnectionsTable(client);
      try {
        runs.push(await measureLayout(layout, make(table.tableName), meter, plan.appends, limits));
      } finally {
        await table.drop();
      }
    }
    return runs;
  } finally {
    client.destroy();
    await dynalite.stop();
  }
}

async function measureLayout(layout: string, log: RoomLog, meter: CapacityMeter, appends: number, limits: RoomLogLimits): Promise<AwsLogRun> {
  const at = Date.now();
  let requests = 0;
  let units = 0;
  let maxRequests = 0;
  for (let index = 1; index <= appends; index++) {
    const entry: LogEntryInput = { data: chatFrame(index), at };
    const cost = await meter.measure(() => log.append('bench', entry));
    requests += cost.requests;
    units += cost.units;
    maxRequests = Math.max(maxRequests, cost.requests);
  }
  const replay = async (after: number) => {
    const cost = await meter.measure(async () => {
      const read = await log.read('bench', after, at);
      if (!read.ok || read.entries.length !== appends - after) throw new Error(`${layout}: replay after ${after} came back incomplete`);
    });
    return { requests: cost.requests, readUnits: cost.units };
  };
  return {
    layout,
    appends,
    frameBytes: Buffer.byteLength(chatFrame(appends)),
    requestsPerAppend: round(requests / appends),
    maxRequestsPerAppend: maxRequests,
    writeUnitsPerAppend: round(units / appends),
    shortReplay: await replay(appends - 20),
    fullReplay: await replay(appends - limits.maxEntries),
  };
}

/** Every entry in one item per room. Single-writer: it knows the list's length from its own appends. */
class OneItemLog implements RoomLog {
  private length = 0;
  constructor(private readonly client: DynamoDBClient, private readonly tableName: string, private readonly limits: RoomLogLimits) {}

  async append(room: string, entry: LogEntryInput): Promise<number> {
    const full = this.length >= this.limits.maxEntries;
    const value = { M: { d: { S: entry.data }, a: { N: String(entry.at) } } };
    const { Attributes } = await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: `one#${room}` } },
        // Full, the entry goes in past the end (SET of an index beyond the last appends) as the first one goes.
        UpdateExpression: full
          ? `SET #seq = #seq + :one, #recent[${this.limits.maxEntries}] = :value REMOVE #recent[0]`
          : 'SET #seq = if_not_exists(#seq, :zero) + :one, #recent = list_append(if_not_exists(#recent, :none), :entry)',
        ExpressionAttributeNames: { '#seq': 'seq', '#recent': 'recent' },
        ExpressionAttributeValues: full
          ? { ':one': { N: '1' }, ':value': value }
          : { ':zero': { N: '0' }, ':one': { N: '1' }, ':none': { L: [] }, ':entry': { L: [value] } },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    if (!full) this.length++;
    return Number(Attributes!.seq!.N);
  }

  async read(room: string, after: number): Promise<{ ok: true; entries: Array<{ seq: number; data: string; at: number }>; latest: number }> {
    const { Item } = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: { pk: { S: `one#${room}` } }, ConsistentRead: true }));
    const latest = Number(Item!.seq!.N);
    const list = Item!.recent!.L!;
    const first = latest - list.length + 1;
    const entries = list.map((value, i) => ({ seq: first + i, data: value.M!.d!.S!, at: Number(value.M!.a!.N) })).filter((entry) => entry.seq > after);
    return { ok: true, entries, latest };
  }

  async latest(): Promise<number> {
    throw new Error('not measured');
  }
}

/** A counter item and one item per entry. */
class ItemPerEntryLog implements RoomLog {
  constructor(private readonly client: DynamoDBClient, private readonly tableName: string) {}

  async append(room: string, entry: LogEntryInput): Promise<number> {
    const { Attributes } = await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: `seq#${room}` } },
        UpdateExpression: 'ADD #seq :one',
        ExpressionAttributeNames: { '#seq': 'seq' },
        ExpressionAttributeValues: { ':one': { N: '1' } },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    const seq = Number(Attributes!.seq!.N);
    await this.client.send(new PutItemCommand({ TableName: this.tableName, Item: { pk: { S: `entry#${room}#${seq}` }, d: { S: entry.data }, a: { N: String(entry.at) } } }));
    return seq;
  }

  async read(room: string, after: number): Promise<{ ok: true; entries: Array<{ seq: number; data: string; at: number }>; latest: number }> {
    const { Item } = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: { pk: { S: `seq#${room}` } }, ConsistentRead: true }));
    const latest = Number(Item!.seq!.N);
    const entries: Array<{ seq: number; data: string; at: number }> = [];
    for (let start = after + 1; start <= latest; start += 100) {
      let keys = Array.from({ length: Math.min(100, latest - start + 1) }, (_, i) => ({ pk: { S: `entry#${room}#${start + i}` } }));
      while (keys.length > 0) {
        const { Responses, UnprocessedKeys } = await this.client.send(new BatchGetItemCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } } }));
        for (const item of Responses?.[this.tableName] ?? []) entries.push({ seq: Number(item.pk!.S!.split('#')[2]), data: item.d!.S!, at: Number(item.a!.N) });
        keys = (UnprocessedKeys?.[this.tableName]?.Keys ?? []) as typeof keys;
      }
    }
    entries.sort((a, b) => a.seq - b.seq);
    return { ok: true, entries, latest };
  }

  async latest(): Promise<number> {
    throw new Error('not measured');
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
