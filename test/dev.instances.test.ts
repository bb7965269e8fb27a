/**
 * `cloudsocket dev --target cloudbase --instances N`: N built CloudBase
 * instances, each its own process, behind a front door that hands each new
 * WebSocket to an instance as CloudBase does; with `--redis` one room spans
 * them, without Redis it cannot, and dev says so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../scripts/run-artifact.js';
import { TestClient, withTimeout } from './support/client.js';

let dist: string;
const running: ChildProcess[] = [];

beforeAll(async () => {
  dist = await mkdtemp(join(tmpdir(), 'cloudsocket-dev-fleet-'));
});
afterAll(async () => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
  await rm(dist, { recursive: true, force: true });
});

async function dev(args: string[]): Promise<{ child: ChildProcess; lines: string[]; url: string; exited: Promise<number | null> }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['bin/cloudsocket.js', 'dev', '--target', 'cloudbase', '--port', String(port), '--no-watch', ...args], {
    env: { ...process.env, CLOUDSOCKET_DIST_DIR: dist, LOG_LEVEL: 'warn', REDIS_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines: string[] = [];
  const ready = new Promise<void>((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      if (line.includes('a front door for')) resolve();
    });
  });
  await withTimeout(ready, 90_000, 'the front door line');
  return { child, lines, url: `ws://127.0.0.1:${port}/`, exited };
}

async function refusal(url: string): Promise<string> {
  return TestClient.connect(url).then(
    () => 'accepted',
    (error: Error) => error.message,
  );
}

describe('cloudsocket dev --instances', () => {
  it('with --redis: one connection per instance, one room across them, 503 once every instance is full', async () => {
    const { child, lines, url, exited } = await dev(['--instances', '3', '--redis']);
    expect(lines.some((line) => /^started redis-server on 127\.0\.0\.1:\d+ for the instances \(--redis\)/.test(line))).toBe(true);
    expect(lines.some((line) => line.includes('a front door for 3 instance(s), 1 connection(s) each; rooms span instances over Redis'))).toBe(true);

    const a = await TestClient.join(`${url}?clientId=ann`);
    const b = await TestClient.join(`${url}?clientId=ben`);
    const c = await TestClient.join(`${url}?clientId=cat`);
    expect(c.welcome.onlineCount).toBe(3);
    // CloudBase's default concurrency is 1: three instances, three connections, then none free.
    expect(await refusal(url)).toBe('handshake refused with HTTP 503');

    a.client.send({ type: 'chat', content: 'across three processes' });
    for (const other of [b, c]) expect((await other.client.next('chat')).message).toBe('across three processes');
    c.client.send({ type: 'users' });
    expect((await c.client.next('users')).users.sort()).toEqual(['ann', 'ben', 'cat']);

    // A closed connection frees its instance for the next one.
    b.client.socket.close();
    expect((await a.client.next('user_left')).clientId).toBe('ben');
    const d = await TestClient.join(`${url}?clientId=dan`);
    expect(d.welcome.onlineCount).toBe(3);

    child.kill('SIGINT');
    expect((await a.client.waitClosed(10_000)).code).toBe(1012);
    expect(await withTimeout(exited, 15_000, 'dev to exit')).toBe(0);
  });

  it('with --redis: starts its redis-server again when it dies, says so, and the room spans the instances again', async () => {
    const { child, lines, url, exited } = await dev(['--instances', '2', '--redis', '--no-build']);
    const port = Number(/^started redis-server on 127\.0\.0\.1:(\d+)/.exec(lines.find((line) => line.startsWith('started redis-server'))!)![1]);
    const errors: string[] = [];
    const back = new Promise<void>((resolve) =>
      createInterface({ input: child.stderr! }).on('line', (line) => {
        errors.push(line);
        if (line.includes('redis-server is back')) resolve();
      }),
    );
    // The server dies as a crash would leave it: gone, its keys with it.
    const socket = connect(port, '127.0.0.1', () => socket.end('SHUTDOWN NOSAVE\r\n'));
    socket.on('error', () => undefined);
    await withTimeout(back, 20_000, 'redis-server to be started again');
    expect(errors[0]).toBe(`cloudsocket: dev: the redis-server of --redis exited with code 0; starting it again, empty, on port ${port}`);
    // The instances reconnect and admit again once they have written their names back.
    const joinSoon = async (clientId: string) => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const attempt = await TestClient.join(`${url}?clientId=${clientId}`).catch((error: Error) => error);
        if (!(attempt instanceof Error)) return attempt;
        if (Date.now() > deadline) throw attempt;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };
    const a = await joinSoon('ann');
    const b = await joinSoon('ben');
    expect(b.welcome.onlineCount).toBe(2);
    a.client.send({ type: 'chat', content: 'over the new Redis' });
    expect((await b.client.next('chat')).message).toBe('over the new Redis');
    child.kill('SIGINT');
    expect(await withTimeout(exited, 15_000, 'dev to exit')).toBe(0);
  });

  it('without Redis says users on different instances cannot see each other, and they cannot', async () => {
    const { child, lines, url, exited } = await dev(['--instances', '2', '--concurrency', '2', '--no-build']);
    expect(lines.some((line) => line.includes('a front door for 2 instance(s), 2 connection(s) each; without Redis users on different instances cannot see each other'))).toBe(true);
    // Two per instance: the first two share one, the third is alone on the second.
    await TestClient.join(`${url}?clientId=ann`);
    expect((await TestClient.join(`${url}?clientId=ben`)).welcome.onlineCount).toBe(2);
    expect((await TestClient.join(`${url}?clientId=cat`)).welcome.onlineCount).toBe(1);
    child.kill('SIGINT');
    expect(await withTimeout(exited, 15_000, 'dev to exit')).toBe(0);
  });

  it.each([
    [['--concurrency', '2'], 'cloudsocket: dev: --concurrency applies with --instances N only'],
    [['--redis'], 'cloudsocket: dev: --redis applies with --instances N only'],
    [['--instances', '0'], /^cloudsocket: dev: --instances /],
  ])('refuses %j, naming the flag', async (args, message) => {
    const run = spawn(process.execPath, ['bin/cloudsocket.js', 'dev', '--target', 'cloudbase', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    run.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    expect(await new Promise<number | null>((resolve) => run.once('exit', resolve))).toBe(2);
    expect(stderr.trim()).toMatch(message);
  });
});
