import { DeleteItemCommand, GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CHUNK_ENTRIES, DynamoDbRoomLog, MAX_ENTRY_BYTES, SLOT_TTL_SECONDS } from '../registries/dynamodb-room-log.js';
import { DynamoDbRegistry, TTL_ATTRIBUTE } from '../registries/dynamodb-registry.js';
import type { ConnectionRecord } from '../shared/registry.js';
import type { RoomLogLimits } from '../shared/room-log.js';
import { roomLogSuite } from './room-log-suite.js';
import { createConnectionsTable, dynamoClient, startDynalite, type RunningDynalite } from './support/dynalite.js';

const LIMITS: RoomLogLimits = { maxEntries: 100, maxAgeMs: 300_000 };
const CHUNK_BYTES = 2048;

let dynalite: RunningDynalite;
/** Every command any log in this file sent. */
const sentByFile: string[] = [];

beforeAll(async () => {
  dynalite = await startDynalite();
});
afterAll(async () => {
  await dynalite?.stop();
});

/** A chat frame of about `bytes` bytes. */
const frame = (text: string, bytes = 0) => JSON.stringify({ type: 'chat', message: text.padEnd(bytes, '.') });

roomLogSuite('DynamoDbRoomLog on dynalite', async (limits, clock) => {
  const client = dynamoClient(dynalite.endpoint, sentByFile);
  const table = await createConnectionsTable(client);
  return {
    log: new DynamoDbRoomLog({ client, tableName: table.tableName, limits, clock }),
    cleanup: async () => {
      await table.drop();
      client.destroy();
    },
  };
});

describe('DynamoDbRoomLog', () => {
  let client: DynamoDBClient;
  let tableName: string;
  let sent: string[];
  let now: number;
  let log: DynamoDbRoomLog;

  beforeEach(async () => {
    sent = [];
    client = dynamoClient(dynalite.endpoint, sent);
    const table = await createConnectionsTable(client);
    tableName = table.tableName;
    now = Date.UTC(2030, 0, 1, 12);
    log = new DynamoDbRoomLog({ client, tableName, limits: LIMITS, chunkBytes: CHUNK_BYTES, clock: () => now });
    sent.length = 0;
    return async () => {
      sentByFile.push(...sent);
      await table.drop();
      client.destroy();
    };
  });

  const rawItem = async (pk: string) => (await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: pk } }, ConsistentRead: true }))).Item;

  const requestsOf = async (action: () => Promise<unknown>): Promise<string[]> => {
    sent.length = 0;
    await action();
    return [...sent];
  };

  /** Another container's log and registry over the same table, the log told what the registry's room Queries see. */
  const container = (options: { slots?: number } = {}) => {
    const containerSent: string[] = [];
    const containerClient = dynamoClient(dynalite.endpoint, containerSent);
    const containerLog = new DynamoDbRoomLog({ client: containerClient, tableName, limits: LIMITS, chunkBytes: CHUNK_BYTES, clock: () => now, ...options });
    const registry = new DynamoDbRegistry({ client: containerClient, tableName, ttlSeconds: 7200, clock: () => now, roomLog: containerLog });
    const requestsOf = async (action: () => Promise<unknown>): Promise<string[]> => {
      containerSent.length = 0;
      await action();
      return [...containerSent];
    };
    return { log: containerLog, registry, requestsOf };
  };

  const member = (connectionId: string, room: string): ConnectionRecord => ({
    connectionId,
    clientId: connectionId,
    nameKey: connectionId,
    room,
    connectedAt: now,
    lastActiveAt: now,
    sourceIp: '127.0.0.1',
    identity: {},
    rate: { tat: 0, strikes: 0 },
  });

  it('starts a room with a read of its slots and a PutItem, then appends with one UpdateItem and starts each next slot with one PutItem', async () => {
    expect(await requestsOf(() => log.append('lobby', { data: frame('first'), at: now }))).toEqual(['BatchGetItemCommand', 'PutItemCommand']);
    const appends: string[][] = [];
    for (let i = 0; i < 30; i++) appends.push(await requestsOf(() => log.append('lobby', { data: frame(`m${i}`, 200), at: now })));
    const starts = appends.filter((requests) => requests[0] === 'PutItemCommand');
    expect(starts.length).toBeGreaterThan(1);
    for (const requests of appends) expect(requests.length).toBe(1);
    expect(appends.filter((requests) => requests[0] !== 'PutItemCommand').every((requests) => requests[0] === 'UpdateItemCommand')).toBe(true);
    expect(await requestsOf(() => log.latest('lobby'))).toEqual(['BatchGetItemCommand']);
    expect(await log.latest('lobby')).toBe(31);
  });

  it("learns where the log stands from the registry's room Query: a chat's Query and append are its only requests to the table", async () => {
    const writer = container();
    await writer.registry.add(member('a', 'lobby'));
    await writer.registry.add(member('b', 'lobby'));
    const chat = (text: string) => async () => {
      expect(await writer.registry.listRoomIds('lobby')).toEqual(expect.arrayContaining(['a', 'b']));
      return writer.log.append('lobby', { data: frame(text, 200), at: now });
    };
    // A room without a log: the Query says so, and the first append starts slot 0.
    expect(await writer.requestsOf(chat('first'))).toEqual(['QueryCommand', 'PutItemCommand']);
    // A container that never wrote this room, as every cold Lambda container is.
    const fresh = container();
    const requests: string[][] = [];
    for (let i = 0; i < 40; i++) {
      const { registry, log: freshLog, requestsOf: freshRequests } = i % 2 === 0 ? fresh : writer;
      requests.push(
        await freshRequests(async () => {
          expect((await registry.listRoomIds('lobby')).sort()).toEqual(['a', 'b']);
          await freshLog.append('lobby', { data: frame(`m${i}`, 200), at: now });
        }),
      );
    }
    for (const sequence of requests) expect(sequence).toEqual(['QueryCommand', expect.stringMatching(/^(UpdateItemCommand|PutItemCommand)$/)]);
    expect(requests.filter((sequence) => sequence[1] === 'PutItemCommand').length).toBeGreaterThan(1);
    // The slots are in the index, but never counted or listed as members.
    expect(await writer.registry.countRoom('lobby')).toBe(2);
    expect((await writer.registry.listRoom('lobby')).map((record) => record.connectionId).sort()).toEqual(['a', 'b']);
    expect(await writer.registry.countRoomAndList('lobby', 1)).toEqual({ count: 2 });
    expect(await writer.registry.countRoomAndList('lobby', 5)).toEqual({ count: 2, connectionIds: expect.arrayContaining(['a', 'b']) });
    const read = await log.read('lobby', 0, now);
    expect(read.ok && read.entries.map((entry) => JSON.parse(entry.data).message.replace(/\.+$/, ''))).toEqual(['first', ...Array.from({ length: 40 }, (_, i) => `m${i}`)]);
  });

  it('lays out slots with room, a run of entries and a TTL a day after their last write', async () => {
    for (let i = 0; i < 20; i++) await log.append('lobby', { data: frame(`m${i}`, 200), at: now });
    await log.append('lobby', { data: frame('to bob'), at: now, to: 'bob' });
    const first = await rawItem('log#lobby#0');
    expect(first).toMatchObject({ room: { S: 'lobby' }, first: { N: '1' }, [TTL_ATTRIBUTE]: { N: String(Math.floor(now / 1000) + SLOT_TTL_SECONDS) } });
    expect(first?.clientId).toBeUndefined();
    expect(first?.connectionId).toBeUndefined();
    expect(first?.entries?.L?.length).toBe(Number(first!.seq!.N) - Number(first!.first!.N) + 1);
    // Full once it holds chunkBytes: the run it ends with has reached them, and none before it had.
    expect(Number(first!.bytes!.N)).toBeGreaterThanOrEqual(CHUNK_BYTES);
    expect(Number(first!.bytes!.N) - (200 + 32 + 30)).toBeLessThan(CHUNK_BYTES);
    const second = await rawItem('log#lobby#1');
    expect(Number(second!.first!.N)).toBe(Number(first!.seq!.N) + 1);
    const slots = await Promise.all([0, 1, 2, 3].map((index) => rawItem(`log#lobby#${index}`)));
    const last = slots.find((item) => item?.seq?.N === '21');
    expect(last?.entries?.L?.at(-1)).toEqual({ M: { d: { S: frame('to bob') }, a: { N: String(now) }, t: { S: 'bob' } } });
  });

  it('starts the next slot after CHUNK_ENTRIES entries, however small', async () => {
    const roomy = new DynamoDbRoomLog({ client, tableName, limits: LIMITS, chunkBytes: 64 * 1024, clock: () => now });
    for (let i = 0; i < CHUNK_ENTRIES + 5; i++) await roomy.append('tiny', { data: frame(`${i}`), at: now });
    expect((await rawItem('log#tiny#0'))?.entries?.L?.length).toBe(CHUNK_ENTRIES);
    expect((await rawItem('log#tiny#1'))?.first).toEqual({ N: String(CHUNK_ENTRIES + 1) });
  });

  it('reads a replay with one BatchGetItem, across slots', async () => {
    for (let i = 0; i < 30; i++) await log.append('lobby', { data: frame(`m${i}`, 200), at: now });
    sent.length = 0;
    const read = await log.read('lobby', 0, now);
    expect(sent).toEqual(['BatchGetItemCommand']);
    expect(read.ok && read.entries.map((entry) => entry.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(read.ok && read.entries[0]!.data).toBe(frame('m0', 200));
    const tail = await log.read('lobby', 27, now);
    expect(tail.ok && tail.entries.map((entry) => entry.seq)).toEqual([28, 29, 30]);
  });

  it('reads for a short replay, with a current view, only the slots that reach back to it, the open one and the next', async () => {
    const keysAsked: number[] = [];
    client.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { RequestItems?: Record<string, { Keys: unknown[] }> };
        if (input.RequestItems) keysAsked.push(input.RequestItems[tableName]!.Keys.length);
        return next(args);
      },
      { step: 'initialize', name: 'countBatchKeys' },
    );
    for (let i = 0; i < 40; i++) await log.append('lobby', { data: frame(`m${i}`, 200), at: now });
    keysAsked.length = 0;
    const tail = await log.read('lobby', 38, now);
    expect(tail.ok && tail.entries.map((entry) => entry.seq)).toEqual([39, 40]);
    expect(keysAsked).toEqual([2]);
    expect(await log.latest('lobby')).toBe(40);
    expect(keysAsked).toEqual([2, 2]);
    // From the start: every slot the view has, and the one after the open one.
    const whole = await log.read('lobby', 0, now);
    expect(whole.ok && whole.entries.length).toBe(40);
    expect(keysAsked[2]).toBeLessThan(10);
    // Without a current view, all of them.
    now += 1001;
    expect((await log.read('lobby', 38, now)).ok).toBe(true);
    expect(keysAsked[3]).toBe(40);
  });

  it('a replay whose view is out of date follows the slots started since, and misses nothing', async () => {
    const reader = container();
    await reader.log.append('lobby', { data: frame('mine'), at: now });
    for (let i = 0; i < 20; i++) await log.append('lobby', { data: frame(`o${i}`, 200), at: now });
    const requests = await reader.requestsOf(async () => {
      const read = await reader.log.read('lobby', 0, now);
      expect(read).toMatchObject({ ok: true, latest: 21 });
      expect(read.ok && read.entries.map((entry) => entry.seq)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    });
    // Slot 0 (its view's open slot) and slot 1 in one read; slot 2, started since, in another; slot 3 holds nothing.
    expect(requests).toEqual(['BatchGetItemCommand', 'BatchGetItemCommand', 'BatchGetItemCommand']);
    expect(await reader.log.latest('lobby')).toBe(21);
  });

  it('a replay whose view misses the slot it starts in reads every slot, and misses nothing', async () => {
    for (let i = 0; i < 30; i++) await log.append('lobby', { data: frame(`m${i}`, 200), at: now });
    const reader = container();
    // As a Query that met only the open slot would leave the view, were it taken for the whole room.
    const open = await rawItem('log#lobby#3');
    expect(Number(open!.seq!.N)).toBe(30);
    reader.log.sawSlots('lobby', [open!], true);
    const requests = await reader.requestsOf(async () => {
      const read = await reader.log.read('lobby', 0, now);
      expect(read.ok && read.entries.map((entry) => entry.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    });
    expect(requests).toEqual(['BatchGetItemCommand', 'BatchGetItemCommand']);
  });

  it('takes a view from a Query that read only part of the room as a guess, and reads the slots before appending', async () => {
    await log.append('lobby', { data: frame('one'), at: now });
    const writer = container();
    writer.log.sawSlots('lobby', [(await rawItem('log#lobby#0'))!], false);
    expect(await writer.requestsOf(() => writer.log.append('lobby', { data: frame('two'), at: now }))).toEqual(['BatchGetItemCommand', 'UpdateItemCommand']);
  });

  it('goes round the ring: the oldest run is overwritten, reads reach back to maxEntries at most', async () => {
    const ring = new DynamoDbRoomLog({ client, tableName, limits: { maxEntries: 1000, maxAgeMs: 300_000 }, chunkBytes: 1024, slots: 3, clock: () => now });
    // About 4 entries of 230 bytes fill a slot of 1 KiB: 60 go round three slots several times.
    for (let i = 1; i <= 60; i++) expect(await ring.append('busy', { data: frame(`m${i}`, 200), at: now })).toBe(i);
    const slots = await Promise.all([0, 1, 2].map((index) => rawItem(`log#busy#${index}`)));
    const runs = slots.map((item) => ({ first: Number(item!.first!.N), seq: Number(item!.seq!.N) })).sort((a, b) => a.first - b.first);
    expect(runs[2]!.seq).toBe(60);
    expect(runs[1]!.first).toBe(runs[0]!.seq + 1);
    expect(runs[2]!.first).toBe(runs[1]!.seq + 1);
    const oldest = runs[0]!.first;
    const kept = await ring.read('busy', oldest - 1, now);
    expect(kept.ok && kept.entries.map((entry) => entry.seq)).toEqual(Array.from({ length: 61 - oldest }, (_, i) => oldest + i));
    expect(await ring.read('busy', oldest - 2, now)).toEqual({ ok: false, latest: 60 });
    // By count: maxEntries reaches less far back than the ring does.
    const counted = new DynamoDbRoomLog({ client, tableName, limits: { maxEntries: 3, maxAgeMs: 300_000 }, chunkBytes: 1024, slots: 3, clock: () => now });
    expect((await counted.read('busy', 57, now)).ok).toBe(true);
    expect(await counted.read('busy', 56, now)).toEqual({ ok: false, latest: 60 });
  });

  it('gives distinct seqs in one order to appends racing from several writers', async () => {
    const writers = Array.from({ length: 4 }, () => new DynamoDbRoomLog({ client: dynamoClient(dynalite.endpoint), tableName, limits: { ...LIMITS, maxEntries: 1000 }, chunkBytes: CHUNK_BYTES, clock: () => now }));
    const sentFrames = Array.from({ length: 120 }, (_, i) => frame(`race ${i}`, 100));
    const seqs = await Promise.all(sentFrames.map((data, i) => writers[i % writers.length]!.append('race', { data, at: now })));
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    const read = await writers[0]!.read('race', 0, now);
    expect(read.ok && read.entries.map((entry) => entry.data)).toEqual(seqs.map((_, i) => sentFrames[seqs.indexOf(i + 1)]));
  });

  it('a writer whose view is out of date fails its condition and walks forward, slot by slot, to where the log now stands', async () => {
    const stale = container();
    for (let i = 0; i < 3; i++) await stale.log.append('lobby', { data: frame(`s${i}`, 200), at: now });
    // Another container fills the open slot and the next, and starts a third.
    for (let i = 0; i < 20; i++) await log.append('lobby', { data: frame(`o${i}`, 200), at: now });
    const requests = await stale.requestsOf(async () => expect(await stale.log.append('lobby', { data: frame('late'), at: now })).toBe(24));
    // Slot 0 is full (dynalite returns no item with the failure: a GetItem), slot 1 already started and full, slot 2 open.
    expect(requests).toEqual(['UpdateItemCommand', 'GetItemCommand', 'PutItemCommand', 'GetItemCommand', 'PutItemCommand', 'GetItemCommand', 'UpdateItemCommand']);
    const read = await log.read('lobby', 22, now);
    expect(read.ok && read.entries.map((entry) => entry.data)).toEqual([frame('o19', 200), frame('late')]);
  });

  it('numbers a room quiet for longer than its slots live from 1 again, and reads a seq from before as a gap', async () => {
    for (let i = 0; i < 12; i++) await log.append('quiet', { data: frame(`m${i}`, 200), at: now });
    now += (SLOT_TTL_SECONDS + 1) * 1000;
    // DynamoDB's TTL deletes late; the expired slots are still there.
    expect(await rawItem('log#quiet#0')).toBeDefined();
    expect(await log.latest('quiet')).toBe(0);
    expect(await log.read('quiet', 12, now)).toEqual({ ok: false, latest: 0 });
    expect(await log.append('quiet', { data: frame('again'), at: now })).toBe(1);
    expect(await log.append('quiet', { data: frame('and again'), at: now })).toBe(2);
    const read = await log.read('quiet', 0, now);
    expect(read.ok && read.entries.map((entry) => entry.data)).toEqual([frame('again'), frame('and again')]);
  });

  it('numbers a frame too large to keep, and reads a replay across it as a gap', async () => {
    await log.append('big', { data: frame('small'), at: now });
    await log.append('big', { data: frame('huge', MAX_ENTRY_BYTES + 1), at: now });
    await log.append('big', { data: frame('small again'), at: now });
    expect(await log.read('big', 0, now)).toEqual({ ok: false, latest: 3 });
    expect(await log.read('big', 1, now)).toEqual({ ok: false, latest: 3 });
    expect(await log.read('big', 2, now)).toMatchObject({ ok: true, entries: [{ seq: 3, data: frame('small again') }] });
  });

  it('stays under the item size limit with frames of 120 KB', async () => {
    const big = new DynamoDbRoomLog({ client, tableName, limits: LIMITS, chunkBytes: 64 * 1024, clock: () => now });
    for (let i = 1; i <= 12; i++) expect(await big.append('heavy', { data: frame(`heavy ${i}`, 120 * 1024), at: now })).toBe(i);
    const read = await big.read('heavy', 0, now);
    expect(read.ok && read.entries.map((entry) => entry.data.length)).toEqual(Array.from({ length: 12 }, (_, i) => frame(`heavy ${i + 1}`, 120 * 1024).length));
  });

  it('reads a negative seq and one past lost slots as gaps', async () => {
    await log.append('lobby', { data: frame('one'), at: now });
    await log.append('lobby', { data: frame('two'), at: now });
    expect(await log.read('lobby', -1, now)).toEqual({ ok: false, latest: 2 });
    await client.send(new DeleteItemCommand({ TableName: tableName, Key: { pk: { S: 'log#lobby#0' } } }));
    expect(await log.latest('lobby')).toBe(0);
    expect(await log.read('lobby', 2, now)).toEqual({ ok: false, latest: 0 });
    expect(await log.read('lobby', 0, now)).toEqual({ ok: true, entries: [], latest: 0 });
  });

  it('reads the slots again before appending when its view is older than a second', async () => {
    await log.append('lobby', { data: frame('one'), at: now });
    expect(await requestsOf(() => log.append('lobby', { data: frame('two'), at: now }))).toEqual(['UpdateItemCommand']);
    now += 1001;
    expect(await requestsOf(() => log.append('lobby', { data: frame('three'), at: now }))).toEqual(['BatchGetItemCommand', 'UpdateItemCommand']);
  });

  it('refuses a ring of fewer than 2 or more than the registry reads beside a room', () => {
    expect(() => new DynamoDbRoomLog({ client, tableName, limits: LIMITS, slots: 1 })).toThrow(RangeError);
    expect(() => new DynamoDbRoomLog({ client, tableName, limits: LIMITS, slots: 41 })).toThrow(RangeError);
  });
});

describe('requests sent by the room log', () => {
  it('never included a Scan', () => {
    expect(sentByFile).toContain('UpdateItemCommand');
    expect(sentByFile).toContain('BatchGetItemCommand');
    expect(sentByFile.some((name) => /scan/i.test(name))).toBe(false);
  });
});
