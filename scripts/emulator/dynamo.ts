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
  /**
   * One DynamoDB call handed to dynalite's thread as a message, not over its
   * port; rejects once that thread is gone or stopping. `own`: a read the
   * emulator makes for itself (the meter's, or the item a failed condition
   * found, which DynamoDB returns with the failure), not reported on
   * DYNALITE_REQUEST_CHANNEL, since DynamoDB would not have received it.
   */
  call(headers: Record<string, string | string[] | undefined>, body: Uint8Array, options?: { own?: boolean }): Promise<DynaliteAnswer>;
  stop(): Promise<void>;
}

/** What dynalite answered a call: its status, its headers (lower-cased names), its JSON body. */
export interface DynaliteAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** The embedded dynalites running in this process, by endpoint: what is sent to one of those need not go over HTTP. */
const running = new Map<string, EmbeddedDynalite>();

/** The embedded dynalite serving `endpoint`, if this process runs it. */
export function embeddedDynaliteAt(endpoint: string): EmbeddedDynalite | undefined {
  return running.get(endpoint);
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
  const calls = new Map<number, { resolve: (answer: DynaliteAnswer) => void; reject: (error: Error) => void }>();
  let lastCallId = 0;
  const port = await new Promise<number>((resolve, reject) => {
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'answer') {
        const pending = calls.get(message.id);
        calls.delete(message.id);
        if (message.failed !== undefined) pending?.reject(new Error(message.failed));
        else pending?.resolve({ status: message.status, headers: message.headers, body: Buffer.from(message.body, 'utf8') });
      } else if (message.type === 'listening') resolve(message.port);
      else if (message.type === 'request' && requests.hasSubscribers) requests.publish({ operation: message.operation });
      else if (message.type === 'stopped') void worker.terminate();
    });
    void exited.then(() => reject(new Error('dynalite exited before it listened')));
    worker.on('error', (error) => {
      reject(error);
      onCrash(error);
    });
  });
  void exited.then(() => {
    running.delete(endpoint);
    for (const pending of calls.values()) pending.reject(new Error('dynalite has exited'));
    calls.clear();
  });
  let stopping = false;
  const endpoint = `http://127.0.0.1:${port}`;
  const embedded: EmbeddedDynalite = {
    endpoint,
    call: (headers, body, options = {}) => {
      if (stopping) return Promise.reject(new Error('dynalite is stopping'));
      const target = headers['x-amz-target'];
      if (typeof target === 'string' && !options.own && requests.hasSubscribers) requests.publish({ operation: target.slice(target.indexOf('.') + 1) });
      return new Promise((resolve, reject) => {
        const id = ++lastCallId;
        calls.set(id, { resolve, reject });
        // A message copies the whole buffer under a view; a small body is often a slice of Node's shared pool.
        worker.postMessage({ type: 'call', id, headers, body: body.byteLength === body.buffer.byteLength ? body : new Uint8Array(body) });
      });
    },
    stop: () => {
      if (!stopping) worker.postMessage({ type: 'stop' });
      stopping = true;
      return exited;
    },
  };
  running.set(endpoint, embedded);
  return embedded;
}

type WorkerMessage =
  | { type: 'listening'; port: number }
  | { type: 'request'; operation: string }
  | { type: 'answer'; id: number; status: number; headers: Record<string, string>; body: string; failed?: undefined }
  | { type: 'answer'; id: number; failed: string }
  | { type: 'stopped' };

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
