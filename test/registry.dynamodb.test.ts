import { DeleteItemCommand, GetItemCommand, PutItemCommand, QueryCommand, UpdateItemCommand, type DynamoDBClient, type QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CLIENT_ID_INDEX, DynamoDbRegistry, ROOM_INDEX, ROOM_LOG_SLOTS, TTL_ATTRIBUTE } from '../registries/dynamodb-registry.js';
import { loadTemplate } from '../scripts/aws-template.js';
import { nameKey } from '../shared/names.js';
import { freshRateState, type RateLimit } from '../shared/rate-limit.js';
import type { ConnectionRecord } from '../shared/registry.js';
import { createConnectionsTable, dynaliteForFile, dynamoClient, expectNoScan } from './support/dynalite.js';
import { projectedAttributes, projectionProblems } from './support/index-reads.js';
import { registryReplaceSuite } from './registry-replace-suite.js';
import { registrySuite } from './registry-suite.js';

const TTL_SECONDS = 7200;
const LIMIT: RateLimit = { perSecond: 10, burst: 3, closeAfter: 5 };

const dynalite = dynaliteForFile();
/** Every command any registry in this file sent. */
const sentBySuite: string[] = [];
/** Every Query any registry in this file sent, as it was sent. */
const queriesSent: QueryCommandInput[] = [];

function recordingQueries(client: DynamoDBClient): DynamoDBClient {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === QueryCommand.name) queriesSent.push(structuredClone(args.input as QueryCommandInput));
      return next(args);
    },
    { step: 'initialize', name: 'recordQueries' },
  );
  return client;
}

const dynamoDbRegistry = async () => {
  const client = recordingQueries(dynamoClient(dynalite.endpoint, sentBySuite));
  const table = await createConnectionsTable(client);
  return {
    registry: new DynamoDbRegistry({ client, tableName: table.tableName, ttlSeconds: TTL_SECONDS }),
    cleanup: async () => {
      await table.drop();
      client.destroy();
    },
  };
};
registrySuite('DynamoDbRegistry on dynalite', dynamoDbRegistry, { listsIdle: false, countsFromArrival: true });
registryReplaceSuite('DynamoDbRegistry on dynalite', dynamoDbRegistry);

describe('DynamoDbRegistry specifics', () => {
  let client: DynamoDBClient;
  let tableName: string;
  let sent: string[];
  let now: number;
  let registry: DynamoDbRegistry;
  let serial = 0;

  beforeEach(async () => {
    sent = [];
    client = recordingQueries(dynamoClient(dynalite.endpoint, sent));
    const table = await createConnectionsTable(client);
    tableName = table.tableName;
    now = Date.UTC(2030, 0, 1, 12, 0, 0, 250);
    registry = new DynamoDbRegistry({ client, tableName, ttlSeconds: TTL_SECONDS, clock: () => now });
    sent.length = 0;
    return async () => {
      await table.drop();
      client.destroy();
    };
  });

  const record = (clientId: string, room = 'lobby'): ConnectionRecord => ({
    connectionId: `Jx${++serial}cdEFgh=`,
    clientId,
    nameKey: nameKey(clientId),
    room,
    connectedAt: now,
    lastActiveAt: now,
    sourceIp: '',
    identity: {},
    rate: freshRateState(now),
  });

  const rawItem = async (pk: string) =>
    (await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: pk } }, ConsistentRead: true }))).Item;

  /** Runs `action` and returns the commands it sent. */
  const requestsOf = async (action: () => Promise<unknown>): Promise<string[]> => {
    sent.length = 0;
    await action();
    return [...sent];
  };

  it('puts a TTL attribute in epoch seconds, CONNECTION_TTL ahead, on the connection and on its clientId claim', async () => {
    const alice = record('alice');
    await registry.add(alice);
    const expected = String(Math.floor(now / 1000) + TTL_SECONDS);
    expect((await rawItem(`conn#${alice.connectionId}`))?.[TTL_ATTRIBUTE]).toEqual({ N: expected });
    expect((await rawItem('client#alice'))?.[TTL_ATTRIBUTE]).toEqual({ N: expected });
    expect(Number(expected)).toBeGreaterThan(now / 1000);
  });

  it('costs the documented number of requests per operation', async () => {
    const alice = record('alice');
    expect(await requestsOf(() => registry.add(alice))).toEqual(['PutItemCommand', 'PutItemCommand']);
    expect(await requestsOf(() => registry.add(record('alice')))).toEqual(['PutItemCommand']);
    expect(await requestsOf(() => registry.get(alice.connectionId))).toEqual(['GetItemCommand']);
    expect(await requestsOf(() => registry.markGreeted(alice.connectionId))).toEqual(['UpdateItemCommand']);
    // The indexes hold ids: the records themselves are read from the table.
    expect(await requestsOf(() => registry.findByClientId('alice'))).toEqual(['QueryCommand', 'GetItemCommand']);
    expect(await requestsOf(() => registry.findByClientId('nobody'))).toEqual(['QueryCommand']);
    expect(await requestsOf(() => registry.listRoom('lobby'))).toEqual(['QueryCommand', 'BatchGetItemCommand']);
    expect(await requestsOf(() => registry.listRoom('empty'))).toEqual(['QueryCommand']);
    expect(await requestsOf(() => registry.countRoom('lobby'))).toEqual(['QueryCommand']);
    expect(await requestsOf(() => registry.listRoomIds('lobby'))).toEqual(['QueryCommand']);
    expect(await requestsOf(() => registry.countRoomAndList('lobby', 1))).toEqual(['QueryCommand']);
    await registry.add(record('bob'));
    await registry.add(record('carol'));
    // Larger than listUpTo, but read whole by the one Query, whose Limit leaves room for the log's slots.
    expect(await requestsOf(() => registry.countRoomAndList('lobby', 1))).toEqual(['QueryCommand']);
    expect(await requestsOf(() => registry.countRoomAndList('lobby', 1))).toEqual(['QueryCommand']);
    for (let i = 0; i < ROOM_LOG_SLOTS; i++) await registry.add(record(`guest${i}`));
    const crowded = new DynamoDbRegistry({ client, tableName, ttlSeconds: TTL_SECONDS, clock: () => now });
    expect(await requestsOf(() => crowded.countRoomAndList('lobby', 1))).toEqual(['QueryCommand', 'QueryCommand']);
    // Known to be large now: counted outright.
    expect(await requestsOf(() => registry.countRoomAndList('lobby', 1))).toEqual(['QueryCommand']);
    expect(await requestsOf(() => registry.moveToRoom(alice.connectionId, 'kitchen'))).toEqual(['UpdateItemCommand']);
    expect(await requestsOf(() => registry.listIdle(now))).toEqual([]);
    expect(await requestsOf(() => registry.remove(alice.connectionId))).toEqual(['DeleteItemCommand', 'DeleteItemCommand']);
    expect(await requestsOf(() => registry.remove(alice.connectionId))).toEqual(['DeleteItemCommand']);
  });

  it('marks a live connection greeted, keeps the mark through its removal, and marks nothing once it is gone', async () => {
    const alice = record('alice');
    await registry.add(alice);
    expect(await registry.get(alice.connectionId)).not.toHaveProperty('greeted');
    expect(await registry.markGreeted(alice.connectionId)).toMatchObject({ connectionId: alice.connectionId, clientId: 'alice', greeted: true });
    expect(await registry.get(alice.connectionId)).toMatchObject({ greeted: true });
    expect(await registry.remove(alice.connectionId)).toMatchObject({ greeted: true });
    expect(await registry.markGreeted(alice.connectionId)).toBeUndefined();
    // The conditional update did not bring the item back.
    expect(await rawItem(`conn#${alice.connectionId}`)).toBeUndefined();
  });

  it('hands the mark of a greeted stale connection to the one that resumes its session', async () => {
    const stale = { ...record('alice'), session: 'first-session' };
    await registry.add(stale);
    await registry.markGreeted(stale.connectionId);
    const resumed = { ...record('alice'), session: 'first-session', greeted: true };
    expect(await registry.replace(resumed, stale.connectionId)).toMatchObject({ greeted: true });
    expect(await registry.get(resumed.connectionId)).toMatchObject({ greeted: true });
  });

  it('lists a room past one BatchGetItem with each record as the table holds it, the index holding only ids', async () => {
    const members = Array.from({ length: 130 }, (_, i) => record(`member-${i}`, 'hall'));
    for (const member of members) expect(await registry.add(member)).toBe(true);
    now += 5_000;
    const active = members[77]!;
    expect((await registry.touch(active.connectionId, now, LIMIT))?.admitted).toBe(true);

    // Whole index items, through a client of its own: the registry never asks for them (see the check of its Queries below).
    const raw = dynamoClient(dynalite.endpoint);
    const { Items } = await raw.send(new QueryCommand({ TableName: tableName, IndexName: ROOM_INDEX, KeyConditionExpression: 'room = :room', ExpressionAttributeValues: { ':room': { S: 'hall' } } }));
    raw.destroy();
    expect(Items).toHaveLength(130);
    // The local store keeps only what the template projects, as DynamoDB does.
    expect(new Set(Items!.flatMap((item) => Object.keys(item)))).toEqual(new Set(['pk', 'room', 'connectionId', TTL_ATTRIBUTE]));

    const listed = await registry.listRoom('hall');
    expect(listed.map((member) => member.connectionId).sort()).toEqual(members.map((member) => member.connectionId).sort());
    const listedActive = listed.find((member) => member.connectionId === active.connectionId)!;
    expect(listedActive).toEqual({ ...active, lastActiveAt: now, rate: { tat: now + 1000 / LIMIT.perSecond, strikes: 0 } });
    expect(await registry.findByClientId(active.clientId)).toEqual(listedActive);
  });

  it('replaces with three writes, loses a race with one, and undoes itself when the stale connection left halfway', async () => {
    const stale = record('alice');
    await registry.add(stale);
    const resumed = { ...record('alice'), session: 'first-session' };
    const rival = record('alice');
    expect(await requestsOf(() => registry.replace(resumed, stale.connectionId))).toEqual(['UpdateItemCommand', 'PutItemCommand', 'DeleteItemCommand']);
    expect(await requestsOf(() => registry.replace(rival, stale.connectionId))).toEqual(['UpdateItemCommand']);
    expect((await rawItem(`conn#${resumed.connectionId}`))?.session).toEqual({ S: 'first-session' });

    // Its $disconnect deleted the connection but not yet the claim when the replace came.
    const leaving = record('bob');
    await registry.add(leaving);
    await client.send(new DeleteItemCommand({ TableName: tableName, Key: { pk: { S: `conn#${leaving.connectionId}` } } }));
    const late = record('bob');
    expect(await registry.replace(late, leaving.connectionId)).toBeUndefined();
    expect(await rawItem(`conn#${late.connectionId}`)).toBeUndefined();
    expect(await rawItem('client#bob')).toBeUndefined();
    expect(await registry.add(record('bob'))).toBe(true);
  });

  it('counts a room past listUpTo without its expired items, however the pages fall', async () => {
    const members: ConnectionRecord[] = [];
    for (let i = 0; i < 6; i++) {
      members.push(record(`m${i}`));
      await registry.add(members[i]!);
    }
    // Expired but not yet deleted by TTL, as DynamoDB may keep them for days.
    for (const expired of [members[0]!, members[3]!]) {
      await client.send(new UpdateItemCommand({ TableName: tableName, Key: { pk: { S: `conn#${expired.connectionId}` } }, UpdateExpression: 'SET expiresAt = :past', ExpressionAttributeValues: { ':past': { N: '1' } } }));
    }
    for (const listUpTo of [0, 1, 2, 3]) expect(await registry.countRoomAndList('lobby', listUpTo)).toEqual({ count: 4 });
    const { count, connectionIds } = await registry.countRoomAndList('lobby', 4);
    expect({ count, ids: [...connectionIds!].sort() }).toEqual({ count: 4, ids: [1, 2, 4, 5].map((i) => members[i]!.connectionId).sort() });
  });

  it('lists a room it found large again once it has shrunk to what presence lists', async () => {
    const members: ConnectionRecord[] = [];
    for (let i = 0; i < 4; i++) {
      members.push(record(`m${i}`));
      await registry.add(members[i]!);
    }
    expect(await registry.countRoomAndList('lobby', 2)).toEqual({ count: 4 });
    expect(await registry.countRoomAndList('lobby', 2)).toEqual({ count: 4 });
    await registry.remove(members[0]!.connectionId);
    await registry.remove(members[1]!.connectionId);
    const ids = [members[2]!.connectionId, members[3]!.connectionId].sort();
    const shrunk = await registry.countRoomAndList('lobby', 2);
    expect({ count: shrunk.count, ids: shrunk.connectionIds && [...shrunk.connectionIds].sort() }).toEqual({ count: 2, ids });
    // Small again: one Query lists it.
    expect(await requestsOf(() => registry.countRoomAndList('lobby', 2))).toEqual(['QueryCommand']);
  });

  it('touches with a single UpdateItem when the bucket has room, and one more write inside a burst', async () => {
    const alice = record('alice');
    await registry.add(alice);
    // Quiet: a frame a second is far under 10/s.
    for (let i = 1; i <= 3; i++) {
      now += 1000;
      expect(await requestsOf(() => registry.touch(alice.connectionId, now, LIMIT))).toEqual(['UpdateItemCommand']);
    }
    // Burst: the second frame at the same instant finds tat in the future.
    const burst = await requestsOf(() => registry.touch(alice.connectionId, now, LIMIT));
    expect(burst.filter((name) => name === 'UpdateItemCommand')).toHaveLength(2);
    // dynalite cannot return the old item with a failed condition; DynamoDB can, saving this read.
    expect(burst.filter((name) => name !== 'UpdateItemCommand')).toEqual(['GetItemCommand']);
  });

  it('refreshes expiresAt only once less than half the TTL is left, on both items', async () => {
    const alice = record('alice');
    await registry.add(alice);
    now += (TTL_SECONDS / 2 - 10) * 1000;
    expect(await requestsOf(() => registry.touch(alice.connectionId, now, LIMIT))).toEqual(['UpdateItemCommand']);
    now += 20_000;
    expect(await requestsOf(() => registry.touch(alice.connectionId, now, LIMIT))).toEqual(['UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    const extended = String(Math.floor(now / 1000) + TTL_SECONDS);
    expect((await rawItem(`conn#${alice.connectionId}`))?.[TTL_ATTRIBUTE]).toEqual({ N: extended });
    expect((await rawItem('client#alice'))?.[TTL_ATTRIBUTE]).toEqual({ N: extended });
    now += 1000;
    expect(await requestsOf(() => registry.touch(alice.connectionId, now, LIMIT))).toEqual(['UpdateItemCommand']);
  });

  it('treats expired entries as gone before DynamoDB deletes them, and frees their clientId', async () => {
    const alice = record('alice', 'kitchen');
    await registry.add(alice);
    now += TTL_SECONDS * 1000;
    expect(await rawItem(`conn#${alice.connectionId}`)).toBeDefined();
    expect(await registry.get(alice.connectionId)).toBeUndefined();
    expect(await registry.findByClientId('alice')).toBeUndefined();
    expect(await registry.listRoom('kitchen')).toEqual([]);
    expect(await registry.countRoom('kitchen')).toBe(0);
    expect(await registry.touch(alice.connectionId, now, LIMIT)).toBeUndefined();
    expect(await registry.moveToRoom(alice.connectionId, 'lobby')).toBeUndefined();
    const successor = record('alice', 'kitchen');
    expect(await registry.add(successor)).toBe(true);
    expect((await registry.findByClientId('alice'))?.connectionId).toBe(successor.connectionId);
    // The old connection's late $disconnect must not release the successor's claim.
    expect(await registry.remove(alice.connectionId)).toBeUndefined();
    expect(await registry.add(record('alice'))).toBe(false);
  });

  it('keeps clientId claims out of the room and clientId indexes', async () => {
    await registry.add(record('alice', 'lobby'));
    expect(await rawItem('client#alice')).toEqual({
      pk: { S: 'client#alice' },
      owner: expect.objectContaining({ S: expect.any(String) }),
      [TTL_ATTRIBUTE]: expect.objectContaining({ N: expect.any(String) }),
    });
    expect(await registry.countRoom('lobby')).toBe(1);
  });

  it('claims the nameKey, so one item keeps out every look-alike of a clientId', async () => {
    const mike = record('mike');
    expect(mike.nameKey).toBe('rnike');
    await registry.add(mike);
    expect((await rawItem('client#rnike'))?.owner).toEqual({ S: mike.connectionId });
    expect(await rawItem('client#mike')).toBeUndefined();
    expect(await registry.add(record('rnike'))).toBe(false);
  });

  it('gives back the clientId claim of an item stored without a nameKey', async () => {
    const old = record('mike');
    // As a registry before nameKeys wrote it: no nameKey attribute, the claim under the clientId.
    const expiresAt = { N: String(Math.floor(now / 1000) + TTL_SECONDS) };
    await client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: 'client#mike' }, owner: { S: old.connectionId }, [TTL_ATTRIBUTE]: expiresAt } }));
    await client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: {
          pk: { S: `conn#${old.connectionId}` }, connectionId: { S: old.connectionId }, clientId: { S: 'mike' }, room: { S: 'lobby' },
          connectedAt: { N: String(now) }, lastActiveAt: { N: String(now) }, sourceIp: { S: '' }, identity: { S: '{}' },
          tat: { N: String(now) }, strikes: { N: '0' }, [TTL_ATTRIBUTE]: expiresAt,
        },
      }),
    );
    expect((await registry.remove(old.connectionId))?.clientId).toBe('mike');
    expect(await rawItem('client#mike')).toBeUndefined();
  });
});

describe('requests sent by the registry suite', () => {
  it('never included a Scan', () => {
    expectNoScan(sentBySuite, 'QueryCommand');
  });

  it('read through each index only what the template projects into it', async () => {
    const projections = projectedAttributes(await loadTemplate());
    for (const index of [ROOM_INDEX, CLIENT_ID_INDEX]) expect(queriesSent.filter((query) => query.IndexName === index).length, index).toBeGreaterThan(10);
    expect(queriesSent.flatMap((query) => projectionProblems(query, projections))).toEqual([]);
  });
});

describe('the check of index reads against projections', () => {
  it('names a Query that reads whole items, or an attribute the index does not project', async () => {
    const projections = projectedAttributes(await loadTemplate());
    const byRoom = { TableName: 't', IndexName: ROOM_INDEX, KeyConditionExpression: '#room = :key', ExpressionAttributeNames: { '#room': 'room' } };
    expect(projectionProblems(byRoom, projections)).toEqual([expect.stringMatching(/^byRoom: reads whole items/)]);
    expect(projectionProblems({ ...byRoom, ProjectionExpression: 'connectionId, lastActiveAt' }, projections)).toEqual([
      'byRoom: ProjectionExpression reads lastActiveAt, which the index does not project',
    ]);
    expect(projectionProblems({ ...byRoom, Select: 'COUNT', FilterExpression: 'tat <= :now AND attribute_exists(#s)', ExpressionAttributeNames: { ...byRoom.ExpressionAttributeNames, '#s': 'strikes' } }, projections)).toEqual([
      'byRoom: FilterExpression reads tat, which the index does not project',
      'byRoom: FilterExpression reads strikes, which the index does not project',
    ]);
    expect(projectionProblems({ ...byRoom, ProjectionExpression: '#c', ExpressionAttributeNames: { ...byRoom.ExpressionAttributeNames, '#c': 'connectionId' } }, projections)).toEqual([]);
  });
});
