import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbRegistry } from '../registries/dynamodb-registry.js';
import { DynamoDbStateStore } from '../registries/dynamodb-state.js';
import { roomStateOf, STATE_LIMITS, type RoomState } from '../shared/room-state.js';
import { createConnectionsTable, dynaliteForFile, dynamoClient, expectNoScan } from './support/dynalite.js';
import { stateSuite } from './state-suite.js';

const dynalite = dynaliteForFile();
/** Every command any store in this file sent. */
const sentBySuite: string[] = [];

/** One table for the whole suite: its tests never share a room, and a table takes dynalite a while to make. */
let suiteTable: Promise<string> | undefined;

stateSuite('DynamoDbStateStore on dynalite', async (options) => {
  const client = dynamoClient(dynalite.endpoint, sentBySuite);
  suiteTable ??= createConnectionsTable(dynamoClient(dynalite.endpoint)).then((table) => table.tableName);
  const tableName = await suiteTable;
  const clients = [client];
  return {
    store: new DynamoDbStateStore({ client, tableName, ...options }),
    // Another Lambda function: its own SDK client, the same table.
    peer: async () => {
      const peer = dynamoClient(dynalite.endpoint, sentBySuite);
      clients.push(peer);
      return new DynamoDbStateStore({ client: peer, tableName, ...options });
    },
    cleanup: async () => {
      for (const each of clients) each.destroy();
    },
  };
}, 'follows the clock');

describe('DynamoDbStateStore specifics', () => {
  let sent: string[];
  let tableName: string;
  let client: ReturnType<typeof dynamoClient>;
  let state: RoomState;

  beforeEach(async () => {
    sent = [];
    client = dynamoClient(dynalite.endpoint, sent);
    const table = await createConnectionsTable(client);
    tableName = table.tableName;
    state = roomStateOf(new DynamoDbStateStore({ client, tableName }), 'kitchen');
    return async () => {
      await table.drop();
      client.destroy();
    };
  });

  const requestsOf = async (action: () => Promise<unknown>): Promise<string[]> => {
    sent.length = 0;
    await action();
    return [...sent];
  };

  it('keeps a room in one item: whole numbers as numbers, other values as their JSON, the key count, and when TTL is to delete it', async () => {
    const writtenAt = Math.floor(Date.now() / 1000);
    await state.set('cursor:alice', { x: 1 });
    await state.increment('count', 3);
    await state.set('label', '7');
    await state.set('huge', 2 ** 60);
    const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: 'state#kitchen' } }, ConsistentRead: true }));
    expect(Item).toEqual({
      pk: { S: 'state#kitchen' },
      keyCount: { N: '4' },
      'v:cursor:alice': { S: '{"x":1}' },
      'v:count': { N: '3' },
      'v:label': { S: '"7"' },
      'v:huge': { S: String(2 ** 60) },
      // A day after the last write, the default ROOM_STATE_TTL, in the table's TTL attribute.
      expiresAt: { N: expect.stringMatching(/^\d+$/) },
    });
    expect(Number(Item!.expiresAt!.N) - writtenAt).toBeGreaterThanOrEqual(86_400);
    expect(Number(Item!.expiresAt!.N) - writtenAt).toBeLessThan(86_400 + 60);
  });

  it('stays out of the room and clientId indexes, and keys named like their attributes stay keys', async () => {
    await state.set('room', 'not an index key');
    await state.set('clientId', 'nor this');
    await state.set('expiresAt', 1);
    const registry = new DynamoDbRegistry({ client, tableName, ttlSeconds: 7200 });
    expect(await registry.countRoom('not an index key')).toBe(0);
    expect(await registry.findByClientId('nor this')).toBeUndefined();
    expect(await state.list()).toEqual({ clientId: 'nor this', expiresAt: 1, room: 'not an index key' });
  });

  it('costs the documented number of requests per operation', async () => {
    expect(await requestsOf(() => state.set('a', 1))).toEqual(['UpdateItemCommand', 'UpdateItemCommand']);
    expect(await requestsOf(() => state.set('a', { b: 2 }))).toEqual(['UpdateItemCommand']);
    expect(await requestsOf(() => state.increment('n'))).toEqual(['UpdateItemCommand', 'UpdateItemCommand']);
    expect(await requestsOf(() => state.increment('n'))).toEqual(['UpdateItemCommand']);
    expect(await requestsOf(() => state.get('a'))).toEqual(['GetItemCommand']);
    expect(await requestsOf(() => state.list())).toEqual(['GetItemCommand']);
    expect(await requestsOf(() => state.delete('a'))).toEqual(['UpdateItemCommand']);
    expect(await requestsOf(() => state.delete('a'))).toEqual(['UpdateItemCommand']);
    // Refused: both writes, then the read that tells why.
    await state.set('text', 'x');
    expect(await requestsOf(() => state.increment('text').catch(() => undefined))).toEqual(['UpdateItemCommand', 'UpdateItemCommand', 'GetItemCommand']);
  });

  it('holds a full room of the largest keys and values in one item', async () => {
    // Four bytes of UTF-8 per letter. dynalite counts attribute names in UTF-16 units where DynamoDB counts
    // bytes, so this shows less than it seems; the sum in shared/room-state.ts is what holds for DynamoDB.
    const key = (i: number) => `${'\u{1D49C}'.repeat(STATE_LIMITS.maxKeyChars - 4)}${String(i).padStart(4, '0')}`;
    const value = 'ü'.repeat(STATE_LIMITS.maxValueBytes / 2 - 1);
    for (let start = 0; start < STATE_LIMITS.maxKeysPerRoom; start += 32) {
      await Promise.all(Array.from({ length: 32 }, (_, i) => state.set(key(start + i), value)));
    }
    expect(Object.keys(await state.list())).toHaveLength(STATE_LIMITS.maxKeysPerRoom);
    await expect(state.set('one-more', 1)).rejects.toMatchObject({ code: 'state_full' });
  });
});

describe('requests sent by the state suite', () => {
  it('never included a Scan', () => {
    expectNoScan(sentBySuite, 'UpdateItemCommand');
  });
});
