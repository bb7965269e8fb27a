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

export interface EmbeddedDynalite {
  endpoint: string;
  stop(): Promise<void>;
}

/** dynalite on a random loopback port. */
export async function startDynalite(): Promise<EmbeddedDynalite> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  let inFlight = 0;
  let drained: (() => void) | undefined;
  server.on('request', (_request, response) => {
    inFlight++;
    // Counted until dynalite answers, not until the socket closes: a client that goes away
    // mid-request closes the response while dynalite is still writing to its database.
    const end = response.end.bind(response) as (...args: unknown[]) => typeof response;
    let answered = false;
    response.end = ((...args: unknown[]) => {
      if (!answered) {
        answered = true;
        if (--inFlight === 0) drained?.();
      }
      return end(...args);
    }) as typeof response.end;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // dynalite closes its database once the server has closed; a request cut off halfway would
      // then write to a closed database and throw where nobody can catch it. So let those finish.
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
      // Idle keep-alive sockets of SDK clients would hold the close open.
      server.closeAllConnections();
      await closed;
    },
  };
}

export async function startDynamo(endpoint: string | undefined, region: string): Promise<LocalDynamo> {
  const embedded = endpoint ? undefined : await startDynalite();
  const client = new DynamoDBClient({ endpoint: endpoint ?? embedded!.endpoint, region, credentials: LOCAL_CREDENTIALS });
  return {
    endpoint: endpoint ?? embedded!.endpoint,
    client,
    stop: async () => {
      client.destroy();
      await embedded?.stop();
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
