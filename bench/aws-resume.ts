/**
 * The room log on the AWS target through the emulator (the built handlers,
 * the @connections API, dynalite), counted where the requests arrive: what a
 * chat message costs over a run long enough for the log to start new slots
 * now and then, and what a resume costs, from its handshake to its
 * `resumed`: after a few frames (from the open slot) and after many (across
 * slots). The client is cut with DeleteConnection, as the
 * server would, and comes back with its token and the last seq it saw.
 *
 * Ten senders take turns, each at most once per interval of the default
 * rate limit, so none of them is ever inside a burst, however fast the
 * machine: a frame inside one costs its touch one more write (a failed
 * condition, then the write against the old tat), which is the rate limit's
 * price, not the log's.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { ApiGatewayManagementApiClient, DeleteConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbRegistry } from '../registries/dynamodb-registry.js';
import { LOCAL_CREDENTIALS } from '../scripts/emulator/dynamo.js';
import { startEmulator, type RunningEmulator } from '../scripts/emulator/index.js';
import { silentLogger } from '../shared/log.js';
import { DEFAULT_RATE_LIMIT } from '../shared/rate-limit.js';
import { TestClient } from '../testing/client.js';
import { quiet, RequestCounter, sum, type RequestCounts } from './aws-counter.js';

export interface AwsResumeOptions {
  distDir: string;
  /** Chat messages sent while the resuming client is away, in the long run. */
  messages: number;
}

export interface RequestTally {
  dynamoRequests: number;
  dynamoOperations: Record<string, number>;
  managementCalls: number;
  lambdaInvokes: number;
}

export interface AwsResumeRun {
  messages: number;
  /** Per chat message over the whole run: mean, and by operation. */
  perMessage: RequestTally;
  /** Messages whose log append started the log's next slot (a PutItem instead of an UpdateItem). */
  slotsStarted: number;
  /** A resume after 2 missed chats, and after all `messages`: the whole handshake to `resumed`. */
  shortResume: RequestTally & { replayed: number };
  longResume: RequestTally & { replayed: number };
}

const SENDERS = 10;
/** The default rate limit's interval between frames, with a margin for the gateway's clock, which stamps each frame. */
const SENDER_INTERVAL_MS = (1000 / DEFAULT_RATE_LIMIT.perSecond) * 1.1;
const CONTENT = 'x'.repeat(64);
const TIMEOUT_MS = 30_000;

export async function runAwsResume(options: AwsResumeOptions): Promise<AwsResumeRun> {
  const counter = new RequestCounter();
  const emulator = await startEmulator({ port: 0, distDir: options.distDir, logger: silentLogger, onLog: () => {} });
  const dynamo = new DynamoDBClient({ endpoint: emulator.dynamoEndpoint, region: emulator.stack.region, credentials: LOCAL_CREDENTIALS });
  const registry = new DynamoDbRegistry({ client: dynamo, tableName: emulator.stack.table!.name, ttlSeconds: 7200 });
  const management = new ApiGatewayManagementApiClient({ endpoint: `${emulator.httpUrl}/${emulator.stage}`, region: emulator.stack.region, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
  const clients: TestClient[] = [];
  const join = async (query: string) => {
    const { client } = await TestClient.join(`${emulator.url}?${query}`, { timeoutMs: TIMEOUT_MS });
    clients.push(client);
    return client;
  };
  counter.start();
  try {
    const senders: TestClient[] = [];
    for (let i = 0; i < SENDERS; i++) senders.push(await join(`clientId=sender${i}&room=resume`));
    const listener = await join('clientId=listener&room=resume');
    let resumer = await join('clientId=resumer&room=resume');

    let sent = 0;
    const lastSentAt = senders.map(() => -Infinity);
    const chat = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const content = `${sent++} ${CONTENT}`;
        const turn = sent % SENDERS;
        const wait = lastSentAt[turn]! + SENDER_INTERVAL_MS - performance.now();
        if (wait > 0) await delay(wait);
        lastSentAt[turn] = performance.now();
        senders[turn]!.send({ type: 'chat', content });
        await listener.next((frame) => frame.type === 'chat' && frame.message === content, TIMEOUT_MS);
      }
    };
    const cutAndResume = async (missed: number) => {
      await cut(emulator, management, registry, resumer, 'resumer');
      await chat(missed);
      await quiet(counter);
      counter.reset();
      const back = await TestClient.connect(`${emulator.url}?${new URLSearchParams(resumer.resumeQuery())}`, { timeoutMs: TIMEOUT_MS });
      clients.push(back);
      const resumed = await back.next('resumed', TIMEOUT_MS);
      await quiet(counter);
      resumer = back;
      return { ...tally(counter.snapshot(), 1), replayed: Number(resumed.replayed) };
    };

    const shortResume = await cutAndResume(2);
    const longResume = await cutAndResume(options.messages);
    // The chats of the long resume's absence, counted apart from the cut and the resume.
    await quiet(counter);
    counter.reset();
    await chat(options.messages);
    await quiet(counter);
    const counts = counter.snapshot();
    return { messages: options.messages, perMessage: tally(counts, options.messages), slotsStarted: counts.dynamo.PutItem ?? 0, shortResume, longResume };
  } finally {
    counter.stop();
    for (const client of clients) client.socket.terminate();
    management.destroy();
    dynamo.destroy();
    await emulator.stop();
  }
}

/** DeleteConnection on the client's connection; resolves once API Gateway has closed it and its $disconnect is done. */
async function cut(emulator: RunningEmulator, management: ApiGatewayManagementApiClient, registry: DynamoDbRegistry, client: TestClient, clientId: string): Promise<void> {
  const record = await registry.findByClientId(clientId);
  if (!record) throw new Error(`aws-resume: ${clientId} is not registered on ${emulator.url}`);
  await management.send(new DeleteConnectionCommand({ ConnectionId: record.connectionId }));
  await client.waitClosed(TIMEOUT_MS);
}

function tally(counts: RequestCounts, per: number): RequestTally {
  const each = (value: number) => Math.round((value / per) * 100) / 100;
  return {
    dynamoRequests: each(sum(Object.values(counts.dynamo))),
    dynamoOperations: Object.fromEntries(Object.entries(counts.dynamo).map(([operation, n]) => [operation, each(n)])),
    managementCalls: each(sum(Object.values(counts.management))),
    lambdaInvokes: each(counts.lambdaInvokes),
  };
}
