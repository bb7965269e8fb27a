/**
 * A real DynamoDB API for tests: dynalite on a random port, and tables made
 * from infra/aws/template.yaml so a test table cannot differ from the deployed one.
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { CreateTableCommand, DeleteTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { loadTemplate, tableDefinition } from '../../scripts/aws-template.js';

// dynalite ships no types; this is the one call we make.
const dynalite = createRequire(import.meta.url)('dynalite') as (options: Record<string, number>) => Server;

export interface RunningDynalite {
  endpoint: string;
  stop(): Promise<void>;
}

export async function startDynalite(): Promise<RunningDynalite> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
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
