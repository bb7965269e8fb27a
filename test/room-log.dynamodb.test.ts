import { DeleteItemCommand, GetItemCommand, PutItemCommand, ScanCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CHUNK_ENTRIES, DynamoDbRoomLog, HEAD_TTL_SECONDS, MAX_ENTRY_BYTES } from '../registries/dynamodb-room-log.js';
import { TTL_ATTRIBUTE } from '../registries/dynamodb-registry.js';
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

  /** Appends until the head moves its entries to a chunk; returns the seq that did it. */
  const appendUntilMoved = async (room: string, text: string): Promise<number> => {
    for (let i = 0; i < 2 * CHUNK_ENTRIES; i++) {
      const requests = await requestsOf(() => log.append(room, { data: frame(`${text} ${i}`, 200), at: now }));
      if (requests.length > 1) return log.latest(room);
    }
    throw new Error('the head never moved its entries');
  };

  it('appends with one UpdateItem, and the writer that fills the head moves it to a chunk with two more', async () => {
    expect(await requestsOf(() => log.append('lobby', { data: frame('first'), at: now }))).toEqual(['UpdateItemCommand']);
    const appends: string[][] = [];
    for (let i = 0; i < 30; i++) appends.push(await requestsOf(() => log.append('lobby', { data: frame(`m${i}`, 200), at: now })));
    const moves = appends.filter((requests) => requests.length > 1);
    expect(moves.length).toBeGreaterThan(0);
    for (const requests of moves) expect(requests).toEqual(['UpdateItemCommand', 'PutItemCommand', 'UpdateItemCommand']);
    expect(appends.filter((requests) => requests.length === 1).every((requests) => requests[0] === 'UpdateItemCommand')).toBe(true);
    expect(await requestsOf(() => log.latest('lobby'))).toEqual(['GetItemCommand']);
  });

  it('replays from the head with one GetItem, and from older chunks with one BatchGetItem more', async () => {
    const moved = await appendUntilMoved('lobby', 'a');
    for (let i = 0; i < 3; i++) await log.append('lobby', { data: frame(`after ${i}`), at: now });
    const latest = await log.latest('lobby');

    sent.length = 0;
    let read = await log.read('lobby', latest - 2, now);
    expect(sent).toEqual(['GetItemCommand']);
    expect(read.ok && read.entries.map((entry) => entry.seq)).toEqual([latest - 1, latest]);

    sent.length = 0;
    read = await log.read('lobby', 0, now);
    expect(sent).toEqual(['GetItemCommand', 'BatchGetItemCommand']);
    expect(read).toMatchObject({ ok: true, latest });
    expect(read.ok && read.entries.map((entry) => entry.seq)).toEqual(Array.from({ length: latest }, (_, i) => i + 1));
    expect(read.ok && read.entries[0]!.data).toBe(frame('a 0', 200));
    expect(moved).toBeLessThan(latest);
  });

  it('lays out a head and chunk items with TTLs, and nothing the registry indexes', async () => {
    await appendUntilMoved('lobby', 'a');
    await log.append('lobby', { data: frame('to bob'), at: now, to: 'bob' });
    const head = await rawItem('log#lobby');
    expect(head).toMatchObject({ pk: { S: 'log#lobby' }, [TTL_ATTRIBUTE]: { N: String(Math.floor(now / 1000) + HEAD_TTL_SECONDS) } });
    expect(head?.room).toBeUndefined();
    expect(head?.clientId).toBeUndefined();
    expect(head?.recent?.L?.at(-1)).toEqual({ M: { d: { S: frame('to bob') }, a: { N: String(now) }, t: { S: 'bob' } } });
    const [chunkFirst] = head!.chunks!.L!.map((value) => Number(value.N));
    expect(chunkFirst).toBe(1);
    const chunk = await rawItem('log#lobby#1');
    expect(chunk?.first).toEqual({ N: '1' });
    expect(chunk?.entries?.L?.length).toBe(Number(head!.first!.N) - 1);
    // TTL deletes a chunk once its newest entry is too old to replay.
    expect(chunk?.[TTL_ATTRIBUTE]).toEqual({ N: String(Math.ceil((now + LIMITS.maxAgeMs) / 1000) + 60) });
    // The test looks at the whole table; the log itself never Scans (see below).
    const scanned = await dynamoClient(dynalite.endpoint).send(new ScanCommand({ TableName: tableName }));
    expect(scanned.Items?.every((item) => item.room === undefined && item.clientId === undefined)).toBe(true);
  });

  it('keeps the head under twice chunkBytes and forgets chunks beyond maxEntries', async () => {
    const at = now;
    for (let i = 0; i < 400; i++) await log.append('busy', { data: frame(`m${i}`, 150), at });
    const head = await rawItem('log#busy');
    expect(Number(head!.bytes!.N)).toBeLessThan(2 * CHUNK_BYTES);
    const chunks = head!.chunks!.L!.map((value) => Number(value.N));
    // The oldest chunk named is the last one that still holds part of the newest maxEntries.
    expect(400 - chunks[1]! + 1).toBeLessThan(LIMITS.maxEntries);
    expect(400 - chunks[0]! + 1).toBeGreaterThanOrEqual(LIMITS.maxEntries);
    const recent = await log.read('busy', 400 - LIMITS.maxEntries, at);
    expect(recent.ok && recent.entries.map((entry) => entry.seq)).toEqual(Array.from({ length: LIMITS.maxEntries }, (_, i) => 301 + i));
    expect(await log.read('busy', 0, at)).toEqual({ ok: false, latest: 400 });
  });

  it('gives distinct seqs in one order to appends racing from several writers', async () => {
    const writers = Array.from({ length: 4 }, () => new DynamoDbRoomLog({ client: dynamoClient(dynalite.endpoint), tableName, limits: { ...LIMITS, maxEntries: 1000 }, chunkBytes: CHUNK_BYTES }));
    const sentFrames = Array.from({ length: 120 }, (_, i) => frame(`race ${i}`, 100));
    const seqs = await Promise.all(sentFrames.map((data, i) => writers[i % writers.length]!.append('race', { data, at: now })));
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    const read = await log.read('race', 0, now);
    expect(read.ok && read.entries.map((entry) => entry.data)).toEqual(seqs.map((_, i) => sentFrames[seqs.indexOf(i + 1)]));
  });

  it('moves a full head left behind by a writer that died before its copy, then appends', async () => {
    // As a writer leaves it that appended to twice the bound and stopped before copying.
    const recent = Array.from({ length: 2 * CHUNK_ENTRIES }, (_, i) => ({ M: { d: { S: frame(`left ${i}`) }, a: { N: String(now) } } }));
    const bytes = recent.reduce((total, entry) => total + Buffer.byteLength(entry.M.d.S) + 32, 0);
    await client.send(new PutItemCommand({
      TableName: tableName,
      Item: { pk: { S: 'log#stuck' }, seq: { N: String(recent.length) }, first: { N: '1' }, recent: { L: recent }, bytes: { N: String(bytes) }, chunks: { L: [] }, [TTL_ATTRIBUTE]: { N: String(Math.floor(now / 1000) + 60) } },
    }));
    const requests = await requestsOf(async () => expect(await log.append('stuck', { data: frame('next'), at: now })).toBe(recent.length + 1));
    // Refused twice (the second time after giving a copy by someone else a moment); dynalite returns no
    // item with the failure, so it is read; copied and cut; appended.
    expect(requests).toEqual(['UpdateItemCommand', 'UpdateItemCommand', 'GetItemCommand', 'PutItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    const read = await log.read('stuck', 0, now);
    expect(read.ok && read.entries.map((entry) => entry.data)).toEqual([...recent.map((entry) => entry.M.d.S), frame('next')]);
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

  it('reads a negative seq and one past a lost head as gaps', async () => {
    await log.append('lobby', { data: frame('one'), at: now });
    await log.append('lobby', { data: frame('two'), at: now });
    expect(await log.read('lobby', -1, now)).toEqual({ ok: false, latest: 2 });
    await client.send(new DeleteItemCommand({ TableName: tableName, Key: { pk: { S: 'log#lobby' } } }));
    expect(await log.latest('lobby')).toBe(0);
    expect(await log.read('lobby', 2, now)).toEqual({ ok: false, latest: 0 });
    expect(await log.read('lobby', 0, now)).toEqual({ ok: true, entries: [], latest: 0 });
  });
});

describe('requests sent by the room log', () => {
  it('never included a Scan', () => {
    expect(sentByFile).toContain('UpdateItemCommand');
    expect(sentByFile).toContain('BatchGetItemCommand');
    expect(sentByFile.some((name) => /scan/i.test(name))).toBe(false);
  });
});
