/**
 * The emulated API Gateway WebSocket side, against the fixture stack: event
 * shapes, $connect's say over the handshake, route selection, limits,
 * timeouts and the Lambda Invoke API.
 */
import { ApiGatewayManagementApiClient, DeleteConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { InvokeCommand, LambdaClient, ResourceNotFoundException } from '@aws-sdk/client-lambda';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import { handshakeStatus, TestClient, withQuery } from './support/client.js';
import { Gate, startFixtureEmulator } from './support/emulator.js';
import { rawRequest, upgradeRequest } from './support/raw-socket.js';

const ID = /^[A-Za-z0-9_-]{15}=$/;
const REQUEST_TIME = /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/;

let gate: Gate;
let emulator: RunningEmulator;

beforeAll(async () => {
  gate = await Gate.start();
  emulator = await startFixtureEmulator(gate);
});

afterAll(async () => {
  await emulator?.stop();
  await gate?.stop();
});

/** Connects while the test decides what $connect answers. */
async function connectHeld(url: string, options: { headers?: Record<string, string>; protocols?: string[] } = {}) {
  gate.autoAnswer = undefined;
  try {
    const socket = new WebSocket(url, options.protocols, { headers: options.headers });
    socket.on('error', () => undefined);
    const held = await gate.connects.next();
    return { socket, held };
  } finally {
    gate.autoAnswer = { statusCode: 200 };
  }
}

function opened(socket: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
}

describe('$connect', () => {
  it("names the emulator's own address as domainName, whatever Host the client sends, so no client points the functions elsewhere", async () => {
    const { port } = emulator;
    const domainNameFor = async (host: string) => {
      const { socket, held } = await connectHeld(emulator.url, { headers: { Host: host } });
      held.answer({ statusCode: 200 });
      await opened(socket);
      socket.close();
      return held.event.requestContext.domainName;
    };
    expect(await domainNameFor(`localhost:${port}`)).toBe(`localhost:${port}`);
    expect(await domainNameFor(`127.0.0.1:${port}`)).toBe(`127.0.0.1:${port}`);
    // Without its port the endpoint would be port 443; another host, another server.
    expect(await domainNameFor('127.0.0.1')).toBe(`127.0.0.1:${port}`);
    expect(await domainNameFor(`evil.example:${port}`)).toBe(`127.0.0.1:${port}`);
    expect(await domainNameFor('evil.example')).toBe(`127.0.0.1:${port}`);
  });

  it('gets the CONNECT event API Gateway sends, and the function its environment', async () => {
    const { socket, held } = await connectHeld(`${emulator.url}?room=a&room=b&clientId=x`, { headers: { 'X-Custom': 'yes', 'User-Agent': 'probe/1' } });
    const { event, env } = held;
    held.answer({ statusCode: 200 });
    await opened(socket);

    expect(event.headers['X-Custom']).toBe('yes');
    expect(event.multiValueHeaders['X-Custom']).toEqual(['yes']);
    expect(event.headers['X-Forwarded-For']).toBe('127.0.0.1');
    expect(event.headers['Sec-WebSocket-Key']).toEqual(expect.any(String));
    expect(event.queryStringParameters).toEqual({ room: 'b', clientId: 'x' });
    expect(event.multiValueQueryStringParameters).toEqual({ room: ['a', 'b'], clientId: ['x'] });
    expect(event.isBase64Encoded).toBe(false);
    const context = event.requestContext;
    expect(context).toMatchObject({
      routeKey: '$connect',
      eventType: 'CONNECT',
      messageDirection: 'IN',
      stage: 'dev',
      apiId: emulator.stack.apiId,
      disconnectStatusCode: null,
      disconnectReason: null,
      messageId: null,
    });
    expect(context.connectionId).toMatch(ID);
    expect(context.requestId).toMatch(ID);
    expect(context.extendedRequestId).toMatch(ID);
    expect(context.requestTime).toMatch(REQUEST_TIME);
    expect(context.requestTimeEpoch).toBeGreaterThanOrEqual(context.connectedAt);
    expect(context.domainName).toBe(new URL(emulator.httpUrl).host);
    expect(context.identity).toMatchObject({ sourceIp: '127.0.0.1', userAgent: 'probe/1', accountId: null, user: null });

    expect(env).toMatchObject({
      AWS_ENDPOINT_URL_DYNAMODB: emulator.httpUrl,
      AWS_ENDPOINT_URL_LAMBDA: emulator.httpsUrl,
      AWS_REGION: 'us-east-1',
      AWS_LAMBDA_FUNCTION_NAME: 'cloudsocket-fixture-connect',
      TABLE_NAME: 'cloudsocket-Table',
      SELF_ARN: 'arn:aws:lambda:us-east-1:000000000000:function:cloudsocket-fixture-connect',
      _HANDLER: 'connect.handler',
    });
    expect(env.AWS_ACCESS_KEY_ID).toBeTruthy();
    // As on AWS, the management endpoint is the function's to build from the event.
    expect(env.AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI).toBeUndefined();
    expect(env.NODE_EXTRA_CA_CERTS).toEqual(expect.any(String));
    expect(env.PATH).toBeUndefined();
    socket.close();
  });

  it('sends queryStringParameters: null when the URL has no query', async () => {
    const { socket, held } = await connectHeld(emulator.url);
    held.answer({ statusCode: 200 });
    await opened(socket);
    expect(held.event.queryStringParameters).toBeNull();
    expect(held.event.multiValueQueryStringParameters).toBeNull();
    socket.close();
  });

  it('refuses the handshake with the status and body $connect returned', async () => {
    gate.autoAnswer = { statusCode: 403, body: '{"code":"nope"}' };
    try {
      expect(await handshakeStatus(emulator.url)).toEqual({ status: 403, body: '{"code":"nope"}' });
    } finally {
      gate.autoAnswer = { statusCode: 200 };
    }
  });

  it('answers HTTP 500 without a stack trace when $connect throws', async () => {
    gate.autoAnswer = { throw: true };
    try {
      const { status, body } = await handshakeStatus(emulator.url);
      expect(status).toBe(500);
      expect(JSON.parse(body)).toMatchObject({ message: 'Internal server error' });
      expect(body).not.toMatch(/on purpose|\.mjs/);
    } finally {
      gate.autoAnswer = { statusCode: 200 };
    }
  });

  it('forwards the Sec-WebSocket-Protocol $connect returned', async () => {
    const { socket, held } = await connectHeld(emulator.url, { protocols: ['chat.v1', 'chat.v2'] });
    expect(held.event.headers['Sec-WebSocket-Protocol']).toBe('chat.v1,chat.v2');
    held.answer({ statusCode: 200, headers: { 'Sec-WebSocket-Protocol': 'chat.v2' } });
    await opened(socket);
    expect(socket.protocol).toBe('chat.v2');
    socket.close();
  });

  it('selects no subprotocol by itself when $connect returned none', async () => {
    const { socket, held } = await connectHeld(emulator.url, { protocols: ['chat.v1'] });
    held.answer({ statusCode: 200 });
    // Like a browser, ws fails a handshake that answers an offered subprotocol with none.
    await expect(opened(socket)).rejects.toThrow(/no subprotocol/i);
  });

  it('refuses upgrades on any path but the stage with 403', async () => {
    const other = new URL(emulator.url);
    other.pathname = '/prod';
    expect((await handshakeStatus(other.toString())).status).toBe(403);
  });

  it('answers an upgrade to an odd or unreadable target with 403 and keeps serving everyone else', async () => {
    const { port, stage } = emulator;
    const bystander = await TestClient.connect(emulator.url);
    // `new URL` throws for the first three, resolves the rest to another path than was sent.
    const targets = ['//', '//@', 'http://[', `//x/${stage}`, `///${stage}`, `/\\${stage}`, `/x/../${stage}`, '*', `http://a:99999/${stage}`];
    const answers = await Promise.all(targets.map((target) => rawRequest(port, upgradeRequest(target))));
    answers.forEach((answer, i) => expect(answer, targets[i]).toEqual({ status: 403, body: '{"message":"Forbidden"}' }));
    expect(bystander.socketOpen()).toBe(true);
    expect((await rawRequest(port, upgradeRequest(`/${stage}?clientId=odd`))).status).toBe(101);
    expect((await rawRequest(port, upgradeRequest(`http://h/${stage}?clientId=abs`))).status).toBe(101);
    await bystander.close();
  });

  it('answers the HTTP APIs at unreadable targets with 404, not a crash', async () => {
    for (const target of ['//', '//@', 'http://[', `/${emulator.stage}/@connections/%`, '/2015-03-31/functions/%/invocations']) {
      const answer = await rawRequest(emulator.port, `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n`);
      expect(answer.status, target).toBe(404);
    }
    const bystander = await TestClient.connect(emulator.url);
    expect(bystander.socketOpen()).toBe(true);
    await bystander.close();
  });
});

describe('messages', () => {
  async function echoClient() {
    const client = await TestClient.connect(withQuery(emulator.url, {}));
    return client;
  }

  it('routes by $request.body.action and sends the MESSAGE event API Gateway sends', async () => {
    const client = await echoClient();
    client.send({ action: 'shout', text: 'hi' });
    const shout = await client.next('echo');
    expect(shout.event.requestContext).toMatchObject({ routeKey: 'shout', eventType: 'MESSAGE', messageDirection: 'IN', stage: 'dev' });
    expect(shout.event.requestContext.messageId).toMatch(ID);
    expect(shout.event.requestContext.identity.sourceIp).toBe('127.0.0.1');
    expect(shout.event).toMatchObject({ body: '{"action":"shout","text":"hi"}', isBase64Encoded: false });

    for (const frame of ['plain text', '{"action":"nobody"}', '{"action":{"nested":1}}', '[1,2]', '{"action":"$connect"}']) {
      client.send(frame);
      const echo = await client.next('echo');
      expect(echo.event.requestContext.routeKey).toBe('$default');
      expect(echo.event.body).toBe(frame);
    }
    await client.close();
  });

  it('tells the client "Internal server error" when the function throws, and keeps the connection', async () => {
    const client = await echoClient();
    client.send({ action: 'throw' });
    const failure = await client.next((frame) => frame.message === 'Internal server error');
    expect(failure.connectionId).toMatch(ID);
    expect(JSON.stringify(failure)).not.toMatch(/on purpose|secret|\.mjs/);
    client.send('still there?');
    expect((await client.next('echo')).event.body).toBe('still there?');
    await client.close();
  });

  it('closes with 1003 on a binary frame and reports it to $disconnect', async () => {
    const client = await echoClient();
    client.send('who am i');
    const { connectionId } = (await client.next('echo')).event.requestContext;
    client.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    expect((await client.waitClosed()).code).toBe(1003);
    expect((await gate.disconnectOf(connectionId)).requestContext).toMatchObject({ eventType: 'DISCONNECT', routeKey: '$disconnect', disconnectStatusCode: 1003 });
  });

  /** Sends `body` as one text message cut into frames of at most `frameBytes`. */
  function sendFragmented(client: TestClient, body: string, frameBytes: number): void {
    for (let start = 0; start < body.length; start += frameBytes) {
      const end = Math.min(start + frameBytes, body.length);
      client.socket.send(body.slice(start, end), { binary: false, fin: end === body.length });
    }
  }

  it('accepts a frame of exactly 32 KiB and closes with 1009 "Message too big" on a larger one, as API Gateway does', async () => {
    const client = await echoClient();
    client.send('x'.repeat(32 * 1024));
    const echo = await client.next('echo');
    expect(echo.event.body).toHaveLength(32 * 1024);
    // Well under the 128 KiB message limit, but in one frame.
    client.send('x'.repeat(32 * 1024 + 1));
    const closed = await client.waitClosed();
    expect(closed).toMatchObject({ code: 1009, reason: 'Message too big' });
    const disconnect = await gate.disconnectOf(echo.event.requestContext.connectionId);
    expect(disconnect.requestContext).toMatchObject({ disconnectStatusCode: 1009, disconnectReason: 'Message too big' });
  });

  it('accepts a message of exactly 128 KiB in 32 KiB frames and closes with 1009 beyond', async () => {
    const client = await echoClient();
    sendFragmented(client, 'x'.repeat(128 * 1024), 32 * 1024);
    const echo = await client.next('echo');
    expect(echo.event.body).toHaveLength(128 * 1024);
    sendFragmented(client, 'x'.repeat(128 * 1024 + 1), 32 * 1024);
    expect((await client.waitClosed()).code).toBe(1009);
    expect((await gate.disconnectOf(echo.event.requestContext.connectionId)).requestContext.disconnectStatusCode).toBe(1009);
  });

  it('reports the client close code and reason to $disconnect, with the DISCONNECT headers', async () => {
    const client = await echoClient();
    client.send('who am i');
    const { connectionId, connectedAt } = (await client.next('echo')).event.requestContext;
    client.socket.close(4000, 'bye');
    const event = await gate.disconnectOf(connectionId);
    expect(event.requestContext).toMatchObject({ disconnectStatusCode: 4000, disconnectReason: 'bye', connectedAt });
    expect(Object.keys(event.headers).sort()).toEqual(['Host', 'X-Forwarded-For', 'x-api-key', 'x-restapi']);
  });

  it('names a client close without a status code as API Gateway does', async () => {
    const client = await echoClient();
    client.send('who am i');
    const { connectionId } = (await client.next('echo')).event.requestContext;
    client.socket.close();
    expect((await gate.disconnectOf(connectionId)).requestContext).toMatchObject({
      disconnectStatusCode: 1005,
      disconnectReason: 'Client-side close frame status not set',
    });
  });

  it('reports a DeleteConnection to $disconnect as 1000 "Connection Closed Normally"', async () => {
    const client = await echoClient();
    client.send('who am i');
    const { connectionId } = (await client.next('echo')).event.requestContext;
    const management = new ApiGatewayManagementApiClient({
      endpoint: `${emulator.httpUrl}/${emulator.stage}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    await management.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    expect((await client.waitClosed()).code).toBe(1000);
    expect((await gate.disconnectOf(connectionId)).requestContext).toMatchObject({ disconnectStatusCode: 1000, disconnectReason: 'Connection Closed Normally' });
    management.destroy();
  });
});

describe('timeouts', () => {
  it('closes an idle connection with 1001 and fires $disconnect', async () => {
    const short = await startFixtureEmulator(gate, { idleTimeoutMs: 1500 });
    try {
      const client = await TestClient.connect(short.url);
      client.send('who am i');
      const { requestContext } = (await client.next('echo')).event;
      expect(await client.waitClosed()).toMatchObject({ code: 1001 });
      expect((await gate.disconnectOf(requestContext.connectionId)).requestContext).toMatchObject({ disconnectStatusCode: 1001, disconnectReason: 'Going away' });
    } finally {
      await short.stop();
    }
  });

  it('closes a connection at its maximum duration with 1001 however busy it is', async () => {
    const short = await startFixtureEmulator(gate, { maxConnectionMs: 2000 });
    try {
      const client = await TestClient.connect(short.url);
      client.send('who am i');
      const { requestContext } = (await client.next('echo')).event;
      // Keep it busy: every echo triggers the next frame, until the gateway ends it.
      client.socket.on('message', () => client.socketOpen() && client.send('busy'));
      client.send('busy');
      expect(await client.waitClosed()).toMatchObject({ code: 1001 });
      expect((await gate.disconnectOf(requestContext.connectionId)).requestContext).toMatchObject({ disconnectStatusCode: 1001, disconnectReason: 'Going away' });
    } finally {
      await short.stop();
    }
  });
});

describe('Lambda Invoke API', () => {
  const lambda = () => new LambdaClient({ endpoint: emulator.httpUrl, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });

  it('runs a RequestResponse invocation and answers its result', async () => {
    const answer = await lambda().send(new InvokeCommand({ FunctionName: 'cloudsocket-fixture-echo', Payload: JSON.stringify({ body: 'direct' }) }));
    expect(answer.StatusCode).toBe(200);
    expect(answer.FunctionError).toBeUndefined();
    const result = JSON.parse(Buffer.from(answer.Payload!).toString());
    expect(JSON.parse(result.body).event.body).toBe('direct');
  });

  it('accepts an Event invocation with 202 and runs it afterwards', async () => {
    const answer = await lambda().send(
      new InvokeCommand({
        FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:cloudsocket-fixture-disconnect',
        InvocationType: 'Event',
        Payload: JSON.stringify({ requestContext: { connectionId: 'from-invoke=' } }),
      }),
    );
    expect(answer.StatusCode).toBe(202);
    expect((await gate.disconnectOf('from-invoke=')).requestContext.connectionId).toBe('from-invoke=');
  });

  it('flags a failed invocation with FunctionError, and a timed-out one too', async () => {
    const failed = await lambda().send(new InvokeCommand({ FunctionName: 'cloudsocket-fixture-echo', Payload: JSON.stringify({ body: '"throw"' }) }));
    expect(failed.FunctionError).toBe('Unhandled');
    expect(JSON.parse(Buffer.from(failed.Payload!).toString())).toMatchObject({ errorType: 'Error', errorMessage: expect.stringContaining('on purpose') });
    const timedOut = await lambda().send(new InvokeCommand({ FunctionName: 'cloudsocket-fixture-echo', Payload: JSON.stringify({ body: '"hang"' }) }));
    expect(timedOut.FunctionError).toBe('Unhandled');
    expect(JSON.parse(Buffer.from(timedOut.Payload!).toString()).errorMessage).toMatch(/timed out after 2\.00 seconds/);
  });

  it('answers ResourceNotFoundException for an unknown function', async () => {
    await expect(lambda().send(new InvokeCommand({ FunctionName: 'nope' }))).rejects.toBeInstanceOf(ResourceNotFoundException);
  });
});
