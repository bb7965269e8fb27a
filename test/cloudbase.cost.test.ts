/**
 * `cloudsocket dev --target cloudbase --cost`: what the CloudBase target's
 * traffic would be billed, counted at the front door in front of the built
 * function's real processes: one invocation per connection or HTTP request,
 * instance time (per connection by default, per instance with
 * --concurrency), client messages and the bytes sent back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOUDBASE_PRICES, ClientFrameCounter, type CloudbaseCostReport } from '../scripts/cloudbase-cost-meter.js';
import { freePort } from '../scripts/run-artifact.js';
import { TestClient, withTimeout } from './support/client.js';

let dist: string;
const running: ChildProcess[] = [];

beforeAll(async () => {
  dist = await mkdtemp(join(tmpdir(), 'cloudsocket-dev-cost-'));
});
afterAll(async () => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
  await rm(dist, { recursive: true, force: true });
});

/** dev with --cost, started; `nextLine` resolves with the next stdout line that `matches`. */
async function dev(args: string[]) {
  const port = await freePort();
  const child = spawn(process.execPath, ['bin/cloudsocket.js', 'dev', '--target', 'cloudbase', '--port', String(port), '--no-watch', '--cost', ...args], {
    env: { ...process.env, CLOUDSOCKET_DIST_DIR: dist, LOG_LEVEL: 'warn', REDIS_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines: string[] = [];
  const waiters: Array<{ matches: (line: string) => boolean; resolve: (line: string) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const waiter of [...waiters]) {
      if (!waiter.matches(line)) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  });
  const nextLine = (matches: (line: string) => boolean, what: string) =>
    withTimeout(new Promise<string>((resolve) => waiters.push({ matches, resolve })), 90_000, what);
  await nextLine((line) => line.startsWith('cloudsocket CloudBase target'), 'the CloudBase target line');
  const report = async (): Promise<CloudbaseCostReport> => {
    const response = await fetch(`http://127.0.0.1:${port}/_emulator/cost`);
    expect(response.status).toBe(200);
    return (await response.json()) as CloudbaseCostReport;
  };
  return { child, lines, nextLine, report, port, url: `ws://127.0.0.1:${port}/`, exited };
}

describe('the CloudBase cost meter', () => {
  it('bills each connection as one invocation and its own instance time, counts client messages, and prints on SIGUSR2 and on exit', async () => {
    const { child, nextLine, report, url, exited } = await dev([]);
    const firstConnect = performance.now();
    const a = await TestClient.join(`${url}?clientId=ann`);
    const b = await TestClient.join(`${url}?clientId=ben`);
    const bothOpen = performance.now();
    for (let n = 0; n < 3; n++) a.client.send({ type: 'chat', content: `hello ${n}` });
    for (let n = 0; n < 3; n++) await b.client.next('chat');
    a.client.send({ type: 'ping' });
    await a.client.next('pong');

    const asked = performance.now();
    const counted = await report();
    const answered = performance.now();
    expect(counted.chatMessages).toBe(4);
    expect(counted.invocations).toBe(2);
    // Two connections, each billed as its own instance: about twice the time both were open.
    expect(counted.instanceSeconds).toBeGreaterThanOrEqual((2 * (asked - bothOpen)) / 1000 - 0.002);
    expect(counted.instanceSeconds).toBeLessThanOrEqual((2 * (answered - firstConnect)) / 1000 + 0.002);
    expect(counted.gbSeconds).toBeCloseTo((counted.memoryMb / 1024) * counted.instanceSeconds, 9);
    // Two welcomes, a user_joined, six chats (three each) and a pong went out, each frame well over 20 bytes.
    expect(counted.responseBytes).toBeGreaterThan(10 * 20);
    const total = counted.gbSeconds * CLOUDBASE_PRICES.perGbSecond + (counted.invocations / 1e6) * CLOUDBASE_PRICES.perMillionInvocations;
    expect(counted.total).toBeCloseTo(total, 12);
    expect(counted.perMillionChatMessages).toBeCloseTo((total / 4) * 1e6, 6);

    // The page is an invocation of its own.
    expect((await fetch(url.replace('ws:', 'http:'))).status).toBe(200);
    expect((await report()).invocations).toBe(3);

    const printed = nextLine((line) => line.includes('chat messages; 3 invocations'), 'the SIGUSR2 report');
    child.kill('SIGUSR2');
    expect(await printed).toMatch(/^ {2}4 chat messages; 3 invocations; [\d.]+ instance-seconds at \d+ MB = [\d.]+ GB-s$/);

    const onExit = nextLine((line) => line.startsWith('estimated CloudBase cost'), 'the report on exit');
    child.kill('SIGINT');
    await onExit;
    expect(await withTimeout(exited, 15_000, 'dev to exit')).toBe(0);
  }, 120_000);

  it('with --concurrency, bills an instance serving two connections once for the time they overlap', async () => {
    const { child, report, port, url, exited } = await dev(['--instances', '1', '--concurrency', '2']);
    const firstConnect = performance.now();
    const a = await TestClient.join(`${url}?clientId=cy`);
    const b = await TestClient.join(`${url}?clientId=di`);
    const firstOpen = performance.now();
    a.client.send({ type: 'chat', content: 'one instance, two connections' });
    await b.client.next('chat');
    const checkStarted = performance.now();
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const checkMs = performance.now() - checkStarted;

    const asked = performance.now();
    const counted = await report();
    const answered = performance.now();
    expect(counted.invocations).toBe(3);
    expect(counted.chatMessages).toBe(1);
    // The one instance ran from the first handshake on; the health check, its own invocation, adds its own short stretch.
    expect(counted.instanceSeconds).toBeGreaterThanOrEqual((asked - firstOpen) / 1000 - 0.002);
    // Counted once: at most the time since the first handshake, plus the health check's own.
    expect(counted.instanceSeconds).toBeLessThanOrEqual((answered - firstConnect + checkMs) / 1000 + 0.002);

    // One connection left: the instance still runs.
    await b.client.close();
    const afterClose = await report();
    expect(afterClose.instanceSeconds).toBeGreaterThan(counted.instanceSeconds);
    child.kill('SIGINT');
    await a.client.waitClosed(10_000);
    expect(await withTimeout(exited, 15_000, 'dev to exit')).toBe(0);
  }, 120_000);
});

describe('counting a client\'s messages in its byte stream', () => {
  /** A masked client frame (RFC 6455 §5.2). */
  function frame(opcode: number, payload: Buffer, fin = true): Buffer {
    const length = payload.length;
    const head = length < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | length]) : Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, length >> 8, length & 0xff]);
    const mask = Buffer.from([1, 2, 3, 4]);
    return Buffer.concat([head, mask, Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!))]);
  }

  it('counts text and binary messages once, a fragmented one once, control frames never, over any chunking', () => {
    const stream = Buffer.concat([
      frame(1, Buffer.from('{"type":"chat","content":"hi"}')),
      frame(9, Buffer.from('ping')),
      frame(1, Buffer.alloc(300, 'a'), false),
      frame(0, Buffer.alloc(200, 'b')),
      frame(2, Buffer.alloc(5000, 7)),
      frame(10, Buffer.alloc(0)),
      frame(8, Buffer.from([0x03, 0xe8])),
    ]);
    for (const size of [1, 2, 3, 7, 13, 64, stream.length]) {
      let messages = 0;
      const counter = new ClientFrameCounter(() => messages++);
      for (let offset = 0; offset < stream.length; offset += size) counter.push(stream.subarray(offset, offset + size));
      expect(messages, `chunks of ${size} bytes`).toBe(3);
    }
  });
});
