/**
 * The @connections management API of the emulator, through the real
 * ApiGatewayManagementApiClient: what the handlers (and any backend) call.
 */
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbRegistry } from '../registries/dynamodb-registry.js';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { dynamoClient } from './support/dynalite.js';
import { Gate, startAwsEmulator, startFixtureEmulator } from './support/emulator.js';

let emulator: RunningEmulator;
let registry: DynamoDbRegistry;
const open: TestClient[] = [];

beforeAll(async () => {
  emulator = await startAwsEmulator();
  registry = new DynamoDbRegistry({ client: dynamoClient(emulator.dynamoEndpoint), tableName: emulator.stack.table!.name, ttlSeconds: 7200 });
});

afterAll(async () => {
  await Promise.all(open.map((client) => client.close().catch(() => undefined)));
  await emulator?.stop();
});

function management(target: RunningEmulator = emulator) {
  return new ApiGatewayManagementApiClient({
    endpoint: `${target.httpUrl}/${target.stage}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
}

async function join(room: string, userAgent = 'cloudsocket-test/1') {
  const clientId = uniqueName('m');
  const joined = await TestClient.join(withQuery(emulator.url, { clientId, room }), { headers: { 'User-Agent': userAgent } });
  open.push(joined.client);
  const record = await registry.findByClientId(clientId);
  return { ...joined, clientId, connectionId: record!.connectionId };
}

describe('PostToConnection', () => {
  it('delivers the data as one frame to that connection only', async () => {
    const room = uniqueName('room');
    const a = await join(room);
    const b = await join(room);
    await management().send(new PostToConnectionCommand({ ConnectionId: a.connectionId, Data: '{"type":"notice","text":"from the backend"}' }));
    expect(await a.client.next('notice')).toEqual({ type: 'notice', text: 'from the backend' });
    b.client.send({ type: 'ping' });
    await b.client.next('pong');
    expect(b.client.all('notice')).toHaveLength(0);
  });

  it('accepts @ written as %40, signed so', async () => {
    const a = await join(uniqueName('room'));
    const client = management();
    const sentPaths: string[] = [];
    // Before signing, so the signature covers the encoded path, as a client that encodes it signs it.
    client.middlewareStack.add(
      (next) => (args) => {
        const request = args.request as { path: string };
        request.path = request.path.replace('/@connections/', '/%40connections/');
        sentPaths.push(request.path);
        return next(args);
      },
      { step: 'build' },
    );
    await client.send(new PostToConnectionCommand({ ConnectionId: a.connectionId, Data: '{"type":"encoded"}' }));
    expect(sentPaths).toEqual([expect.stringContaining(`/${emulator.stage}/%40connections/`)]);
    expect(await a.client.next('encoded')).toEqual({ type: 'encoded' });
  });

  it('throws PayloadTooLargeException over 128 KiB, and delivers exactly 128 KiB', async () => {
    const a = await join(uniqueName('room'));
    const error = await management()
      .send(new PostToConnectionCommand({ ConnectionId: a.connectionId, Data: 'x'.repeat(128 * 1024 + 1) }))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'PayloadTooLargeException', $metadata: { httpStatusCode: 413 } });
    await management().send(new PostToConnectionCommand({ ConnectionId: a.connectionId, Data: JSON.stringify({ type: 'big', pad: 'y'.repeat(128 * 1024 - 40) }) }));
    expect((await a.client.next('big')).pad).toHaveLength(128 * 1024 - 40);
  });

  it('refuses a request signed with a secret that is not the key\'s, as the signature is recomputed', async () => {
    const a = await join(uniqueName('room'));
    const forger = new ApiGatewayManagementApiClient({
      endpoint: `${emulator.httpUrl}/${emulator.stage}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'not-the-secret' },
      maxAttempts: 1,
    });
    const error = await forger.send(new PostToConnectionCommand({ ConnectionId: a.connectionId, Data: '{"type":"forged"}' })).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ForbiddenException', $metadata: { httpStatusCode: 403 } });
    expect((error as Error).message).toMatch(/signature we calculated does not match/);
    forger.destroy();
  });

  it('refuses a body other than the one signed, whose x-amz-content-sha256 the request still carries', async () => {
    const a = await join(uniqueName('room'));
    const client = management();
    // After signing, just before sending: same length, same headers, other bytes.
    client.middlewareStack.add(
      (next) => (args) => {
        (args.request as { body: unknown }).body = new TextEncoder().encode('{"type":"swap"}');
        return next(args);
      },
      { step: 'deserialize' },
    );
    const error = await client.send(new PostToConnectionCommand({ ConnectionId: a.connectionId, Data: '{"type":"told"}' })).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ForbiddenException', $metadata: { httpStatusCode: 403 } });
    expect((error as Error).message).toMatch(/signature we calculated does not match/);
    await management().send(new PostToConnectionCommand({ ConnectionId: a.connectionId, Data: '{"type":"after"}' }));
    await a.client.next('after');
    expect(a.client.all('swap')).toHaveLength(0);
    expect(a.client.all('told')).toHaveLength(0);
    client.destroy();
  });

  it('refuses an unsigned request with ForbiddenException', async () => {
    const a = await join(uniqueName('room'));
    const response = await fetch(`${emulator.httpUrl}/${emulator.stage}/@connections/${encodeURIComponent(a.connectionId)}`, { method: 'POST', body: 'x' });
    expect(response.status).toBe(403);
    expect(response.headers.get('x-amzn-errortype')).toBe('ForbiddenException');
  });
});

describe('GetConnection', () => {
  it('describes the connection: ConnectedAt, Identity, LastActiveAt', async () => {
    const before = Date.now();
    const a = await join(uniqueName('room'), 'probe-agent/2.0');
    const first = await management().send(new GetConnectionCommand({ ConnectionId: a.connectionId }));
    expect(first.ConnectedAt).toBeInstanceOf(Date);
    expect(first.ConnectedAt!.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(first.Identity).toEqual({ SourceIp: '127.0.0.1', UserAgent: 'probe-agent/2.0' });
    expect(first.LastActiveAt).toBeInstanceOf(Date);

    a.client.send({ type: 'ping' });
    await a.client.next('pong');
    const second = await management().send(new GetConnectionCommand({ ConnectionId: a.connectionId }));
    expect(second.LastActiveAt!.getTime()).toBeGreaterThanOrEqual(first.LastActiveAt!.getTime());
    expect(second.ConnectedAt).toEqual(first.ConnectedAt);
  });
});

describe('DeleteConnection', () => {
  it('closes the socket and fires $disconnect, which tells the room', async () => {
    const room = uniqueName('room');
    const a = await join(room);
    const b = await join(room);
    await a.client.next('user_joined');
    await management().send(new DeleteConnectionCommand({ ConnectionId: b.connectionId }));
    expect((await b.client.waitClosed()).code).toBe(1000);
    expect(await a.client.next('user_left')).toMatchObject({ clientId: b.clientId, onlineCount: 1 });
  });
});

describe('GoneException', () => {
  it('is thrown by name for an id that never existed, on every operation', async () => {
    const client = management();
    const ConnectionId = 'Zm9yZ2V0LW1lLW5vdz0=';
    for (const command of [
      new PostToConnectionCommand({ ConnectionId, Data: 'x' }),
      new GetConnectionCommand({ ConnectionId }),
      new DeleteConnectionCommand({ ConnectionId }),
    ]) {
      const error = await client.send(command as PostToConnectionCommand).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'GoneException', $metadata: { httpStatusCode: 410 } });
    }
  });

  it('is thrown for a closed connection', async () => {
    const a = await join(uniqueName('room'));
    await a.client.close();
    const error = await management()
      .send(new PostToConnectionCommand({ ConnectionId: a.connectionId, Data: 'late' }))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'GoneException' });
  });

  it('is thrown while $connect has not returned, and delivery works once it has', async () => {
    const gate = await Gate.start();
    const fixture = await startFixtureEmulator(gate);
    try {
      gate.autoAnswer = undefined;
      const socket = new WebSocket(fixture.url);
      const received = new Promise<string>((resolve) => socket.once('message', (data) => resolve(data.toString())));
      const held = await gate.connects.next();
      const ConnectionId = held.event.requestContext.connectionId as string;
      const client = management(fixture);
      for (const command of [new PostToConnectionCommand({ ConnectionId, Data: 'too early' }), new GetConnectionCommand({ ConnectionId })]) {
        const error = await client.send(command as PostToConnectionCommand).catch((e: unknown) => e);
        expect(error).toMatchObject({ name: 'GoneException' });
      }
      const opened = new Promise<void>((resolve) => socket.once('open', () => resolve()));
      held.answer({ statusCode: 200 });
      await opened;
      await client.send(new PostToConnectionCommand({ ConnectionId, Data: 'now you can hear me' }));
      expect(await received).toBe('now you can hear me');
      socket.close();
    } finally {
      await fixture.stop();
      await gate.stop();
    }
  });
});
