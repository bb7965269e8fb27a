/**
 * The DynamoDB behind the emulated stack: an embedded dynalite on a random
 * port unless an endpoint is given, with the template's table created in it.
 */
import { channel } from 'node:diagnostics_channel';
import { Worker } from 'node:worker_threads';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import type { TableSpec } from './stack.js';

export interface LocalDynamo {
  endpoint: string;
  client: DynamoDBClient;
  stop(): Promise<void>;
}

/** Credentials DynamoDB Local and dynalite accept; they are never checked. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/**
 * Where the embedded dynalite reports each request it receives, as `{ operation }`
 * (GetItem, Query, …): it serves them on its own thread, where this thread's
 * `http.server.request.start` channel does not see them.
 */
export const DYNALITE_REQUEST_CHANNEL = 'cloudsocket:dynalite:request';

export interface EmbeddedDynalite {
  endpoint: string;
  stop(): Promise<void>;
}

const WORKER_URL = new URL('./dynalite-worker.mjs', import.meta.url);

/**
 * dynalite on a random loopback port, served from a worker thread of its own.
 * `onCrash` hears of an error that ended that thread (requests then fail to connect).
 */
export async function startDynalite(onCrash: (error: Error) => void = () => undefined): Promise<EmbeddedDynalite> {
  const worker = new Worker(WORKER_URL);
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const requests = channel(DYNALITE_REQUEST_CHANNEL);
  const port = await new Promise<number>((resolve, reject) => {
    worker.on('message', (message: { type: string; port?: number; operation?: string }) => {
      if (message.type === 'listening') resolve(message.port!);
      else if (message.type === 'request' && requests.hasSubscribers) requests.publish({ operation: message.operation });
      else if (message.type === 'stopped') void worker.terminate();
    });
    void exited.then(() => reject(new Error('dynalite exited before it listened')));
    worker.on('error', (error) => {
      reject(error);
      onCrash(error);
    });
  });
  let stopping = false;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => {
      if (!stopping) worker.postMessage({ type: 'stop' });
      stopping = true;
      return exited;
    },
  };
}

export async function startDynamo(endpoint: string | undefined, region: string, onCrash?: (error: Error) => void): Promise<LocalDynamo> {
  const embedded = endpoint ? undefined : await startDynalite(onCrash);
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
