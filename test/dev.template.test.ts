/**
 * `cloudsocket dev --template`: an API Gateway app of its own, SAM template
 * and code with nothing of cloudsocket in them, served by the emulator alone.
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { packageRoot } from '../scripts/package-root.js';
import { freePort } from '../scripts/run-artifact.js';
import { TestClient, withTimeout } from './support/client.js';

const fixture = fileURLToPath(new URL('./fixtures/sam-app/', import.meta.url));
const folders: string[] = [];
afterAll(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

it('serves the template on the stage it names, running its own handlers', async () => {
  const app = await mkdtemp(join(tmpdir(), 'cloudsocket-own-app-'));
  folders.push(app);
  await cp(fixture, app, { recursive: true });
  const port = await freePort();
  const dev = spawn(process.execPath, [join(packageRoot, 'bin/cloudsocket.js'), 'dev', '--template', join(app, 'template.yaml'), '--aws-port', String(port)], {
    cwd: app,
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => dev.once('exit', (code) => resolve(code)));
  let stderr = '';
  dev.stderr!.on('data', (chunk) => (stderr += chunk));
  const started = await withTimeout(
    new Promise<string>((resolve) => createInterface({ input: dev.stdout! }).on('line', (line) => line.startsWith('cloudsocket AWS emulator') && resolve(line))),
    60_000,
    'the emulator started',
  );
  expect(started).toContain(`ws://127.0.0.1:${port}/prod`);
  const client = await TestClient.connect(`ws://127.0.0.1:${port}/prod`);
  expect(client.socketOpen()).toBe(true);
  await client.close();
  dev.kill('SIGINT');
  expect(await exited, stderr).toBe(0);
}, 90_000);

it('refuses --template with the CloudBase target, naming the flag', async () => {
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [join(packageRoot, 'bin/cloudsocket.js'), 'dev', '--template', join(fixture, 'template.yaml'), '--target', 'cloudbase'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.once('exit', (code) => resolve({ code, stderr }));
  });
  expect(result.code).toBe(2);
  expect(result.stderr).toContain('--template runs the AWS emulator only');
});
