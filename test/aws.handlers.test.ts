/**
 * The AWS handlers imported from source and invoked directly with events
 * shaped like captured real ones (test/fixtures/aws-events), against dynalite
 * and the emulator's management API, next to real clients connected through
 * the emulator: so a handler's sends reach real sockets, and a connection the
 * emulator never opened answers 410 as a vanished one would in the cloud.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { ScanCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChatApp } from '../apps/chat/index.js';
import { createAwsHandlers } from '../functions/aws/index.js';
import { DynamoDbRegistry } from '../registries/dynamodb-registry.js';
import { nameKey } from '../shared/names.js';
import { freshRateState } from '../shared/rate-limit.js';
import { DYNALITE_REQUEST_CHANNEL } from '../scripts/emulator/dynamo.js';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import { dynamoClient } from './support/dynalite.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { handlerEnvironment, startAwsEmulator } from './support/emulator.js';
import connectFixture from './fixtures/aws-events/connect.json' with { type: 'json' };
import disconnectFixture from './fixtures/aws-events/disconnect.json' with { type: 'json' };
import messageFixture from './fixtures/aws-events/message.json' with { type: 'json' };

const { connect, disconnect, message } = createAwsHandlers(createChatApp());
let emulator: RunningEmulator;
let registry: DynamoDbRegistry;
const open: TestClient[] = [];

beforeAll(async () => {
  emulator = await startAwsEmulator();
  // What Lambda would give these handlers; read once, when the first of them runs.
  Object.assign(process.env, {
    CONNECTIONS_TABLE: emulator.stack.table!.name,
    WELCOME_FUNCTION: 'cloudsocket-welcome',
    ...handlerEnvironment(emulator),
  });
  registry = new DynamoDbRegistry({ client: dynamoClient(emulator.dynamoEndpoint), tableName: emulator.stack.table!.name, ttlSeconds: 7200 });
});

afterAll(async () => {
  await Promise.all(open.map((client) => client.close().catch(() => undefined)));
  await emulator?.stop();
});

/** A connection id like API Gateway's, which the emulator has never seen. */
function ghostId(): string {
  return `${uniqueName('G').replace(/_/g, '').slice(0, 15).padEnd(15, 'x')}=`;
}

function connectEvent(connectionId: string, query: Record<string, string> | null, headers: Record<string, string> = {}) {
  const event = structuredClone(connectFixture) as any;
  event.requestContext.connectionId = connectionId;
  event.queryStringParameters = query;
  event.multiValueQueryStringParameters = query && Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]]));
  Object.assign(event.headers, headers);
  for (const [name, value] of Object.entries(headers)) event.multiValueHeaders[name] = [value];
  return event;
}

function messageEvent(connectionId: string, body: string) {
  const event = structuredClone(messageFixture) as any;
  event.requestContext.connectionId = connectionId;
  // Received now, as every frame a live connection sends; the capture's own time is years before the connection.
  event.requestContext.requestTimeEpoch = Date.now();
  event.body = body;
  return event;
}

function disconnectEvent(connectionId: string) {
  const event = structuredClone(disconnectFixture) as any;
  event.requestContext.connectionId = connectionId;
  return event;
}

/** A real client connected through the emulator, with its API Gateway connection id. */
async function realClient(room: string) {
  const clientId = uniqueName('real');
  const joined = await TestClient.join(withQuery(emulator.url, { clientId, room }));
  open.push(joined.client);
  const record = await registry.findByClientId(clientId);
  expect(record).toBeDefined();
  return { ...joined, connectionId: record!.connectionId, clientId };
}

describe('connect', () => {
  it('admits a captured CONNECT event and registers the connection', async () => {
    const connectionId = ghostId();
    const room = uniqueName('room');
    const result = await connect(connectEvent(connectionId, { clientId: uniqueName('c'), room }));
    expect(result.statusCode).toBe(200);
    expect(await registry.get(connectionId)).toMatchObject({ connectionId, room, sourceIp: '203.0.113.7' });
  });

  it('admits the event without a query (queryStringParameters: null) into the lobby', async () => {
    const connectionId = ghostId();
    expect((await connect(connectEvent(connectionId, null))).statusCode).toBe(200);
    expect(await registry.get(connectionId)).toMatchObject({ room: 'lobby', clientId: expect.stringMatching(/^client_/) });
  });

  it('refuses an invalid clientId with 400 and a {code, message} body, no stack trace', async () => {
    const result = await connect(connectEvent(ghostId(), { clientId: 'not valid!' }));
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body!)).toMatchObject({ code: 'invalid_client_id' });
    expect(result.body).not.toMatch(/\s+at\s/);
  });

  it('returns the first offered Sec-WebSocket-Protocol', async () => {
    const result = await connect(connectEvent(ghostId(), null, { 'Sec-WebSocket-Protocol': 'chat.v2, chat.v1' }));
    expect(result.headers?.['Sec-WebSocket-Protocol']).toBe('chat.v2');
  });
});

describe('message and disconnect', () => {
  it('answers a captured MESSAGE event through the management API to the real socket', async () => {
    const a = await realClient(uniqueName('room'));
    const result = await message(messageEvent(a.connectionId, '{"type":"ping"}'));
    expect(result.statusCode).toBe(200);
    expect(await a.client.next('pong')).toMatchObject({ type: 'pong' });
  });

  it("judges the rate limit by when API Gateway received each frame, not by when its invocation ran", async () => {
    const a = await realClient(uniqueName('room'));
    // Sixty frames sent at 6.7/s (the limit is 10/s) since the connection opened, handled back to back only now, as after a queue.
    const sentFrom = Date.now() - 60 * 150;
    await dynamoClient(emulator.dynamoEndpoint).send(
      new UpdateItemCommand({
        TableName: emulator.stack.table!.name,
        Key: { pk: { S: `conn#${a.connectionId}` } },
        UpdateExpression: 'SET connectedAt = :at, lastActiveAt = :at, tat = :at',
        ExpressionAttributeValues: { ':at': { N: String(sentFrom) } },
      }),
    );
    for (let i = 0; i < 60; i++) {
      const event = messageEvent(a.connectionId, '{"type":"ping"}');
      event.requestContext.requestTimeEpoch = sentFrom + i * 150;
      expect((await message(event)).statusCode).toBe(200);
    }
    // And one that frames up to 4 s younger overtook, handled only after all of them (invocations finish in any order).
    const overtaken = messageEvent(a.connectionId, '{"type":"ping"}');
    overtaken.requestContext.requestTimeEpoch = sentFrom + 59 * 150 - 4000;
    expect((await message(overtaken)).statusCode).toBe(200);
    for (let i = 0; i < 61; i++) await a.client.next('pong');
    expect(a.client.all('error')).toEqual([]);
  });

  it('decodes an isBase64Encoded body', async () => {
    const a = await realClient(uniqueName('room'));
    const event = messageEvent(a.connectionId, Buffer.from('{"type":"ping"}').toString('base64'));
    event.isBase64Encoded = true;
    expect((await message(event)).statusCode).toBe(200);
    await a.client.next('pong');
  });

  it('forgets the connection on a captured DISCONNECT event and tells the room', async () => {
    const room = uniqueName('room');
    const a = await realClient(room);
    const b = await realClient(room);
    await a.client.next('user_joined');
    expect((await disconnect(disconnectEvent(b.connectionId))).statusCode).toBe(200);
    expect(await a.client.next('user_left')).toMatchObject({ clientId: b.clientId, onlineCount: 1 });
    expect(await registry.get(b.connectionId)).toBeUndefined();
  });
});

describe('a connection that leaves before its welcome', () => {
  it('is forgotten without a user_left, and its late welcome announces nothing', async () => {
    const room = uniqueName('room');
    const a = await realClient(room);
    const leaver = ghostId();
    expect((await connect(connectEvent(leaver, { clientId: uniqueName('leaver'), room }))).statusCode).toBe(200);
    expect((await disconnect(disconnectEvent(leaver))).statusCode).toBe(200);
    expect(await registry.get(leaver)).toBeUndefined();
    // Its welcome, queued by $connect, runs after its $disconnect.
    const payload = { connectionId: leaver, domainName: connectFixture.requestContext.domainName, stage: connectFixture.requestContext.stage, queuedAt: Date.now() };
    expect(await createAwsHandlers(createChatApp()).welcome(payload)).toMatchObject({ statusCode: 410 });

    // A's next frame is its own chat: nothing about the leaver came before it.
    a.client.send({ type: 'chat', content: 'still alone?' });
    expect(await a.client.next('chat')).toMatchObject({ message: 'still alone?', onlineCount: 1 });
    expect(a.client.all('user_left')).toEqual([]);
    expect(a.client.all('user_joined')).toEqual([]);
  });

  it('once welcomed, is announced when it leaves', async () => {
    const room = uniqueName('room');
    const a = await realClient(room);
    const b = await realClient(room);
    expect(await a.client.next('user_joined')).toMatchObject({ clientId: b.clientId });
    expect(await registry.get(b.connectionId)).toMatchObject({ greeted: true });
    await b.client.close();
    expect(await a.client.next('user_left')).toMatchObject({ clientId: b.clientId, onlineCount: 1 });
  });
});

describe('stale connections', () => {
  it('removes a registry entry whose socket is gone when a broadcast meets 410, and the room gets user_left', async () => {
    const room = uniqueName('room');
    const a = await realClient(room);
    // Admitted an hour ago, no socket behind it any more: its $disconnect never came.
    const ghost = ghostId();
    const ghostClientId = uniqueName('ghost');
    const anHourAgo = Date.now() - 3600_000;
    expect(await registry.add({ ...record(ghost, ghostClientId), room, connectedAt: anHourAgo, lastActiveAt: anHourAgo })).toBe(true);
    // Welcomed back then, so its room was told it came.
    expect(await registry.markGreeted(ghost)).toMatchObject({ greeted: true });

    a.client.send({ type: 'chat', content: 'anyone there?' });
    expect(await a.client.next('chat')).toMatchObject({ message: 'anyone there?', onlineCount: 2 });
    expect(await a.client.next('user_left')).toMatchObject({ clientId: ghostClientId, onlineCount: 1 });
    expect(await registry.get(ghost)).toBeUndefined();

    a.client.send({ type: 'users' });
    expect((await a.client.next('users')).users).toEqual([a.clientId]);
  });

  it('keeps a connection admitted moments ago that API Gateway has not opened yet, though a broadcast meets 410, and asks about it once', async () => {
    // The handlers of one container, whose registry reports each lookup.
    const lookedUp: string[] = [];
    const spied = new DynamoDbRegistry({ client: dynamoClient(emulator.dynamoEndpoint), tableName: emulator.stack.table!.name, ttlSeconds: 7200 });
    const get = spied.get.bind(spied);
    spied.get = (connectionId) => (lookedUp.push(connectionId), get(connectionId));
    const container = createAwsHandlers(createChatApp(), { registry: spied });
    const room = uniqueName('room');
    const a = await realClient(room);
    // $connect has returned 200, but API Gateway has not opened the socket: PostToConnection answers 410 meanwhile.
    const opening = ghostId();
    const openingClientId = uniqueName('opening');
    expect((await container.connect(connectEvent(opening, { clientId: openingClientId, room }))).statusCode).toBe(200);

    // Invoked here rather than through the socket, so the fan-out and whatever it forgets are over when it returns.
    const chat = async (content: string) => {
      expect((await container.message(messageEvent(a.connectionId, JSON.stringify({ type: 'chat', content })))).statusCode).toBe(200);
      expect(await a.client.next('chat')).toMatchObject({ message: content, onlineCount: 2 });
    };
    await chat('anyone there?');
    // Still registered, so its welcome will find it once it opens.
    expect(await registry.get(opening)).toMatchObject({ clientId: openingClientId, room });
    a.client.send({ type: 'users' });
    expect((await a.client.next('users')).users).toEqual(expect.arrayContaining([a.clientId, openingClientId]));
    expect(lookedUp.filter((id) => id === opening)).toHaveLength(1);

    // Its admission time is known now: the next frames meet the same 410 without asking the registry again.
    await chat('still there?');
    await chat('hello?');
    expect(lookedUp.filter((id) => id === opening)).toHaveLength(1);
    expect(await registry.get(opening)).toMatchObject({ clientId: openingClientId });
  });
});

describe('the welcome', () => {
  /** The handlers of one container, whose registry reports each lookup, and a connection they admitted that API Gateway never opened. */
  async function unopened() {
    const lookedUp: string[] = [];
    const spied = new DynamoDbRegistry({ client: dynamoClient(emulator.dynamoEndpoint), tableName: emulator.stack.table!.name, ttlSeconds: 7200 });
    const get = spied.get.bind(spied);
    spied.get = (connectionId) => (lookedUp.push(connectionId), get(connectionId));
    const container = createAwsHandlers(createChatApp(), { registry: spied });
    const connectionId = ghostId();
    expect((await container.connect(connectEvent(connectionId, { clientId: uniqueName('unopened'), room: uniqueName('room') }))).statusCode).toBe(200);
    const payload = { connectionId, domainName: connectFixture.requestContext.domainName, stage: connectFixture.requestContext.stage };
    return { container, connectionId, payload, lookedUp };
  }

  it('queued seconds before it ran gives up on a connection it cannot reach at once, with no retries', async () => {
    const { container, connectionId, payload, lookedUp } = await unopened();
    // $connect returned long ago: had the client stayed, API Gateway would have opened it by now.
    expect(await container.welcome({ ...payload, queuedAt: Date.now() - 10_000 })).toMatchObject({ statusCode: 410 });
    expect(lookedUp).toEqual([]);
    // Its $disconnect forgets it, not the welcome.
    expect(await registry.get(connectionId)).toBeDefined();
  });

  it('queued just now still waits for the connection to open, while the registry holds it', async () => {
    const { container, connectionId, payload, lookedUp } = await unopened();
    await registry.remove(connectionId);
    expect(await container.welcome({ ...payload, queuedAt: Date.now() })).toMatchObject({ statusCode: 410 });
    // It asked before its first wait, and stopped there: the entry was gone.
    expect(lookedUp).toEqual([connectionId]);
  });
});

describe('TTL', () => {
  it("lets the emulator's sweeper delete entries whose TTL passed, and keeps live ones", async () => {
    let reportExpired = () => undefined as void;
    const expired = new Promise<void>((resolve) => (reportExpired = resolve));
    const short = await startAwsEmulator({
      ttlSweepMs: 100,
      logger: {
        debug: () => undefined,
        info: (event) => event === 'ttl_expired' && reportExpired(),
        warn: () => undefined,
        error: () => undefined,
      },
    });
    try {
      const client = dynamoClient(short.dynamoEndpoint);
      const tableName = short.stack.table!.name;
      // An entry written three hours ago with the default 2 h TTL: its $disconnect never came.
      const past = new DynamoDbRegistry({ client, tableName, ttlSeconds: 7200, clock: () => Date.now() - 3 * 3600_000 });
      const stale = ghostId();
      expect(await past.add(record(stale, uniqueName('old')))).toBe(true);
      const fresh = ghostId();
      const now = new DynamoDbRegistry({ client, tableName, ttlSeconds: 7200 });
      expect(await now.add(record(fresh, uniqueName('new')))).toBe(true);

      const rawItems = async () => JSON.stringify((await client.send(new ScanCommand({ TableName: tableName }))).Items);
      // The sweeper runs every 100 ms (so the stale entry may be gone before any read here); its pass that deletes something logs ttl_expired.
      await expired;
      const items = await rawItems();
      expect(items).not.toContain(stale);
      expect(items).toContain(fresh);
    } finally {
      await short.stop();
    }
  });
});

function record(connectionId: string, clientId: string) {
  const now = Date.now();
  return {
    connectionId,
    clientId,
    nameKey: nameKey(clientId),
    room: 'lobby',
    connectedAt: now,
    lastActiveAt: now,
    sourceIp: '203.0.113.7',
    identity: {},
    rate: freshRateState(now),
  };
}

describe('a frame inside a burst', () => {
  it("costs one more UpdateItem and no read: the emulator hands back the item a failed condition found, as DynamoDB does, and counts no request of its own", async () => {
    const a = await realClient(uniqueName('room'));
    const operations: string[] = [];
    const listener = (message: unknown) => void operations.push((message as { operation: string }).operation);
    subscribe(DYNALITE_REQUEST_CHANNEL, listener);
    try {
      // Together, well inside the rate limit's interval: one of the two finds the bucket's tat in the future.
      a.client.send({ type: 'ping' });
      a.client.send({ type: 'ping' });
      await a.client.next('pong');
      await a.client.next('pong');
    } finally {
      unsubscribe(DYNALITE_REQUEST_CHANNEL, listener);
    }
    expect(operations.filter((operation) => operation === 'UpdateItem').length).toBeGreaterThanOrEqual(3);
    expect(operations.filter((operation) => operation === 'GetItem')).toEqual([]);
  });
});
