/**
 * Scenario 3: what one chat message costs on the AWS target, run through the
 * emulator (the built Lambda handlers, the @connections API, dynalite):
 * DynamoDB requests and management-API calls per message, counted where they
 * arrive, for rooms of several sizes; and the fan-out time, from the send to
 * the last recipient, at the default FANOUT_CONCURRENCY, and the CPU time
 * the emulator's process spent on each message (the emulator, the handlers
 * in its worker threads and dynalite in its own; the clients are in other
 * processes), which a busy machine moves less than the fan-out time.
 *
 * Joining N clients one by one would announce each to the room (N²/2
 * PostToConnection calls, minutes for N = 1000), so each client connects
 * alone in its own room and the bench then moves the connection items into
 * the measured room directly in DynamoDB, and out again before the clients
 * leave. Only the messages are counted.
 *
 * Each room is measured twice: its first messages, served by environments
 * that have handled only the smaller rooms' few (some start cold when a
 * message arrives while the last one's invocation is still answering its
 * final posts, as Lambda starts another environment then too), and, after
 * `warmupMessages` more, messages served by warm environments, as in a room
 * that has been chatting a while. The requests and CPU are counted on the
 * warm ones; the first ones' fan-out is reported beside them.
 *
 * Then what a chat message in a room of 100 would be billed on AWS: the same
 * room once more, through an emulator that meters cost (scripts/emulator/
 * cost-meter.ts, its dated list prices), apart from the timed rooms because
 * metering reads each written item before and after.
 */
import { ConditionalCheckFailedException, ScanCommand, UpdateItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { silentLogger } from '../shared/log.js';
import { startEmulator, type RunningEmulator } from '../scripts/emulator/index.js';
import { PRICES, type CostReport } from '../scripts/emulator/cost-meter.js';
import { LOCAL_CREDENTIALS } from '../scripts/emulator/dynamo.js';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { quiet, RequestCounter, sum, type RequestCounts } from './aws-counter.js';
import type { LoadPool } from './load/pool.js';

export interface AwsRoomRun {
  roomSize: number;
  messages: number;
  dynamoRequestsPerMessage: number;
  /** Per message, by operation. */
  dynamoOperationsPerMessage: Record<string, number>;
  scans: number;
  managementCallsPerMessage: number;
  managementMethodsPerMessage: Record<string, number>;
  lambdaInvokesPerMessage: number;
  /** From the send to the last recipient, median and worst over the warm messages. */
  fanoutMedianMs: number | null;
  fanoutMaxMs: number | null;
  /** The same over the room's first messages, before the warm-up. */
  firstFanoutMedianMs: number | null;
  firstFanoutMaxMs: number | null;
  /** Messages of either phase that did not reach every member in time. */
  incompleteMessages: number;
  /** CPU of the emulator's process (user + system) per message, and per @connections call of its fan-out. */
  cpuMsPerMessage: number;
  cpuMicrosPerManagementCall: number | null;
  /**
   * What one more @connections call costs: the CPU per message beyond the
   * next smaller room's, over the calls beyond its. The cost every message
   * has whatever the room (the invocation, its DynamoDB requests) cancels
   * out; null for the smallest room.
   */
  marginalCpuMicrosPerManagementCall: number | null;
}

/** What the cost meter counted per chat message, and that priced per million chat messages, by what AWS bills. */
export interface AwsMessageCost {
  roomSize: number;
  messages: number;
  perMessage: { messageUnits: number; lambdaRequests: number; gbSeconds: number; readUnits: number; writeUnits: number };
  /**
   * USD per million chat messages. Connection minutes are left out: they
   * follow how long members stay connected, not what they send.
   */
  perMillionMessages: { apiGateway: number; lambda: number; dynamodb: number; total: number };
  prices: typeof PRICES;
}

export interface AwsRoomOptions {
  roomSizes: readonly number[];
  /** Measured in each phase. */
  messagesPerRoom: number;
  /** Sent between the two phases, not measured. */
  warmupMessages: number;
  distDir: string;
}

const CONTENT_BYTES = 64;
const FANOUT_TIMEOUT_MS = 60_000;
/** A day: longer than any run of the bench. */
const BENCH_OUTLASTING_MS = 24 * 60 * 60_000;

export async function runAwsRooms(pool: LoadPool, options: AwsRoomOptions): Promise<AwsRoomRun[]> {
  const counter = new RequestCounter();
  // The emulator's TTL sweep (a DescribeTable and a Scan a minute, its own doing, as DynamoDB's TTL deletes are) would be
  // counted as the handlers' requests; no entry of the bench's expires while it runs, so the sweep waits past its end.
  const emulator = await startEmulator({ port: 0, distDir: options.distDir, logger: silentLogger, onLog: () => {}, ttlSweepMs: BENCH_OUTLASTING_MS });
  const dynamo = new DynamoDBClient({ endpoint: emulator.dynamoEndpoint, region: emulator.stack.region, credentials: LOCAL_CREDENTIALS });
  counter.start();
  try {
    const runs: AwsRoomRun[] = [];
    for (const roomSize of options.roomSizes) {
      await inGatheredRoom(pool, emulator, dynamo, roomSize, async () => {
        await quiet(counter);
        const first = await pool.fanout(options.messagesPerRoom, CONTENT_BYTES, FANOUT_TIMEOUT_MS);
        const warmup = await pool.fanout(options.warmupMessages, CONTENT_BYTES, FANOUT_TIMEOUT_MS);
        await quiet(counter);
        counter.reset();
        const cpuBefore = process.cpuUsage();
        const warm = await pool.fanout(options.messagesPerRoom, CONTENT_BYTES, FANOUT_TIMEOUT_MS);
        const cpu = process.cpuUsage(cpuBefore);
        await quiet(counter);
        runs.push(summarize(roomSize, options.messagesPerRoom, counter.snapshot(), { first, warmup, warm }, cpu.user + cpu.system));
      });
    }
    return withMarginalCosts(runs);
  } finally {
    counter.stop();
    dynamo.destroy();
    await emulator.stop();
  }
}

export async function runAwsMessageCost(pool: LoadPool, options: { roomSize: number; messages: number; distDir: string }): Promise<AwsMessageCost> {
  const counter = new RequestCounter();
  const emulator = await startEmulator({ port: 0, distDir: options.distDir, logger: silentLogger, onLog: () => {}, ttlSweepMs: BENCH_OUTLASTING_MS, meterCost: true });
  const dynamo = new DynamoDBClient({ endpoint: emulator.dynamoEndpoint, region: emulator.stack.region, credentials: LOCAL_CREDENTIALS });
  counter.start();
  try {
    return await inGatheredRoom(pool, emulator, dynamo, options.roomSize, async () => {
      await quiet(counter);
      const before = emulator.costReport()!;
      const fanout = await pool.fanout(options.messages, CONTENT_BYTES, FANOUT_TIMEOUT_MS);
      if (fanout.incomplete > 0) throw new Error(`aws: ${fanout.incomplete} of ${options.messages} metered messages did not reach every member`);
      await quiet(counter);
      return priced(options.roomSize, options.messages, before, emulator.costReport()!);
    });
  } finally {
    counter.stop();
    dynamo.destroy();
    await emulator.stop();
  }
}

function priced(roomSize: number, messages: number, before: CostReport, after: CostReport): AwsMessageCost {
  const per = (key: 'messageUnits' | 'lambdaRequests' | 'gbSeconds' | 'readUnits' | 'writeUnits') => (after[key] - before[key]) / messages;
  const perMessage = { messageUnits: per('messageUnits'), lambdaRequests: per('lambdaRequests'), gbSeconds: per('gbSeconds'), readUnits: per('readUnits'), writeUnits: per('writeUnits') };
  const apiGateway = perMessage.messageUnits * PRICES.perMillionMessages;
  const lambda = perMessage.lambdaRequests * PRICES.perMillionLambdaRequests + perMessage.gbSeconds * PRICES.perGbSecond * 1e6;
  const dynamodb = perMessage.readUnits * PRICES.perMillionReadUnits + perMessage.writeUnits * PRICES.perMillionWriteUnits;
  return {
    roomSize,
    messages,
    perMessage: Object.fromEntries(Object.entries(perMessage).map(([key, value]) => [key, Math.round(value * 1e4) / 1e4])) as AwsMessageCost['perMessage'],
    perMillionMessages: { apiGateway: round(apiGateway), lambda: round(lambda), dynamodb: round(dynamodb), total: round(apiGateway + lambda + dynamodb) },
    prices: PRICES,
  };
}

/**
 * Connects roomSize clients, each alone in a room of its own, gathers them
 * into one room, runs `measure`, then takes them out and closes them.
 */
async function inGatheredRoom<T>(pool: LoadPool, emulator: RunningEmulator, dynamo: DynamoDBClient, roomSize: number, measure: () => Promise<T>): Promise<T> {
  const result = await pool.connect({ urls: [emulator.url], dialect: 'chat', count: roomSize, roomSize: 1, concurrency: 20 });
  if (result.connected !== roomSize) throw new Error(`aws: ${result.connected}/${roomSize} clients connected (${result.firstError ?? 'no error'})`);
  await gatherInto(dynamo, emulator, `bench${roomSize}`);
  const measured = await measure();
  // Leaving one by one would announce each departure to the rest of the room: N²/2 calls again.
  await scatter(dynamo, emulator);
  await pool.closeClients();
  await waitUntilEmpty(dynamo, emulator);
  return measured;
}

type Fanout = { completionsMs: number[]; incomplete: number };

/** Requests and CPU are the warm phase's; fan-out times are given for the first and the warm phase. */
function summarize(roomSize: number, messages: number, counts: RequestCounts, phases: { first: Fanout; warmup: Fanout; warm: Fanout }, cpuMicros: number): AwsRoomRun {
  const perMessage = (value: number) => round(value / messages);
  const perMessageRecord = (record: Record<string, number>) => Object.fromEntries(Object.entries(record).map(([key, value]) => [key, perMessage(value)]));
  const warm = spread(phases.warm.completionsMs);
  const first = spread(phases.first.completionsMs);
  const managementCalls = sum(Object.values(counts.management));
  return {
    roomSize,
    messages,
    dynamoRequestsPerMessage: perMessage(sum(Object.values(counts.dynamo))),
    dynamoOperationsPerMessage: perMessageRecord(counts.dynamo),
    scans: counts.dynamo.Scan ?? 0,
    managementCallsPerMessage: perMessage(sum(Object.values(counts.management))),
    managementMethodsPerMessage: perMessageRecord(counts.management),
    lambdaInvokesPerMessage: perMessage(counts.lambdaInvokes),
    fanoutMedianMs: warm.median,
    fanoutMaxMs: warm.max,
    firstFanoutMedianMs: first.median,
    firstFanoutMaxMs: first.max,
    incompleteMessages: phases.first.incomplete + phases.warmup.incomplete + phases.warm.incomplete,
    cpuMsPerMessage: round(cpuMicros / 1000 / messages),
    cpuMicrosPerManagementCall: managementCalls > 0 ? round(cpuMicros / managementCalls) : null,
    marginalCpuMicrosPerManagementCall: null,
  };
}

/** The lower median and the worst of fan-out times, rounded; null when there are none. */
function spread(completionsMs: readonly number[]): { median: number | null; max: number | null } {
  const sorted = [...completionsMs].sort((a, b) => a - b);
  if (sorted.length === 0) return { median: null, max: null };
  return { median: round(sorted[Math.floor((sorted.length - 1) / 2)]!), max: round(sorted[sorted.length - 1]!) };
}

function withMarginalCosts(runs: AwsRoomRun[]): AwsRoomRun[] {
  const bySize = [...runs].sort((a, b) => a.roomSize - b.roomSize);
  return runs.map((run) => {
    const smaller = bySize.filter((other) => other.roomSize < run.roomSize).at(-1);
    const moreCalls = smaller ? run.managementCallsPerMessage - smaller.managementCallsPerMessage : 0;
    if (!smaller || moreCalls <= 0) return run;
    return { ...run, marginalCpuMicrosPerManagementCall: round(((run.cpuMsPerMessage - smaller.cpuMsPerMessage) * 1000) / moreCalls) };
  });
}

/** Every live connection item: the bench's own clients, each alone in its room so far. */
async function connectionItems(dynamo: DynamoDBClient, emulator: RunningEmulator): Promise<Array<Record<string, AttributeValue>>> {
  const items: Array<Record<string, AttributeValue>> = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    // A Scan is fine here: this is the bench arranging the table, not a request path, and it is not counted.
    const page = await dynamo.send(new ScanCommand({ TableName: tableName(emulator), ExclusiveStartKey: startKey }));
    items.push(...(page.Items ?? []).filter((item) => item.pk?.S?.startsWith('conn#')));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

async function gatherInto(dynamo: DynamoDBClient, emulator: RunningEmulator, room: string): Promise<void> {
  for (const item of await connectionItems(dynamo, emulator)) await moveItem(dynamo, emulator, item, room);
}

/** Every connection back alone in a room of its own. */
async function scatter(dynamo: DynamoDBClient, emulator: RunningEmulator): Promise<void> {
  let index = 0;
  for (const item of await connectionItems(dynamo, emulator)) await moveItem(dynamo, emulator, item, `alone${index++}`);
}

/**
 * Only if the item is still there: an UpdateItem of a missing key creates the
 * item, and one whose connection left after the Scan would come back as a bare
 * `{pk, room}` without an expiry, which nothing ever deletes.
 */
async function moveItem(dynamo: DynamoDBClient, emulator: RunningEmulator, item: Record<string, AttributeValue>, room: string): Promise<void> {
  try {
    await dynamo.send(
      new UpdateItemCommand({
        TableName: tableName(emulator),
        Key: { pk: item.pk! },
        UpdateExpression: 'SET #room = :room',
        ConditionExpression: 'attribute_exists(#pk)',
        ExpressionAttributeNames: { '#room': 'room', '#pk': 'pk' },
        ExpressionAttributeValues: { ':room': { S: room } },
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}

/** The previous room's `$disconnect`s must be done, or their items would join the next room. */
async function waitUntilEmpty(dynamo: DynamoDBClient, emulator: RunningEmulator, maxMs = 60_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while ((await connectionItems(dynamo, emulator)).length > 0) {
    if (Date.now() > deadline) throw new Error('aws: connections were still registered a minute after their clients closed');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}


function tableName(emulator: RunningEmulator): string {
  const table = emulator.stack.table;
  if (!table) throw new Error('aws: the template defines no table');
  return table.name;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
