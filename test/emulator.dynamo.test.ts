/**
 * The embedded DynamoDB of the emulator (and of the tests): stopping it while
 * requests are being served must not crash the process that hosts it.
 */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { expect, it } from 'vitest';
import { startDynalite } from '../scripts/emulator/dynamo.js';
import { createConnectionsTable, dynamoClient } from './support/dynalite.js';

it('lets the writes it is serving finish before it closes its database', async () => {
  const dynalite = await startDynalite();
  const client = dynamoClient(dynalite.endpoint);
  const { tableName } = await createConnectionsTable(client);
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  try {
    const puts = Array.from({ length: 200 }, (_, i) =>
      client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: `conn#c${i}` }, room: { S: 'lobby' } } })),
    );
    await Promise.race(puts);
    await dynalite.stop();
    const outcomes = await Promise.allSettled(puts);
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled').length).toBeGreaterThan(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(uncaught).toEqual([]);
  } finally {
    process.off('uncaughtException', onUncaught);
    client.destroy();
  }
});
