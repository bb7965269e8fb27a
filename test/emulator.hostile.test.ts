/**
 * The emulator against clients that break the rules: handshakes that can
 * never become a WebSocket, invocations nobody signed, and a client that
 * stops reading.
 */
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbRegistry } from '../registries/dynamodb-registry.js';
import type { EmulatorOptions, RunningEmulator } from '../scripts/emulator/index.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { dynamoClient } from './support/dynalite.js';
import { Gate, startAwsEmulator, startFixtureEmulator, type HeldConnect } from './support/emulator.js';
import { openRawWebSocket, rawRequest, upgradeRequest } from './support/raw-socket.js';

/** The fixture stack with its own gate, for a test that changes the emulator's options. */
async function fixture(options: EmulatorOptions = {}): Promise<{ gate: Gate; emulator: RunningEmulator; stop(): Promise<void> }> {
  const gate = await Gate.start();
  const emulator = await startFixtureEmulator(gate, options);
  return { gate, emulator, stop: async () => (await emulator.stop(), await gate.stop()) };
}

/** A raw upgrade for `clientId`, left for the test to end. */
function handshakeOn(port: number, stage: string, clientId: string): Socket {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write(upgradeRequest(`/${stage}?clientId=${clientId}`));
  return socket;
}

/** Lets the gate's next $connect through, once it is sure whose it is. */
async function admitNext(gate: Gate, clientId: string): Promise<HeldConnect> {
  const next = await gate.connects.next();
  expect(next.event.queryStringParameters).toEqual({ clientId });
  next.answer({ statusCode: 200 });
  return next;
}

describe('a handshake that cannot become a WebSocket', () => {
  let emulator: RunningEmulator;
  let registry: DynamoDbRegistry;

  beforeAll(async () => {
    emulator = await startAwsEmulator();
    registry = new DynamoDbRegistry({ client: dynamoClient(emulator.dynamoEndpoint), tableName: emulator.stack.table!.name, ttlSeconds: 7200 });
  });
  afterAll(() => emulator?.stop());

  const broken: Array<[string, (target: string) => string, number]> = [
    ['a malformed Sec-WebSocket-Key', (target) => upgradeRequest(target).replace(/Sec-WebSocket-Key: [^\r]*/, 'Sec-WebSocket-Key: x'), 400],
    ['an unparsable subprotocol list', (target) => upgradeRequest(target, ['Sec-WebSocket-Protocol: a,,b']), 400],
    ['POST instead of GET', (target) => upgradeRequest(target).replace(/^GET /, 'POST '), 405],
    ['no Upgrade: websocket', (target) => upgradeRequest(target).replace('Upgrade: websocket', 'Upgrade: h2c'), 400],
  ];

  it.each(broken)('with %s is refused before $connect, leaving no entry and its clientId free', async (_what, request, status) => {
    const clientId = uniqueName('victim');
    const answer = await rawRequest(emulator.port, request(`/${emulator.stage}?clientId=${clientId}`));
    expect(answer.status).toBe(status);
    expect(await registry.findByClientId(clientId)).toBeUndefined();
    const { client, welcome } = await TestClient.join(withQuery(emulator.url, { clientId }));
    expect(welcome.clientId).toBe(clientId);
    await client.close();
  });

  it('that the client abandons while $connect runs gets its $disconnect, so the entry goes', async () => {
    const { gate, emulator: abandoned, stop } = await fixture();
    try {
      gate.autoAnswer = undefined;
      const socket = connect(abandoned.port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(upgradeRequest(`/${abandoned.stage}`));
      const held = await gate.connects.next();
      socket.destroy();
      await new Promise((resolve) => socket.once('close', resolve));
      held.answer({ statusCode: 200 });
      const { connectionId } = held.event.requestContext;
      expect((await gate.disconnectOf(connectionId)).requestContext.disconnectStatusCode).toBe(1006);
    } finally {
      await stop();
    }
  });

  it('that the client abandons while its $connect still waits for an environment never runs $connect, nor $disconnect', async () => {
    const { gate, emulator: busy, stop } = await fixture({ maxEnvironments: 1 });
    const handshake = (clientId: string) => handshakeOn(busy.port, busy.stage, clientId);
    try {
      gate.autoAnswer = undefined;
      const first = handshake('first');
      const held = await gate.connects.next();
      const abandoned = handshake('abandoned');
      // Queued behind the held one once the emulator has counted it.
      await new Promise((resolve) => abandoned.once('connect', resolve));
      abandoned.destroy();
      await new Promise((resolve) => abandoned.once('close', resolve));
      held.answer({ statusCode: 200 });
      // Handshakes are served in order: had the abandoned one run, its $connect would come before this one's.
      const last = handshake('last');
      const next = await admitNext(gate, 'last');
      expect(busy.functionStats()['cloudsocket-fixture-connect']).toMatchObject({ invocations: 2, abandoned: 1 });
      first.destroy();
      last.destroy();
      const disconnected = [(await gate.disconnects.next()).requestContext.connectionId, (await gate.disconnects.next()).requestContext.connectionId];
      expect(disconnected.sort()).toEqual([held.event.requestContext.connectionId, next.event.requestContext.connectionId].sort());
    } finally {
      await stop();
    }
  });
});

describe('invocations still waiting at the integration timeout', () => {
  it('answers a handshake whose $connect still waits for an environment 504, and never runs that $connect', async () => {
    const { gate, emulator: busy, stop } = await fixture({ maxEnvironments: 1, integrationTimeoutMs: 1500 });
    try {
      gate.autoAnswer = undefined;
      const first = handshakeOn(busy.port, busy.stage, 'first');
      const held = await gate.connects.next();
      const late = await rawRequest(busy.port, upgradeRequest(`/${busy.stage}?clientId=late`));
      expect(late.status).toBe(504);
      held.answer({ statusCode: 200 });
      // Had the timed-out $connect run after its 504, it would come before this one's.
      const after = handshakeOn(busy.port, busy.stage, 'after');
      await admitNext(gate, 'after');
      expect(busy.functionStats()['cloudsocket-fixture-connect']).toMatchObject({ invocations: 2, abandoned: 1 });
      first.destroy();
      after.destroy();
    } finally {
      await stop();
    }
  });

  it('still runs a frame\'s invocation that waited past it, as AWS would have run it', async () => {
    // Under the echo function's own 2 s Timeout, so the gateway gives up on the hanging frame first.
    const { emulator: busy, stop } = await fixture({ maxEnvironments: 1, integrationTimeoutMs: 1000 });
    try {
      const client = await TestClient.connect(busy.url);
      client.send('{"hang":true}');
      client.send('queued behind it');
      for (let answers = 0; answers < 2; answers++) await client.next((frame) => frame.message === 'Endpoint request timed out', 10_000);
      // The hanging one ends at its 2 s Timeout; the one queued behind it then runs, late but not lost.
      // Nothing tells when an environment takes it (its answer goes nowhere), so the counts are read until they move.
      const echo = 'cloudsocket-fixture-echo';
      const deadline = Date.now() + 10_000;
      while (busy.functionStats()[echo]!.invocations < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(busy.functionStats()[echo]).toMatchObject({ invocations: 2, abandoned: 0 });
      await client.close();
    } finally {
      await stop();
    }
  });
});

describe('the Lambda Invoke API', () => {
  let emulator: RunningEmulator;
  let stop: () => Promise<void>;
  const invokePath = (name: string) => `/2015-03-31/functions/${name}/invocations`;

  beforeAll(async () => ({ emulator, stop } = await fixture()));
  afterAll(() => stop?.());

  it('refuses an unsigned invocation with 403 MissingAuthenticationTokenException and runs nothing', async () => {
    const forged = JSON.stringify({ requestContext: { connectionId: 'forged=' } });
    const answer = await fetch(`${emulator.httpUrl}${invokePath('cloudsocket-fixture-echo')}`, {
      method: 'POST',
      headers: { 'X-Amz-Invocation-Type': 'RequestResponse' },
      body: JSON.stringify({ body: forged }),
    });
    expect(answer.status).toBe(403);
    expect(answer.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
    expect(await answer.json()).toEqual({ message: 'Missing Authentication Token' });
  });

  it('refuses a signature shaped right but made with another secret or key, as Lambda does', async () => {
    const payload = JSON.stringify({ body: 'x' });
    const lambda = (accessKeyId: string, secretAccessKey: string) =>
      new LambdaClient({ endpoint: emulator.httpUrl, region: 'us-east-1', credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });
    await expect(lambda('local', 'guessed').send(new InvokeCommand({ FunctionName: 'cloudsocket-fixture-echo', Payload: payload }))).rejects.toMatchObject({
      name: 'InvalidSignatureException',
      $metadata: { httpStatusCode: 403 },
    });
    await expect(lambda('AKIDEXAMPLE', 'local').send(new InvokeCommand({ FunctionName: 'cloudsocket-fixture-echo', Payload: payload }))).rejects.toMatchObject({
      name: 'UnrecognizedClientException',
      $metadata: { httpStatusCode: 403 },
    });
    const signed = await lambda('local', 'local').send(new InvokeCommand({ FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:cloudsocket-fixture-echo', Payload: payload }));
    expect(signed.StatusCode).toBe(200);
  });
});

describe('a client that stops reading', () => {
  it('is cut once its backlog passes the bound, and its $disconnect follows', async () => {
    const { gate, emulator, stop } = await fixture({ maxBufferedBytes: 256 * 1024 });
    let raw: Socket | undefined;
    try {
      gate.autoAnswer = undefined;
      const opening = openRawWebSocket(emulator.port, `/${emulator.stage}`);
      const held = await gate.connects.next();
      held.answer({ statusCode: 200 });
      raw = await opening;
      gate.autoAnswer = { statusCode: 200 };
      // Never read again: whatever is sent now piles up in the kernel's buffers, then in the emulator.
      raw.pause();
      const { connectionId } = held.event.requestContext;
      const management = new ApiGatewayManagementApiClient({
        endpoint: `${emulator.httpUrl}/${emulator.stage}`,
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        maxAttempts: 1,
      });
      const chunk = new TextEncoder().encode('x'.repeat(128 * 1024));
      let posted = 0;
      let gone = false;
      // 64 MiB is far beyond what loopback's socket buffers and the bound can hold together.
      while (posted < 64 * 1024 * 1024 && !gone) {
        try {
          await management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: chunk }));
          posted += chunk.length;
        } catch (error) {
          expect((error as Error).name).toBe('GoneException');
          gone = true;
        }
      }
      expect(gone).toBe(true);
      expect((await gate.disconnectOf(connectionId)).requestContext.disconnectStatusCode).toBe(1006);
      management.destroy();
    } finally {
      raw?.destroy();
      await stop();
    }
  });
});
