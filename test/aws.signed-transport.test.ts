/**
 * The AWS handlers' transport: PostToConnection, GetConnection and DeleteConnection as
 * signed HTTP requests on keep-alive sockets, without the SDK client. Against
 * the emulator's @connections API (which checks SigV4), and against a
 * scripted HTTP server for the answers the emulator is not made to give on
 * cue (throttling, 5xx, 403).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignedManagementTransport } from '../functions/aws/signed-management-transport.js';
import { DynamoDbRegistry } from '../registries/dynamodb-registry.js';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { dynamoClient } from './support/dynalite.js';
import { handlerEnvironment, startAwsEmulator } from './support/emulator.js';

describe('the signed transport against the emulator', () => {
  let emulator: RunningEmulator;
  let registry: DynamoDbRegistry;
  let transport: SignedManagementTransport;
  const open: TestClient[] = [];

  beforeAll(async () => {
    emulator = await startAwsEmulator();
    registry = new DynamoDbRegistry({ client: dynamoClient(emulator.dynamoEndpoint), tableName: emulator.stack.table!.name, ttlSeconds: 7200 });
    const env = handlerEnvironment(emulator);
    transport = new SignedManagementTransport({
      endpoint: env.AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI!,
      region: env.AWS_REGION!,
      credentials: async () => ({ accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY!, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) }),
      maxSockets: 4,
    });
  });

  afterAll(async () => {
    transport?.destroy();
    await Promise.all(open.map((client) => client.close().catch(() => undefined)));
    await emulator?.stop();
  });

  async function member() {
    const clientId = uniqueName('m');
    const { client } = await TestClient.join(withQuery(emulator.url, { clientId, room: uniqueName('room') }));
    open.push(client);
    return { client, connectionId: (await registry.findByClientId(clientId))!.connectionId };
  }

  it('posts a frame to one connection, and says gone for one that is not there', async () => {
    const { client, connectionId } = await member();
    expect(await transport.send(connectionId, '{"type":"notice","text":"signed"}')).toBe('sent');
    expect(await client.next('notice')).toEqual({ type: 'notice', text: 'signed' });
    expect(await transport.send('NotAConnection0=', '{"type":"notice"}')).toBe('gone');
  });

  it('asks GetConnection whether a connection is open: true for a member, false for one that is not there', async () => {
    const { connectionId } = await member();
    expect(await transport.isOpen(connectionId)).toBe(true);
    expect(await transport.isOpen('NotAConnection0=')).toBe(false);
  });

  it('throws PayloadTooLargeException, as the SDK names it, for more than API Gateway takes', async () => {
    const { connectionId } = await member();
    await expect(transport.send(connectionId, JSON.stringify({ type: 'notice', text: 'x'.repeat(130 * 1024) }))).rejects.toMatchObject({
      name: 'PayloadTooLargeException',
      $metadata: { httpStatusCode: 413 },
    });
  });

  it('closes a connection with DeleteConnection, and takes one already gone quietly', async () => {
    const { client, connectionId } = await member();
    await transport.close(connectionId, 1000, 'unused');
    await client.waitClosed();
    await expect(transport.close(connectionId, 1000, 'unused')).resolves.toBeUndefined();
  });
});

describe('the signed transport against a scripted endpoint', () => {
  let server: Server;
  let endpoint: string;
  const requests: IncomingMessage[] = [];
  const bodies: string[] = [];
  let sockets = 0;
  let answers: Array<{ status: number; type?: string; body?: string }> = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      requests.push(request);
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString('utf8'));
        const answer = answers.shift() ?? { status: 200 };
        response.writeHead(answer.status, answer.type ? { 'x-amzn-errortype': answer.type, 'content-type': 'application/json' } : {});
        response.end(answer.body ?? '');
      });
    });
    server.on('connection', () => sockets++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/production`;
  });

  afterAll(() => new Promise((resolve) => server.close(resolve)));

  const transportOf = () =>
    new SignedManagementTransport({ endpoint, region: 'eu-west-1', credentials: async () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token' }), maxSockets: 2 });

  const fresh = () => {
    requests.length = 0;
    bodies.length = 0;
    sockets = 0;
  };

  it("signs each request for execute-api in the region, on the stage's @connections path with the id encoded", async () => {
    fresh();
    const transport = transportOf();
    expect(await transport.send('abc=', 'hello')).toBe('sent');
    transport.destroy();
    const [request] = requests;
    expect(request!.method).toBe('POST');
    expect(request!.url).toBe('/production/@connections/abc%3D');
    expect(request!.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/);
    expect(request!.headers['x-amz-security-token']).toBe('token');
    expect(request!.headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
  });

  it('sends the hash of each body it posts, the same body many times or another between', async () => {
    fresh();
    const transport = transportOf();
    for (const body of ['to all', 'to all', 'to one', 'to all', 'é ✓']) expect(await transport.send('abc=', body)).toBe('sent');
    transport.destroy();
    expect(bodies).toEqual(['to all', 'to all', 'to one', 'to all', 'é ✓']);
    for (const [index, request] of requests.entries()) {
      expect(request.headers['x-amz-content-sha256']).toBe(createHash('sha256').update(bodies[index]!, 'utf8').digest('hex'));
      expect(request.headers['content-length']).toBe(String(Buffer.byteLength(bodies[index]!)));
      expect(request.headers.authorization).toMatch(/SignedHeaders=[a-z0-9;-]*x-amz-content-sha256/);
    }
  });

  it('asks for credentials once while they do not expire soon, and again for each request when they do', async () => {
    const countedTransport = (expiration: Date | undefined) => {
      let asked = 0;
      const transport = new SignedManagementTransport({
        endpoint,
        region: 'eu-west-1',
        credentials: async () => {
          asked++;
          return { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', ...(expiration ? { expiration } : {}) };
        },
        maxSockets: 1,
      });
      return { transport, asked: () => asked };
    };
    for (const [expiration, expected] of [
      [undefined, 1],
      [new Date(Date.now() + 3_600_000), 1],
      [new Date(Date.now() + 60_000), 3],
    ] as const) {
      fresh();
      const { transport, asked } = countedTransport(expiration);
      for (let i = 0; i < 3; i++) expect(await transport.send('abc=', `post ${i}`)).toBe('sent');
      transport.destroy();
      expect(asked()).toBe(expected);
    }
  });

  it('keeps its sockets open: fifty posts, one after another, take one connection', async () => {
    fresh();
    const transport = transportOf();
    for (let i = 0; i < 50; i++) expect(await transport.send('abc=', `message ${i}`)).toBe('sent');
    transport.destroy();
    expect(requests).toHaveLength(50);
    expect(sockets).toBe(1);
  });

  it('retries a throttled or failing post with backoff, up to three attempts, and then throws what the last answer said', async () => {
    fresh();
    const transport = transportOf();
    answers = [{ status: 429, type: 'LimitExceededException' }, { status: 500, type: 'InternalServerError' }, { status: 200 }];
    expect(await transport.send('abc=', 'eventually')).toBe('sent');
    expect(requests).toHaveLength(3);

    fresh();
    answers = [1, 2, 3].map(() => ({ status: 429, type: 'LimitExceededException', body: '{"message":"Rate exceeded"}' }));
    await expect(transport.send('abc=', 'never')).rejects.toMatchObject({ name: 'LimitExceededException', message: 'Rate exceeded', $metadata: { httpStatusCode: 429 } });
    expect(requests).toHaveLength(3);
    transport.destroy();
  });

  it('throws a refusal at once, named by x-amzn-errortype without its suffix', async () => {
    fresh();
    const transport = transportOf();
    answers = [{ status: 403, type: 'ForbiddenException:http://internal.amazon.com/coral/com.amazon.coral.service/', body: '{"message":"Forbidden"}' }];
    await expect(transport.send('abc=', 'denied')).rejects.toMatchObject({ name: 'ForbiddenException', message: 'Forbidden' });
    expect(requests).toHaveLength(1);
    answers = [{ status: 410, type: 'GoneException' }];
    await expect(transport.close('abc=', 1000, '')).resolves.toBeUndefined();
    expect(requests.map((request) => request.method)).toEqual(['POST', 'DELETE']);
    transport.destroy();
  });
});
