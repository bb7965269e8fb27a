/**
 * `npm start` is `cloudsocket dev`: from a clean dist it builds, runs both
 * targets from their built artifacts, prints both URLs, and stops cleanly on
 * Ctrl+C (SIGINT).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../scripts/run-artifact.js';
import { TestClient, withTimeout } from './support/client.js';

describe('cloudsocket dev (npm start)', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const cleanup of cleanups) await cleanup();
  });

  it('builds, serves both targets, prints both URLs and stops on SIGINT', async () => {
    const dist = await mkdtemp(join(tmpdir(), 'cloudsocket-dev-dist-'));
    cleanups.push(() => rm(dist, { recursive: true, force: true }));
    const [port, awsPort] = [await freePort(), await freePort()];
    const dev = spawn(process.execPath, ['bin/cloudsocket.js', 'dev', '--port', String(port), '--aws-port', String(awsPort)], {
      env: { ...process.env, CLOUDSOCKET_DIST_DIR: dist, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => dev.once('exit', (code) => resolve(code)));
    cleanups.push(async () => {
      if (dev.exitCode === null) dev.kill('SIGKILL');
    });
    const lines: string[] = [];
    const ready = new Promise<void>((resolve) => {
      createInterface({ input: dev.stdout! }).on('line', (line) => {
        lines.push(line);
        if (line.startsWith('cloudsocket AWS emulator')) resolve();
      });
    });
    await withTimeout(ready, 60_000, 'both URLs printed');

    expect(lines).toContain('building dist/ ...');
    expect((await stat(join(dist, 'cloudbase.zip'))).size).toBeGreaterThan(0);
    expect((await stat(join(dist, 'aws', 'lambda.zip'))).size).toBeGreaterThan(0);
    const cloudbaseUrl = `ws://127.0.0.1:${port}/`;
    const awsUrl = `ws://127.0.0.1:${awsPort}/dev`;
    expect(lines.some((line) => line.includes(cloudbaseUrl))).toBe(true);
    expect(lines.some((line) => line.includes(awsUrl))).toBe(true);

    const cloudbase = await TestClient.join(`${cloudbaseUrl}?clientId=dev_a`);
    const aws = await TestClient.join(`${awsUrl}?clientId=dev_b`, { timeoutMs: 15_000 });
    expect(cloudbase.welcome).toMatchObject({ clientId: 'dev_a', room: 'lobby' });
    expect(aws.welcome).toMatchObject({ clientId: 'dev_b', room: 'lobby' });
    const page = await fetch(`http://127.0.0.1:${awsPort}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(awsUrl);

    dev.kill('SIGINT');
    expect((await cloudbase.client.waitClosed(10_000)).code).toBe(1012);
    expect((await aws.client.waitClosed(10_000)).code).toBe(1001);
    expect(await withTimeout(exited, 10_000, 'dev to exit')).toBe(0);
  });

  it('refuses a probability outside 0 to 1, a value that looks like a flag, and the emulator\'s flags without the emulator', async () => {
    for (const [args, message] of [
      [['--target', 'aws', '--drop-disconnects', '1.5'], 'cloudsocket: dev: --drop-disconnects must be a number from 0 to 1, got "1.5"'],
      [['--target', 'cloudbase', '--cold-start', '10'], 'cloudsocket: dev: --cold-start applies to the AWS emulator and --target cloudbase does not run it'],
      [['--target', 'aws', '--callback-rate', '0'], 'cloudsocket: dev: --callback-rate must be a whole number from 1 to 1000000, got "0"'],
      [['--port', '-1'], 'cloudsocket: dev: --port -1: a value that begins with "-" goes after "=", as --port=-1'],
      [['--port=-1'], 'cloudsocket: dev: --port must be a whole number from 0 to 65535, got "-1"'],
    ] as const) {
      const run = spawn(process.execPath, ['bin/cloudsocket.js', 'dev', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      run.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const code = await new Promise<number | null>((resolve) => run.once('exit', resolve));
      expect(code).toBe(2);
      expect(stderr.trim()).toBe(message);
    }
  });

  it('names the flag it cannot use', async () => {
    const run = spawn(process.execPath, ['bin/cloudsocket.js', 'dev', '--target', 'azure'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    run.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => run.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr.trim()).toBe('cloudsocket: dev: --target must be one of all, aws, cloudbase, got "azure"');
  });
});
