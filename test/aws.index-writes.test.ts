/**
 * What a frame costs in DynamoDB write units, the indexes' share included.
 * The handlers run from source against the emulator; every write they make
 * is metered from its item before and after (scripts/emulator/index-write-units.ts),
 * under the template's projections and, for comparison, as if both indexes
 * projected ALL. The local store reports only the table's share itself.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { DynamoDBClient, GetItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { WebSocketResult } from '../functions/aws/events.js';
import { createAwsHandlers } from '../functions/aws/index.js';
import { DynamoDbRegistry } from '../registries/dynamodb-registry.js';
import { loadTemplate } from '../scripts/aws-template.js';
import { gatewayId, messageEvent, type ConnectionFacts } from '../scripts/emulator/events.js';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import { createChatApp } from '../apps/chat/index.js';
import { nameKey } from '../shared/names.js';
import { DEFAULT_RATE_LIMIT, freshRateState } from '../shared/rate-limit.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { dynamoClient } from './support/dynalite.js';
import { handlerEnvironment, startAwsEmulator } from './support/emulator.js';
import { indexShapes, indexWriteUnits, tableWriteUnits, type IndexShape } from '../scripts/emulator/index-write-units.js';

type Item = Record<string, AttributeValue>;

interface Metered {
  requests: number;
  writes: number;
  tableUnits: number;
  /** The indexes' share under the template's projections. */
  indexUnits: number;
  /** The same writes' index share, had both indexes projected ALL. */
  indexUnitsIfAll: number;
}

const WRITES = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand']);

// Every SDK v3 client inherits send from one prototype: patched there, it sees the handlers' own clients.
type Send = (this: DynamoDBClient, command: { input: Record<string, any>; constructor: { name: string } }, ...rest: unknown[]) => Promise<unknown>;
const clientBase = Object.getPrototypeOf(DynamoDBClient.prototype) as { send: Send };
const originalSend = clientBase.send;
const metering = new AsyncLocalStorage<Metered>();

let emulator: RunningEmulator;
let raw: DynamoDBClient;
let registry: DynamoDbRegistry;
let narrowed: IndexShape[];
let projectingAll: IndexShape[];
const open: TestClient[] = [];

beforeAll(async () => {
  emulator = await startAwsEmulator();
  const environments = [...emulator.stack.functions.values()].map((spec) => spec.environment);
  // Unlimited frames: a touch is then always the one UpdateItem (lastActiveAt, tat, strikes) of a frame within the limit.
  Object.assign(process.env, ...environments, handlerEnvironment(emulator), { RATE_LIMIT: '0' });
  const template = await loadTemplate();
  narrowed = indexShapes(template);
  projectingAll = indexShapes(template, true);
  raw = dynamoClient(emulator.dynamoEndpoint);
  registry = new DynamoDbRegistry({ client: dynamoClient(emulator.dynamoEndpoint), tableName: emulator.stack.table!.name, ttlSeconds: 7200 });
  const read = async (tableName: string, key: Item): Promise<Item | undefined> =>
    ((await originalSend.call(raw, new GetItemCommand({ TableName: tableName, Key: key, ConsistentRead: true }) as never)) as { Item?: Item }).Item;
  clientBase.send = async function (command, ...rest) {
    const meter = metering.getStore();
    if (!meter) return originalSend.call(this, command, ...rest);
    meter.requests += 1;
    if (!WRITES.has(command.constructor.name)) return originalSend.call(this, command, ...rest);
    const { TableName, Key, Item: written } = command.input as { TableName: string; Key?: Item; Item?: Item };
    const key = Key ?? { pk: written!.pk! };
    const before = await read(TableName, key);
    try {
      return await originalSend.call(this, command, ...rest);
    } finally {
      const after = await read(TableName, key);
      meter.writes += 1;
      meter.tableUnits += tableWriteUnits(before, after);
      meter.indexUnits += narrowed.reduce((sum, index) => sum + indexWriteUnits(before, after, index), 0);
      meter.indexUnitsIfAll += projectingAll.reduce((sum, index) => sum + indexWriteUnits(before, after, index), 0);
    }
  };
});

afterAll(async () => {
  clientBase.send = originalSend;
  await Promise.all(open.map((client) => client.close().catch(() => undefined)));
  raw?.destroy();
  await emulator?.stop();
});

async function metered(action: () => Promise<unknown>): Promise<Metered> {
  const meter: Metered = { requests: 0, writes: 0, tableUnits: 0, indexUnits: 0, indexUnitsIfAll: 0 };
  await metering.run(meter, action);
  return meter;
}

function facts(connectionId: string): ConnectionFacts {
  const { port, stage, stack } = emulator;
  return { connectionId, connectedAt: Date.now(), sourceIp: '203.0.113.7', userAgent: 'index-writes-test', domainName: `127.0.0.1:${port}`, stage, apiId: stack.apiId };
}

/** Members connected through the emulator, each having heard every later one join: the room is quiet when this returns. */
async function room(size: number) {
  const name = uniqueName('room');
  const members: Array<{ client: TestClient; clientId: string; connectionId: string }> = [];
  for (let i = 0; i < size; i++) {
    const clientId = uniqueName('member');
    const { client } = await TestClient.join(withQuery(emulator.url, { clientId, room: name }));
    open.push(client);
    for (const earlier of members) expect((await earlier.client.next('user_joined')).clientId).toBe(clientId);
    members.push({ client, clientId, connectionId: (await registry.findByClientId(clientId))!.connectionId });
  }
  return members;
}

it('touches a connection for one table write unit and none of either index, where projecting ALL cost two more', async () => {
  const [member] = await room(1);
  let now = Date.now();
  const touches: Metered[] = [];
  for (let i = 0; i < 5; i++) {
    // A second apart: each frame finds the bucket with room (tat <= now), the common case.
    now += 1000;
    touches.push(await metered(() => registry.touch(member!.connectionId, now, DEFAULT_RATE_LIMIT)));
  }
  for (const touch of touches) expect(touch).toEqual({ requests: 1, writes: 1, tableUnits: 1, indexUnits: 0, indexUnitsIfAll: 2 });
});

it("writes a chat message in a room of 3 with two writes, of which only the log's slot reaches an index, and that for one unit where projecting ALL cost one per KB of the slot", async () => {
  const members = await room(3);
  // The emulator's events are the wire's, typed loosely; the handler takes them as API Gateway sends them.
  const handler = createAwsHandlers(createChatApp()).message as unknown as (event: unknown) => Promise<WebSocketResult>;
  const sender = members[0]!;
  const messages: Metered[] = [];
  for (let i = 0; i < 10; i++) {
    messages.push(
      await metered(async () => {
        expect((await handler(messageEvent(facts(sender.connectionId), '$default', JSON.stringify({ type: 'chat', content: `hello ${i}` })))).statusCode).toBe(200);
      }),
    );
    for (const member of members) expect((await member.client.next('chat')).message).toBe(`hello ${i}`);
  }
  // The touch (one UpdateItem of the connection, 1 unit, in no index) and the append to the room's log (a write of its
  // open slot, a unit per KB the slot holds, and one unit of byRoom, which tells the next writer where the log stands).
  for (const message of messages) expect(message).toMatchObject({ writes: 2, indexUnits: 1 });
  // Projecting ALL: the touch's two indexes, and the slot's whole item in byRoom.
  for (const message of messages) expect(message.indexUnitsIfAll).toBeGreaterThanOrEqual(3);
  for (const message of messages) expect(message.tableUnits).toBeGreaterThanOrEqual(2);
  // And the room listed from byRoom: three requests in all.
  for (const message of messages) expect(message.requests).toBe(3);
});

it('moves a connection to another room for the table write and byRoom alone (its key changed), no longer byClientId too', async () => {
  const [member] = await room(1);
  const moved = await metered(() => registry.moveToRoom(member!.connectionId, uniqueName('room')));
  expect(moved).toEqual({ requests: 1, writes: 1, tableUnits: 1, indexUnits: 2, indexUnitsIfAll: 3 });
});

it('adds and removes a connection for the same units either way: its item enters and leaves both indexes, its claim neither', async () => {
  const clientId = uniqueName('member');
  const now = Date.now();
  const record = { connectionId: gatewayId(), clientId, nameKey: nameKey(clientId), room: uniqueName('room'), connectedAt: now, lastActiveAt: now, sourceIp: '203.0.113.7', identity: {}, rate: freshRateState(now) };
  let added = false;
  // The claim's Put and the connection's Put.
  expect(await metered(async () => (added = await registry.add(record)))).toEqual({ requests: 2, writes: 2, tableUnits: 2, indexUnits: 2, indexUnitsIfAll: 2 });
  expect(added).toBe(true);
  expect(await metered(() => registry.remove(record.connectionId))).toEqual({ requests: 2, writes: 2, tableUnits: 2, indexUnits: 2, indexUnitsIfAll: 2 });
});
