/**
 * The CloudBase artifact as shipped: the zip's layout and modes, scf_bootstrap,
 * the HTTP side of the server, its logs and settings, and a client we did not
 * write (wscat) chatting through it.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PortInUseError } from '../scripts/emulator/errors.js';
import { freePort, parseLogLine, runArtifact } from '../scripts/run-artifact.js';
import { TestClient, uniqueName, withQuery, withTimeout } from './support/client.js';
import { buildArtifactOnce, startArtifactServer, unzip, type ArtifactServer } from './support/servers.js';

describe('dist/cloudbase.zip', () => {
  let unpacked: string;
  let modes: Map<string, number>;
  beforeAll(async () => {
    const { zip } = await buildArtifactOnce();
    unpacked = await mkdtemp(join(tmpdir(), 'cloudsocket-zip-'));
    modes = await unzip(zip, unpacked);
  });
  afterAll(() => rm(unpacked, { recursive: true, force: true }));

  it('holds scf_bootstrap, the one bundled program, its source map and the page, at its root', () => {
    expect([...modes.keys()].sort()).toEqual(['index.mjs', 'index.mjs.map', 'public/index.html', 'scf_bootstrap']);
  });

  it('marks scf_bootstrap 0755 inside the zip', () => {
    expect(modes.get('scf_bootstrap')).toBe(0o755);
  });

  it('writes scf_bootstrap with LF endings, a bash shebang, and the CloudBase runtimes newest first', async () => {
    const text = await readFile(join(unpacked, 'scf_bootstrap'), 'utf8');
    expect(text.split('\n')[0]).toBe('#!/bin/bash');
    expect(text).not.toContain('\r');
    expect(text).toMatch(/for version in 24 22 20 18/);
    expect(text).toContain('/var/lang/node${version}/bin/node');
    expect(text).toMatch(/NODE_BIN=node\n/);
    expect(text).toContain('PORT="${PORT:-9000}"');
  });

  it('bundles everything: index.mjs imports nothing outside Node itself', async () => {
    const bundle = await readFile(join(unpacked, 'index.mjs'), 'utf8');
    const imports = [...bundle.matchAll(/\bfrom\s*["']([^"']+)["']/g)].map((m) => m[1]!);
    expect(imports.length).toBeGreaterThan(0);
    for (const specifier of imports) expect(specifier).toMatch(/^node:|^(http|https|net|crypto|events|stream|url|zlib|buffer|tls|fs|path|os|module|util)$/);
  });
});

describe('the unzipped artifact, started by bash scf_bootstrap in an empty directory', () => {
  let artifact: ArtifactServer;
  beforeAll(async () => {
    artifact = await startArtifactServer({ LOG_LEVEL: 'debug', ACCESS_PATH: '/chat' });
  });
  afterAll(() => artifact.stop());

  const httpBase = () => `http://127.0.0.1:${artifact.running.port}`;

  it('runs with no node_modules anywhere above it', async () => {
    await expect(stat(join(artifact.directory, 'node_modules'))).rejects.toThrow();
    expect(artifact.directory.startsWith(tmpdir())).toBe(true);
  });

  it('serves the chat page at GET /', async () => {
    const response = await fetch(`${httpBase()}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(await response.text()).toContain('<title>');
  });

  it('serves the page at the access path CloudBase routes to it too, and nowhere else', async () => {
    for (const path of ['/chat', '/chat/', '/chat/index.html']) {
      const response = await fetch(`${httpBase()}${path}`);
      expect(response.status, path).toBe(200);
      expect(await response.text()).toContain('<title>');
    }
    expect((await fetch(`${httpBase()}/chatter`)).status).toBe(404);
  });

  it('reports health at GET /healthz', async () => {
    const { client } = await TestClient.join(artifact.url);
    const response = await fetch(`${httpBase()}/healthz`);
    expect(response.status).toBe(200);
    const health = await response.json();
    expect(health).toEqual({ status: 'ok', connections: expect.any(Number), uptime: expect.any(Number), instance: expect.any(String) });
    expect(health.connections).toBeGreaterThanOrEqual(1);
    await client.close();
  });

  it('answers other paths with a JSON 404 and other methods with 405', async () => {
    const missing = await fetch(`${httpBase()}/nope`);
    expect(missing.status).toBe(404);
    expect((await missing.json()).code).toBe('not_found');
    expect((await fetch(`${httpBase()}/`, { method: 'POST' })).status).toBe(405);
  });

  it('accepts WebSocket upgrades on any path', async () => {
    const { client, welcome } = await TestClient.join(withQuery(artifact.url.replace(/\/$/, '/chat/room'), { clientId: uniqueName('path') }));
    expect(welcome.type).toBe('welcome');
    await client.close();
  });

  it('logs one JSON object per line with time, level and event', async () => {
    const clientId = uniqueName('logged');
    const { client } = await TestClient.join(withQuery(artifact.url, { clientId }));
    await client.close();
    const connectLine = await artifact.running.waitForLine((line) => {
      const entry = parseLogLine(line);
      return entry?.event === 'connect' && entry.clientId === clientId;
    });
    expect(parseLogLine(connectLine)).toMatchObject({ level: 'info', time: expect.stringMatching(/Z$/) });
    for (const line of artifact.running.lines) expect(parseLogLine(line), line).toMatchObject({ level: expect.any(String), event: expect.any(String) });
  });

  it('chats with wscat, a client we did not write', async () => {
    const room = uniqueName('wscat');
    const { client: listener } = await TestClient.join(withQuery(artifact.url, { room }));
    const wscat = spawn(process.execPath, [join('node_modules', 'wscat', 'bin', 'wscat'), '-c', withQuery(artifact.url, { room, clientId: 'wscat_user' })], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    const lines = createInterface({ input: wscat.stdout! });
    const seen = (predicate: (line: string) => boolean) =>
      withTimeout(
        new Promise<string>((resolve) => {
          const found = output.find(predicate);
          if (found) return resolve(found);
          lines.on('line', (line) => predicate(line) && resolve(line));
        }),
        10_000,
        'wscat output',
      );
    lines.on('line', (line) => output.push(line));

    expect(await seen((line) => line.includes('"type":"welcome"'))).toContain('"clientId":"wscat_user"');
    wscat.stdin!.write('{"type":"chat","content":"hello from wscat"}\n');
    expect(await listener.next('chat')).toMatchObject({ clientId: 'wscat_user', message: 'hello from wscat' });
    listener.send({ type: 'chat', content: 'hello back' });
    expect(await seen((line) => line.includes('hello back'))).toContain('"clientId"');
    wscat.stdin!.write('plain words\n');
    expect(await listener.next((f) => f.type === 'chat' && f.clientId === 'wscat_user')).toMatchObject({ message: 'plain words' });
    wscat.kill('SIGINT');
    expect(await listener.next('user_left')).toMatchObject({ clientId: 'wscat_user' });
    await listener.close();
  });
});

describe('the port', () => {
  it('is another free one when the one picked for port 0 is taken before the function listens, and a taken given port is reported', async () => {
    const { directory } = await buildArtifactOnce();
    // What a race looks like: the port was free when picked, and someone else listens on it by the time the function starts.
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, () => resolve()));
    const taken = (squatter.address() as AddressInfo).port;
    try {
      const picked: number[] = [];
      const running = await runArtifact(directory, {
        port: 0,
        freePorts: async () => {
          picked.push(picked.length === 0 ? taken : await freePort());
          return picked.at(-1)!;
        },
      });
      try {
        expect(picked).toHaveLength(2);
        expect(running.port).toBe(picked[1]);
        expect((await fetch(`http://127.0.0.1:${running.port}/healthz`)).status).toBe(200);
      } finally {
        await running.stop();
      }
      await expect(runArtifact(directory, { port: taken })).rejects.toBeInstanceOf(PortInUseError);
    } finally {
      squatter.close();
    }
  });
});

describe('settings', () => {
  it('refuses to start on a bad setting and names the variable', async () => {
    const { directory } = await buildArtifactOnce();
    const failure = runArtifact(directory, { port: 0, env: { LOG_LEVEL: 'loud' }, startTimeoutMs: 10_000 });
    await expect(failure).rejects.toThrow(/exited with code 2.*LOG_LEVEL="loud" must be one of debug, info, warn, error, silent/s);
    const badNumber = runArtifact(directory, { port: 0, env: { HEARTBEAT_TIMEOUT: 'soon' }, startTimeoutMs: 10_000 });
    await expect(badNumber).rejects.toThrow(/HEARTBEAT_TIMEOUT="soon" must be a number/);
  });
});
