/**
 * Hostile and broken input against the CloudBase target: the server stays up,
 * the offender gets the right error frame or close code, and everyone else's
 * chat goes on.
 */
import type { Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { rawRequest, upgradeRequest } from './support/raw-socket.js';
import { startSourceServer, type SourceServer } from './support/servers.js';

let target: SourceServer;

beforeAll(async () => {
  // A generous rate limit, so a hundred bad frames are answered one by one rather than throttled.
  target = await startSourceServer({ RATE_LIMIT: '10000', RATE_BURST: '10000' });
});

afterAll(() => target.stop());

async function room() {
  const name = uniqueName('room');
  const offender = await TestClient.join(withQuery(target.url, { room: name, clientId: uniqueName('mallory') }));
  const bystander = await TestClient.join(withQuery(target.url, { room: name, clientId: uniqueName('bob') }));
  await offender.client.next('user_joined');
  return { offender: offender.client, bystander: bystander.client, offenderId: offender.welcome.clientId as string };
}

/** The bystander can still chat and be heard: the room is unharmed. */
async function expectRoomAlive(bystander: TestClient, also?: TestClient) {
  const marker = uniqueName('still-alive');
  bystander.send({ type: 'chat', content: marker });
  expect((await bystander.next((f) => f.type === 'chat' && f.message === marker)).message).toBe(marker);
  if (also) expect((await also.next((f) => f.type === 'chat' && f.message === marker)).message).toBe(marker);
  expect(bystander.all('error')).toHaveLength(0);
}

describe('bad input on the CloudBase target', () => {
  it.each([
    ['truncated JSON', '{"type":"chat","content":"hi"', 'invalid_message'],
    ['JSON with a trailing comma', '{"type":"chat","content":"hi",}', 'invalid_message'],
    ['a numeric content', '{"type":"chat","content":123}', 'invalid_message'],
    ['a null content', '{"type":"chat","content":null}', 'invalid_message'],
    ['an object type', '{"type":{"nested":true}}', 'invalid_message'],
    ['a private message without to', '{"type":"private","content":"x"}', 'invalid_message'],
    ['a join with a numeric room', '{"type":"join","room":5}', 'invalid_message'],
    ['an unknown type', '{"type":"selfdestruct"}', 'unknown_type'],
    ['a prototype-named type', '{"type":"__proto__"}', 'unknown_type'],
    ['a constructor-named type', '{"type":"constructor"}', 'unknown_type'],
    ['4001 characters of content', JSON.stringify({ type: 'chat', content: 'y'.repeat(4001) }), 'message_too_large'],
  ])('answers %s with %s and keeps the connection', async (_label, frame, code) => {
    const { offender, bystander } = await room();
    offender.send(frame);
    expect(await offender.next('error')).toMatchObject({ type: 'error', code });
    offender.send({ type: 'ping' });
    await offender.next('pong');
    await expectRoomAlive(bystander, offender);
    await Promise.all([offender.close(), bystander.close()]);
  });

  it('treats non-JSON text as chat, as the protocol says', async () => {
    const { offender, bystander } = await room();
    offender.send('not json at all ]]}');
    expect((await bystander.next('chat')).message).toBe('not json at all ]]}');
    await Promise.all([offender.close(), bystander.close()]);
  });

  it('keeps __proto__ keys inert: no prototype pollution, the frame is handled on its own fields', async () => {
    const { offender, bystander } = await room();
    offender.send('{"type":"chat","content":"proto test","__proto__":{"polluted":true,"type":"private"}}');
    expect((await bystander.next('chat')).message).toBe('proto test');
    offender.send('{"__proto__":{"type":"chat","content":"sneaky"}}');
    expect(await offender.next('error')).toMatchObject({ code: 'invalid_message' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await expectRoomAlive(bystander);
    await Promise.all([offender.close(), bystander.close()]);
  });

  it('answers a hundred malformed frames in a row, one error each, and the room goes on', async () => {
    const { offender, bystander } = await room();
    for (let i = 0; i < 100; i++) offender.send(i % 2 ? `{"type":"chat",${i}` : `{"type":${i}}`);
    for (let i = 0; i < 100; i++) expect((await offender.next('error')).code).toBe('invalid_message');
    expect(offender.socketOpen()).toBe(true);
    await expectRoomAlive(bystander, offender);
    await Promise.all([offender.close(), bystander.close()]);
  });

  it('closes a frame over 128 KiB with 1009 and announces the offender gone', async () => {
    const { offender, bystander, offenderId } = await room();
    offender.send('x'.repeat(128 * 1024 + 1));
    expect((await offender.waitClosed()).code).toBe(1009);
    expect(await bystander.next('user_left')).toMatchObject({ clientId: offenderId });
    await expectRoomAlive(bystander);
    await bystander.close();
  });

  it('closes a binary frame with 1003', async () => {
    const { offender, bystander } = await room();
    offender.socket.send(new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    expect((await offender.waitClosed()).code).toBe(1003);
    await expectRoomAlive(bystander);
    await bystander.close();
  });

  it('closes invalid UTF-8 with 1007', async () => {
    const { offender, bystander } = await room();
    await sendRawTextFrame(offender, Buffer.from([0x7b, 0xc3, 0x28, 0xff, 0x7d]));
    expect((await offender.waitClosed()).code).toBe(1007);
    await expectRoomAlive(bystander);
    await bystander.close();
  });

  it('answers junk instead of a handshake with HTTP 400 and stays up', async () => {
    const response = await rawExchange(target.port, 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    expect(response).toMatch(/^HTTP\/1\.1 400/);
    const { client, welcome } = await TestClient.join(target.url);
    expect(welcome.type).toBe('welcome');
    await client.close();
  });

  it('answers every upgrade whatever its request target: 101 for an odd path, 400 invalid_request_target for no path at all', async () => {
    const targets = oddRequestTargets();
    expect(targets.length).toBeGreaterThanOrEqual(250);
    const answers = new Map<string, { status: number; body: string }>();
    // In batches: a few hundred sockets at once would measure the machine, not the server.
    for (let i = 0; i < targets.length; i += 25) {
      const batch = targets.slice(i, i + 25);
      const results = await Promise.all(batch.map((requestTarget) => rawRequest(target.port, upgradeRequest(requestTarget))));
      batch.forEach((target, j) => answers.set(target, results[j]!));
    }
    for (const [requestTarget, { status, body }] of answers) {
      expect([101, 400], requestTarget).toContain(status);
      // 400 also for what the query holds (`?clientId=%zz`), as for any path.
      if (status === 400) expect(JSON.parse(body), requestTarget).toEqual({ code: expect.stringMatching(/^(invalid_request_target|bad_request|invalid_client_id|invalid_room)$/), message: expect.any(String) });
    }
    expect(answers.get('//')!.status).toBe(101);
    expect(answers.get('http://[')).toMatchObject({ status: 400, body: expect.stringContaining('invalid_request_target') });
    expect(answers.get('http://a:99999/')).toMatchObject({ status: 400, body: expect.stringContaining('invalid_request_target') });
    const { client, welcome } = await TestClient.join(target.url);
    expect(welcome.type).toBe('welcome');
    await client.close();
  });

  it('reads the query after the first "?" whatever the path, so an odd path keeps its clientId', async () => {
    const clientId = uniqueName('odd');
    for (const path of ['//', '//@', '///x', '/%00']) {
      const { status, firstFrame } = await rawRequest(target.port, upgradeRequest(`${path}?clientId=${clientId}&room=odd`), { waitForFrame: true });
      expect(status, path).toBe(101);
      expect(JSON.parse(firstFrame!), path).toMatchObject({ type: 'welcome', clientId, room: 'odd' });
    }
    const { status, body } = await rawRequest(target.port, upgradeRequest('//?clientId=../x'));
    expect(status).toBe(400);
    expect(JSON.parse(body).code).toBe('invalid_client_id');
  });

  it.each([
    ['a broken request line', 400, 'bad_request', 'GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n'],
    ['TLS bytes on the plain port', 400, 'bad_request', '\x16\x03\x01 not http at all\r\n\r\n'],
    ['a header line without a colon', 400, 'bad_request', 'GET / HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n'],
    ['headers over 16 KiB', 431, 'headers_too_large', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(17 * 1024)}\r\n\r\n`],
  ])('answers %s with HTTP %i %s and a JSON body instead of a bare close', async (_label, status, code, request) => {
    const answer = await rawRequest(target.port, request);
    expect(answer.status).toBe(status);
    expect(JSON.parse(answer.body)).toEqual({ code, message: expect.any(String) });
  });

  it('answers a request that timed out with HTTP 408', async () => {
    // Node checks request timeouts every 30 s at the earliest, so the event it would emit is emitted here, on a real socket.
    const http = (target.server as unknown as { http: Server }).http;
    const accepted = new Promise<Socket>((resolve) => http.once('connection', resolve));
    const answer = new Promise<string>((resolve) => {
      const socket = connect(target.port, '127.0.0.1');
      let text = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      socket.on('close', () => resolve(text));
    });
    http.emit('clientError', Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), await accepted);
    const text = await answer;
    expect(text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toEqual({ code: 'request_timeout', message: expect.any(String) });
  });

  it('never puts a stack trace in a handshake refusal', async () => {
    const { handshakeStatus } = await import('./support/client.js');
    const { status, body } = await handshakeStatus(withQuery(target.url, { clientId: '../../etc/passwd' }));
    expect(status).toBe(400);
    expect(JSON.parse(body)).toEqual({ code: 'invalid_client_id', message: expect.any(String) });
  });
});

/** ws validates what it sends, so an invalid UTF-8 text frame is written by hand (masked, FIN, opcode 1). */
function sendRawTextFrame(client: TestClient, payload: Buffer): Promise<void> {
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  const header = Buffer.from([0x81, 0x80 | payload.length]);
  const socket = (client.socket as unknown as { _socket: Socket })._socket;
  return new Promise((resolve, reject) => socket.write(Buffer.concat([header, mask, masked]), (error) => (error ? reject(error) : resolve())));
}

function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let response = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (response += chunk));
    socket.on('end', () => resolve(response));
    socket.on('close', () => resolve(response));
    socket.on('error', reject);
  });
}

/** Request targets a client (or a scanner) may send: paths with odd bytes, authority tricks, absolute and non-path forms. */
function oddRequestTargets(): string[] {
  const paths = [
    '//', '///x', '/\\x', '/%00', 'http://a:99999/', 'http://[', '//@', '//a//b', '/..', '/../../etc/passwd', '/%2e%2e/', '/%', '/%zz', '/%E0%A4%A',
    '/;x', '/@', '//@/', '//:/', '//a:b@c/', '/\\\\', '*', 'x', 'http://', 'http:///', 'http://@', 'ws://a/', 'https://a/b', 'http://a:/',
    'http://[::1]/', 'http://[::1', 'HTTP://A/', 'mailto:x', 'a:b', '/\u00e9',
  ];
  const queries = ['', '?', '??', '?clientId=', '?clientId=%zz', '?room=%E0%A4%A', '?&&=&', '#frag'];
  return paths.flatMap((path) => queries.map((query) => path + query));
}
