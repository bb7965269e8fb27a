/**
 * The cost meter on the real handlers: what a chat's traffic would be billed
 * on AWS, counted as AWS counts it (messages in 32 KB units, connection
 * minutes, Lambda requests and GB-seconds, DynamoDB request units).
 */
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { BatchWriteItemCommand, DeleteItemCommand, DynamoDBClient, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbRegistry } from '../registries/dynamodb-registry.js';
import { PRICES, type CostReport } from '../scripts/emulator/cost-meter.js';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { dynamoClient } from './support/dynalite.js';
import { startAwsEmulator } from './support/emulator.js';

let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startAwsEmulator({ meterCost: true });
});

afterAll(async () => {
  await emulator?.stop();
});

async function report(): Promise<CostReport> {
  const response = await fetch(`${emulator.httpUrl}/_emulator/cost`);
  expect(response.status).toBe(200);
  return (await response.json()) as CostReport;
}

describe('the cost meter', () => {
  it('counts a chat\'s messages, connection minutes, invocations and request units, and prices them per million chat messages', async () => {
    const room = uniqueName('room');
    const a = await TestClient.join(withQuery(emulator.url, { clientId: uniqueName('a'), room }));
    const b = await TestClient.join(withQuery(emulator.url, { clientId: uniqueName('b'), room }));
    await a.client.next('user_joined');
    const before = await report();
    for (let n = 0; n < 5; n++) a.client.send({ type: 'chat', content: `hello ${n}` });
    for (let n = 0; n < 5; n++) await b.client.next('chat');
    a.client.send({ type: 'ping' });
    await a.client.next('pong');
    const after = await report();

    expect(after.chatMessages - before.chatMessages).toBe(6);
    // Each chat in, and out to both members (the sender's copy included); the ping and its pong.
    expect(after.messageUnits - before.messageUnits).toBeGreaterThanOrEqual(5 * 3 + 2);
    expect(after.lambdaRequests - before.lambdaRequests).toBe(6);
    expect(after.gbSeconds).toBeGreaterThan(before.gbSeconds);
    expect(after.writeUnits + after.readUnits).toBeGreaterThan(before.writeUnits + before.readUnits);
    expect(after.connectionMinutes).toBeGreaterThanOrEqual(2);
    expect(after.prices).toEqual(PRICES);
    const expected =
      (after.messageUnits / 1e6) * PRICES.perMillionMessages +
      (after.connectionMinutes / 1e6) * PRICES.perMillionConnectionMinutes +
      (after.lambdaRequests / 1e6) * PRICES.perMillionLambdaRequests +
      after.gbSeconds * PRICES.perGbSecond +
      (after.readUnits / 1e6) * PRICES.perMillionReadUnits +
      (after.writeUnits / 1e6) * PRICES.perMillionWriteUnits;
    expect(after.total).toBeCloseTo(expected, 12);
    expect(after.perMillionChatMessages).toBeCloseTo((after.total / after.chatMessages) * 1e6, 6);
    await a.client.close();
    await b.client.close();
  });

  it('meters a message in 32 KB units: 100 KiB is four', async () => {
    const clientId = uniqueName('big');
    const { client } = await TestClient.join(withQuery(emulator.url, { clientId, room: uniqueName('room') }));
    const registry = new DynamoDbRegistry({ client: dynamoClient(emulator.dynamoEndpoint), tableName: emulator.stack.table!.name, ttlSeconds: 7200 });
    const { connectionId } = (await registry.findByClientId(clientId))!;
    const management = new ApiGatewayManagementApiClient({
      endpoint: `${emulator.httpUrl}/${emulator.stage}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const before = await report();
    await management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: JSON.stringify({ type: 'big', pad: 'x'.repeat(100 * 1024 - 30) }) }));
    await client.next('big');
    const after = await report();
    expect(after.messageUnits - before.messageUnits).toBe(4);
    management.destroy();
    await client.close();
  });

  it("adds each index's write units, which the local DynamoDB leaves out of what it reports", async () => {
    // An emulator of its own: the other tests' clients leave, and their $disconnect writes, after they end.
    const quiet = await startAwsEmulator({ meterCost: true });
    try {
      const report = async () => quiet.costReport()!;
      const dynamo = new DynamoDBClient({ endpoint: quiet.httpUrl, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1 });
      const TableName = quiet.stack.table!.name;
      const id = uniqueName('metered');
      const key = { pk: { S: `conn#${id}` } };
      const writeUnitsOf = async (write: () => Promise<unknown>) => {
        const before = await report();
        await write();
        return (await report()).writeUnits - before.writeUnits;
      };
      const expiresAt = { N: String(Math.floor(Date.now() / 1000) + 600) };
      // Into both indexes: the table's unit and one for each index entry.
      expect(await writeUnitsOf(() => dynamo.send(new PutItemCommand({ TableName, Item: { ...key, connectionId: { S: id }, clientId: { S: id }, room: { S: 'lobby' }, expiresAt } })))).toBe(3);
      // An attribute neither index projects: the table's unit alone.
      const touch = new UpdateItemCommand({ TableName, Key: key, UpdateExpression: 'SET lastActiveAt = :now', ExpressionAttributeValues: { ':now': { N: String(Date.now()) } } });
      expect(await writeUnitsOf(() => dynamo.send(touch))).toBe(1);
      // byRoom's key: its entry is deleted and put again; byClientId's stays as it was.
      const move = new UpdateItemCommand({ TableName, Key: key, UpdateExpression: 'SET room = :room', ExpressionAttributeValues: { ':room': { S: 'kitchen' } } });
      expect(await writeUnitsOf(() => dynamo.send(move))).toBe(3);
      expect(await writeUnitsOf(() => dynamo.send(new DeleteItemCommand({ TableName, Key: key })))).toBe(3);

      // Batched: each item's indexes are charged as if it were written alone.
      const item = (name: string) => ({ pk: { S: `conn#${name}` }, connectionId: { S: name }, clientId: { S: name }, room: { S: 'lobby' }, expiresAt });
      const names = [uniqueName('batched'), uniqueName('batched')];
      const batch = new BatchWriteItemCommand({ RequestItems: { [TableName]: names.map((name) => ({ PutRequest: { Item: item(name) } })) } });
      expect(await writeUnitsOf(() => dynamo.send(batch))).toBe(2 * 3);
      const removal = new BatchWriteItemCommand({ RequestItems: { [TableName]: names.map((name) => ({ DeleteRequest: { Key: { pk: { S: `conn#${name}` } } } })) } });
      expect(await writeUnitsOf(() => dynamo.send(removal))).toBe(2 * 3);
      dynamo.destroy();
    } finally {
      await quiet.stop();
    }
  });

  it('is not served when the emulator does not meter cost', async () => {
    const plain = await startAwsEmulator();
    try {
      expect(plain.costReport()).toBeUndefined();
      expect((await fetch(`${plain.httpUrl}/_emulator/cost`)).status).toBe(404);
    } finally {
      await plain.stop();
    }
  });
});
