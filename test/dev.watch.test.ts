/**
 * The dev loop: `cloudsocket dev` in a project of its own rebuilds and
 * restarts the targets when one of the app's source files changes, and the
 * next connection meets the new code.
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterAll, expect, it } from 'vitest';
import { packageRoot } from '../scripts/package-root.js';
import { freePort } from '../scripts/run-artifact.js';
import { TestClient, withTimeout } from './support/client.js';

const fixture = fileURLToPath(new URL('./fixtures/throwing-app/', import.meta.url));
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function versionOf(url: string): Promise<unknown> {
  const { client } = await TestClient.join(url);
  client.send({ type: 'version' });
  const frame = await client.next('version');
  await client.close();
  return frame.value;
}

it('rebuilds and restarts on a change to the app, and says so', async () => {
  const project = await mkdtemp(join(tmpdir(), 'cloudsocket-watch-'));
  cleanups.push(() => rm(project, { recursive: true, force: true }));
  await cp(fixture, project, { recursive: true });
  const appFile = join(project, 'src/app.ts');
  const withVersion = (value: string) =>
    readFile(join(fixture, 'src/app.ts'), 'utf8').then((text) =>
      text.replace('  routes: {', `  routes: {\n    version: route({ parse: () => undefined, handle: (ctx) => ctx.reply({ type: 'version', value: '${value}' }) }),`),
    );
  await writeFile(appFile, await withVersion('one'));

  const port = await freePort();
  const dev = spawn(process.execPath, [join(packageRoot, 'bin/cloudsocket.js'), 'dev', '--target', 'cloudbase', '--port', String(port)], {
    cwd: project,
    env: { ...process.env, LOG_LEVEL: 'warn', CLOUDSOCKET_DIST_DIR: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(async () => {
    if (dev.exitCode === null) dev.kill('SIGKILL');
  });
  const lines: string[] = [];
  const waiters: Array<{ test: (line: string) => boolean; resolve: () => void }> = [];
  createInterface({ input: dev.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const waiter of waiters.filter((w) => w.test(line))) waiter.resolve();
  });
  const lineMatching = (test: (line: string) => boolean, what: string) =>
    withTimeout(new Promise<void>((resolve) => (lines.some(test) ? resolve() : waiters.push({ test, resolve }))), 60_000, what);

  await lineMatching((line) => line.startsWith('cloudsocket CloudBase target'), 'the target started');
  const url = `ws://127.0.0.1:${port}/`;
  expect(await versionOf(url)).toBe('one');

  await writeFile(appFile, await withVersion('two'));
  await lineMatching((line) => line.startsWith('rebuilt and restarted the CloudBase target'), 'the restart');
  expect(lines.some((line) => line === 'changed src/app.ts: rebuilding')).toBe(true);
  expect(await versionOf(url)).toBe('two');

  dev.kill('SIGINT');
  expect(await new Promise((resolve) => dev.once('exit', resolve))).toBe(0);
}, 120_000);
