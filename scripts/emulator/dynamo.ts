/**
 * The DynamoDB behind the emulated stack: an embedded dynalite on a random
 * port unless an endpoint is given, with the template's table created in it.
 */
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import type { TableSpec } from './stack.js';

// dynalite ships no types; creating a server is the one call we make.
const dynalite = createRequire(import.meta.url)('dynalite') as (options: Record<string, number>) => Server;

export interface LocalDynamo {
  endpoint: string;
  client: DynamoDBClient;
  stop(): Promise<void>;
}

/** Credentials DynamoDB Local and dynalite accept; they are never checked. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export async function startDynamo(endpoint: string | undefined, region: string): Promise<LocalDynamo> {
  let server: Server | undefined;
  if (!endpoint) {
    server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(0, '127.0.0.1', () => resolve());
    });
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  const client = new DynamoDBClient({ endpoint, region, credentials: LOCAL_CREDENTIALS });
  return {
    endpoint,
    client,
    stop: async () => {
      client.destroy();
      if (!server) return;
      const closed = new Promise<void>((resolve) => server!.close(() => resolve()));
      // Keep-alive sockets of the functions' SDK clients would hold the close open.
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Creates the table unless it exists (a DynamoDB given from outside may already hold it), then waits for ACTIVE. */
export async function ensureTable(client: DynamoDBClient, table: TableSpec): Promise<void> {
  try {
    await client.send(new CreateTableCommand(table.definition));
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  for (let attempt = 0; attempt < 100; attempt++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: table.name }));
    if (Table?.TableStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
