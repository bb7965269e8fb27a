/**
 * The embedded DynamoDB of the emulator (and of the tests), on its own
 * thread: stopping it while requests are being served must neither crash it
 * nor hang, whether their clients wait for the answers or have gone away;
 * and its secondary indexes hold every item, as DynamoDB's do.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { DescribeTableCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { expect, it } from 'vitest';
import { DynamoDbRegistry } from '../registries/dynamodb-registry.js';
import { startDynalite } from '../scripts/emulator/dynamo.js';
import { nameKey } from '../shared/names.js';
import { freshRateState } from '../shared/rate-limit.js';
import type { ConnectionRecord } from '../shared/registry.js';
import { createConnectionsTable, dynamoClient } from './support/dynalite.js';

async function writesInFlight(endpoint: string) {
  const client = dynamoClient(endpoint);
  const { tableName } = await createConnectionsTable(client);
  const puts = Array.from({ length: 300 }, (_, i) =>
    client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: `conn#c${i}` }, room: { S: 'lobby' } } })),
  );
  await Promise.race(puts);
  return { client, puts };
}

it('lets the writes it is serving finish before it closes its database', async () => {
  const crashes: Error[] = [];
  const dynalite = await startDynalite((error) => crashes.push(error));
  const { client, puts } = await writesInFlight(dynalite.endpoint);
  try {
    await dynalite.stop();
    const outcomes = await Promise.allSettled(puts);
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled').length).toBeGreaterThan(0);
    expect(crashes).toEqual([]);
  } finally {
    client.destroy();
  }
});

it('finishes the writes of clients that went away without waiting for their answers, then stops', async () => {
  const crashes: Error[] = [];
  const dynalite = await startDynalite((error) => crashes.push(error));
  const { client, puts } = await writesInFlight(dynalite.endpoint);
  // As a Lambda environment that timed out: its sockets close with requests unanswered, some halfway sent.
  client.destroy();
  await dynalite.stop();
  await Promise.allSettled(puts);
  expect(crashes).toEqual([]);
});

it('takes a request whose client left halfway through its body in its stride', async () => {
  const crashes: Error[] = [];
  const dynalite = await startDynalite((error) => crashes.push(error));
  const client = dynamoClient(dynalite.endpoint);
  try {
    const { tableName } = await createConnectionsTable(client);
    const { hostname, port } = new URL(dynalite.endpoint);
    const socket = connect(Number(port), hostname);
    await once(socket, 'connect');
    socket.write(`POST / HTTP/1.1\r\nHost: ${hostname}\r\nX-Amz-Target: DynamoDB_20120810.PutItem\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 1000\r\n\r\n{"TableName":`);
    // The request has reached dynalite once a request after it on another connection is answered.
    await client.send(new DescribeTableCommand({ TableName: tableName }));
    socket.destroy();
    await once(socket, 'close');
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    expect(Table?.TableStatus).toBe('ACTIVE');
  } finally {
    client.destroy();
    await dynalite.stop();
  }
  // A crash would have been reported before the thread exited, which stop() waits for.
  expect(crashes).toEqual([]);
});

/**
 * Two connectionIds whose items dynalite on its own would file under one
 * index entry: it tells items of the same index key apart by six hex digits
 * of an md5 of their table key (db/index.js, hashPrefix), which a few
 * thousand ids are enough to make collide.
 */
function connectionIdsDynaliteConfuses(): [string, string] {
  const sixDigits = (connectionId: string) => createHash('md5').update('Outliers').update(`conn#${connectionId}`).digest('hex').slice(0, 6);
  const seen = new Map<string, string>();
  for (let serial = 0; ; serial++) {
    const connectionId = `Kq${serial}xYzw=`;
    const earlier = seen.get(sixDigits(connectionId));
    if (earlier !== undefined) return [earlier, connectionId];
    seen.set(sixDigits(connectionId), connectionId);
  }
}

it('lists every member of a room, whatever their connectionIds hash to', async () => {
  const dynalite = await startDynalite();
  const client = dynamoClient(dynalite.endpoint);
  try {
    const { tableName } = await createConnectionsTable(client);
    const registry = new DynamoDbRegistry({ client, tableName, ttlSeconds: 7200 });
    const now = Date.now();
    const member = (connectionId: string, clientId: string): ConnectionRecord => ({
      connectionId, clientId, nameKey: nameKey(clientId), room: 'crowd', connectedAt: now, lastActiveAt: now, sourceIp: '', identity: {}, rate: freshRateState(now),
    });
    const [first, second] = connectionIdsDynaliteConfuses();
    expect(await registry.add(member(first, 'ann'))).toBe(true);
    expect(await registry.add(member(second, 'bob'))).toBe(true);

    expect((await registry.listRoomIds('crowd')).sort()).toEqual([first, second].sort());
    expect((await registry.listRoom('crowd')).map((record) => record.clientId).sort()).toEqual(['ann', 'bob']);
    expect(await registry.countRoom('crowd')).toBe(2);
    // One item per Query page: each page starts from the entry the last one ended on.
    expect(await registry.countRoomAndList('crowd', 0)).toEqual({ count: 2 });

    // Leaving, one way or the other, takes only the one that left.
    await registry.moveToRoom(first, 'elsewhere');
    expect(await registry.listRoomIds('crowd')).toEqual([second]);
    expect(await registry.listRoomIds('elsewhere')).toEqual([first]);
    await registry.moveToRoom(first, 'crowd');
    await registry.remove(second);
    expect(await registry.listRoomIds('crowd')).toEqual([first]);
    expect((await registry.findByClientId('ann'))?.connectionId).toBe(first);
  } finally {
    client.destroy();
    await dynalite.stop();
  }
});

