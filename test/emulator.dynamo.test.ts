/**
 * The embedded DynamoDB of the emulator (and of the tests), on its own
 * thread: stopping it while requests are being served must neither crash it
 * nor hang, whether their clients wait for the answers or have gone away.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { DescribeTableCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { expect, it } from 'vitest';
import { startDynalite } from '../scripts/emulator/dynamo.js';
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
