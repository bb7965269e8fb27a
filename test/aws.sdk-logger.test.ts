/**
 * The handlers' SDK clients log nothing, as with the SDK's default
 * NoOpLogger, but give the SDK's logger middleware no `info` to call, so it
 * no longer walks every request and answer through the schemas to mask
 * sensitive members for a log line that is never written.
 */
import { DynamoDBClient, GetItemCommand, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { expect, it } from 'vitest';
import { SDK_LOGGER } from '../functions/aws/runtime.js';
import { createConnectionsTable, dynaliteForFile } from './support/dynalite.js';

const dynalite = dynaliteForFile();

function clientWith(logger: DynamoDBClient['config']['logger'] | undefined): DynamoDBClient {
  return new DynamoDBClient({
    endpoint: dynalite.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
    ...(logger ? { logger } : {}),
  });
}

/** An item whose attributes count how often anything reads them: the serializer once, a log filter again. */
function countedItem(id: string): { item: Record<string, AttributeValue>; reads: () => number } {
  let reads = 0;
  const item = new Proxy<Record<string, AttributeValue>>(
    { pk: { S: `conn#${id}` }, room: { S: 'lobby' }, connectionId: { S: id } },
    {
      get(target, key, receiver) {
        if (typeof key === 'string' && key in target) reads++;
        return Reflect.get(target, key, receiver);
      },
    },
  );
  return { item, reads: () => reads };
}

it('sends and reads as the default client does, with the items read fewer times', async () => {
  const setup = clientWith(undefined);
  const { tableName } = await createConnectionsTable(setup);
  setup.destroy();
  const quiet = clientWith(SDK_LOGGER);
  const standard = clientWith(undefined);
  try {
    const viaQuiet = countedItem('quiet');
    const viaStandard = countedItem('standard');
    await quiet.send(new PutItemCommand({ TableName: tableName, Item: viaQuiet.item }));
    await standard.send(new PutItemCommand({ TableName: tableName, Item: viaStandard.item }));
    for (const [client, id] of [[quiet, 'quiet'], [standard, 'standard']] as const) {
      const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: `conn#${id}` } }, ConsistentRead: true }));
      expect(Item?.connectionId).toEqual({ S: id });
    }
    expect(viaQuiet.reads()).toBeGreaterThan(0);
    expect(viaQuiet.reads()).toBeLessThan(viaStandard.reads());
  } finally {
    quiet.destroy();
    standard.destroy();
  }
});

it('still has every level but info, for the SDK code that calls them unguarded', () => {
  const logger = SDK_LOGGER as unknown as Record<string, unknown>;
  for (const level of ['trace', 'debug', 'warn', 'error']) expect(typeof logger[level]).toBe('function');
  expect(logger.info).toBeUndefined();
});
