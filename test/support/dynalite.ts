/**
 * A real DynamoDB API for tests: dynalite on a random port, and tables made
 * from infra/aws/template.yaml so a test table cannot differ from the deployed one.
 */
import { randomBytes } from 'node:crypto';
import { CreateTableCommand, DeleteTableCommand, DescribeTableCommand, DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, expect } from 'vitest';
import { loadTemplate, tableDefinition } from '../../scripts/aws-template.js';
import { startDynalite, type EmbeddedDynalite } from '../../scripts/emulator/dynamo.js';

export { startDynalite, type EmbeddedDynalite as RunningDynalite } from '../../scripts/emulator/dynamo.js';

/** dynalite for the file's tests: started before them, stopped after. `endpoint` is there once they run. */
export function dynaliteForFile(): { readonly endpoint: string } {
  let running: EmbeddedDynalite | undefined;
  beforeAll(async () => {
    running = await startDynalite();
  });
  afterAll(async () => {
    await running?.stop();
  });
  return {
    get endpoint() {
      return running!.endpoint;
    },
  };
}

/** What a suite sent was real work (`expected` among it) and never a Scan of any kind. */
export function expectNoScan(sent: readonly string[], expected: string): void {
  expect(sent.length).toBeGreaterThan(100);
  expect(sent).toContain(expected);
  expect(sent).not.toContain(ScanCommand.name);
  expect(sent.some((name) => /scan/i.test(name))).toBe(false);
}

/**
 * A DynamoDB client for `endpoint`. When `sent` is given, the name of every
 * command the client sends is appended to it, so tests can count requests.
 */
export function dynamoClient(endpoint: string, sent?: string[]): DynamoDBClient {
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  if (sent) {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        sent.push(String(context.commandName));
        return next(args);
      },
      { step: 'initialize', name: 'recordCommandNames' },
    );
  }
  return client;
}

/** Creates a fresh, uniquely named table with the template's ConnectionsTable definition. */
export async function createConnectionsTable(client: DynamoDBClient): Promise<{ tableName: string; drop(): Promise<void> }> {
  const tableName = `connections-${randomBytes(6).toString('hex')}`;
  await client.send(new CreateTableCommand(tableDefinition(await loadTemplate(), tableName)));
  // dynalite flips the table to ACTIVE on its next tick; each DescribeTable is that wait.
  for (let attempt = 0; attempt < 50; attempt++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') break;
  }
  return { tableName, drop: async () => void (await client.send(new DeleteTableCommand({ TableName: tableName }))) };
}
