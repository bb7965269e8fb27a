/**
 * DynamoDB going away under the running stack: the handlers' DynamoDB is a
 * TCP relay to dynalite, which the test takes down (refusing connections on
 * its port) and brings back on the same port. The CloudBase target with a
 * DynamoDB registry goes through the same relay, so both targets are held to
 * the same answer: an `unavailable` error frame, the connection kept.
 */
import { EventEmitter, once } from 'node:events';
import { createServer, type Server, type Socket, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DynamoDbRegistry } from '../registries/dynamodb-registry.js';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import { UnavailableError } from '../shared/errors.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { createConnectionsTable, dynamoClient, startDynalite, type RunningDynalite } from './support/dynalite.js';
import { startAwsEmulator } from './support/emulator.js';
import { startSourceServer } from './support/servers.js';

/** A TCP relay that can be stopped (its port then refuses connections) and restarted on the same port. */
class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<void> {
    const server = createServer((inbound) => {
      const outbound = connect(this.target.port, this.target.host);
      for (const socket of [inbound, outbound]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}

let dynalite: RunningDynalite;
let relay: Relay;
let emulator: RunningEmulator;
/** Emits 'function-log' (functionName, parsed line) for handler output and 'gateway-warn' (event, fields) for the emulator's warnings. */
const logs = new EventEmitter();

beforeAll(async () => {
  dynalite = await startDynalite();
  const target = new URL(dynalite.endpoint);
  relay = new Relay({ host: target.hostname, port: Number(target.port) });
  await relay.start();
  emulator = await startAwsEmulator({
    dynamoEndpoint: `http://127.0.0.1:${relay.port}`,
    // Handlers log JSON lines; stderr also carries Node's own warnings, which are not.
    onLog: (functionName, line) => line.startsWith('{') && logs.emit('function-log', functionName, JSON.parse(line)),
    logger: {
      debug: () => undefined,
      info: () => undefined,
      warn: (event, fields) => logs.emit('gateway-warn', event, fields),
      error: () => undefined,
    },
  });
});

afterAll(async () => {
  await emulator?.stop();
  await relay?.stop();
  await dynalite?.stop();
});

/** The next emission of `name` whose first argument (an event name or a function name) passes `match`. */
async function next(name: string, match: (...args: any[]) => boolean): Promise<any[]> {
  for (;;) {
    const args = await once(logs, name);
    if (match(...args)) return args;
  }
}

const UNAVAILABLE = { type: 'error', code: 'unavailable', message: new UnavailableError().message };

/** Brings DynamoDB back and checks the client: served again, and nothing it got during the outage carried the lost chat or an error's insides. */
async function expectRecovered(client: TestClient): Promise<void> {
  await relay.start();
  client.send({ type: 'chat', content: 'after' });
  expect((await client.next('chat')).message).toBe('after');
  expect(client.frames.map((frame) => frame.message)).not.toContain('during');
  expect(JSON.stringify(client.frames)).not.toMatch(/\s+at\s|ECONNREFUSED|stack|dynamo|internal/i);
  await client.close();
}

it('tells the sender `unavailable`, answers 500 and logs while DynamoDB is unreachable, leaks nothing, and recovers when it is back', async () => {
  const room = uniqueName('room');
  const { client } = await TestClient.join(withQuery(emulator.url, { clientId: uniqueName('o'), room }));
  client.send({ type: 'chat', content: 'before' });
  expect((await client.next('chat')).message).toBe('before');

  await relay.stop();
  const failureLogged = next('function-log', (_name, line) => line.event === 'message_failed');
  const status = next('gateway-warn', (event) => event === 'message_handler_status');
  client.send({ type: 'chat', content: 'during' });
  expect(await client.next('error')).toMatchObject(UNAVAILABLE);
  const [functionName, line] = await failureLogged;
  expect(functionName).toBe('cloudsocket-message');
  expect(line).toMatchObject({ level: 'error', event: 'message_failed' });
  const [, fields] = await status;
  expect(fields).toMatchObject({ routeKey: '$default', statusCode: 500 });
  expect(client.socketOpen()).toBe(true);

  await expectRecovered(client);
});

it('on the CloudBase target with a DynamoDB registry: the same `unavailable` frame, the connection kept', async () => {
  const tables = dynamoClient(dynalite.endpoint);
  const table = await createConnectionsTable(tables);
  const registry = new DynamoDbRegistry({ client: dynamoClient(`http://127.0.0.1:${relay.port}`), tableName: table.tableName, ttlSeconds: 7200 });
  const target = await startSourceServer({}, undefined, registry);
  try {
    const room = uniqueName('room');
    const { client } = await TestClient.join(withQuery(target.url, { clientId: uniqueName('c'), room }));
    await relay.stop();
    client.send({ type: 'chat', content: 'during' });
    expect(await client.next('error')).toMatchObject(UNAVAILABLE);
    expect(client.socketOpen()).toBe(true);
    await expectRecovered(client);
  } finally {
    if (!relay.running) await relay.start();
    await target.stop();
    await table.drop();
    tables.destroy();
  }
});
