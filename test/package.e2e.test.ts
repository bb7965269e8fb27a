/**
 * What a new user does, with cloudsocket installed from its packed tarball:
 * install it into an empty project, scaffold an app with `cloudsocket init`
 * (the counter: its own routes and authenticate hook), run that project's own
 * `npm test` (a type check, then the conformance suite and the app's tests
 * against the CloudBase zip through scf_bootstrap and the Lambda zip under
 * the emulator), build it, and dry-run both deploys.
 */
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../scripts/package-root.js';
import { TestClient, withTimeout } from './support/client.js';

const INSTALL_TIMEOUT_MS = 240_000;
let work: string;
let tarball: string;
let user: string;
let app: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string, timeoutMs = INSTALL_TIMEOUT_MS, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    // A clean environment: nothing of this repository's test run leaks into the user's project.
    const { CLOUDSOCKET_DIST_DIR: _dist, VITEST: _vitest, VITEST_WORKER_ID: _worker, NODE_OPTIONS: _options, ...inherited } = process.env;
    execFile(command, args, { cwd, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...inherited, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

const npm = (args: string[], cwd: string, timeoutMs?: number) => run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline'], cwd, timeoutMs);
const cli = (args: string[], cwd: string) => run(join(cwd, 'node_modules/.bin/cloudsocket'), args, cwd, 120_000);

/**
 * Packing compiles lib/ beside the sources while it runs, and bin/cloudsocket.js
 * prefers lib/ when it exists: packed in place, every CLI another test starts
 * meanwhile would run half-written JavaScript. So the package is packed from a
 * copy of its files (tracked and new, as git lists them), with node_modules linked.
 */
async function copyOfPackage(into: string): Promise<string> {
  const listed = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], packageRoot);
  expect(listed.code, listed.stderr).toBe(0);
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    if (!existsSync(join(packageRoot, file))) continue;
    await mkdir(dirname(join(into, file)), { recursive: true });
    await copyFile(join(packageRoot, file), join(into, file));
  }
  await symlink(join(packageRoot, 'node_modules'), join(into, 'node_modules'), 'dir');
  return into;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'cloudsocket-user-'));
  const packed = await npm(['pack', '--pack-destination', work], await copyOfPackage(join(work, 'source')));
  expect(packed.code, packed.stderr).toBe(0);
  tarball = join(work, (await readdir(work)).find((name) => name.endsWith('.tgz'))!);
  user = join(work, 'first');
  await run('mkdir', ['-p', user], work);
  await npm(['init', '-y'], user);
  const installed = await npm(['install', tarball], user);
  expect(installed.code, installed.stderr).toBe(0);
}, INSTALL_TIMEOUT_MS * 2);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('cloudsocket from its packed tarball', () => {
  it('ships compiled JavaScript and types, and no tests, bench or CI files', async () => {
    const listing = await run('tar', ['tzf', tarball], work);
    const files = listing.stdout.split('\n').filter(Boolean).map((name) => name.replace(/^package\//, ''));
    expect(files).toContain('lib/shared/index.js');
    expect(files).toContain('lib/shared/index.d.ts');
    expect(files).toContain('lib/functions/aws/index.d.ts');
    expect(files).toContain('lib/testing/index.js');
    // TypeScript ships only as the scaffold's templates, which init copies into a new project.
    const sources = files.filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts') && !name.startsWith('lib/scripts/init/templates/'));
    expect(files.filter((name) => /^(test|bench|\.ci)\//.test(name))).toEqual([]);
    expect(sources).toEqual([]);
    expect(existsSync(join(work, 'source/lib')), 'lib/ is removed again after packing').toBe(false);
    expect(existsSync(join(packageRoot, 'lib')), 'the sources being tested are never packed in place').toBe(false);
  });

  it('imports by its entry points from the installed project', async () => {
    const script = `const core = await import('cloudsocket'); const cb = await import('cloudsocket/cloudbase'); const aws = await import('cloudsocket/aws'); const chat = await import('cloudsocket/chat');
      console.log([typeof core.defineApp, typeof core.defineConfig, typeof cb.createCloudbaseServer, typeof aws.createAwsHandlers, typeof chat.createChatApp].join(','));`;
    const result = await run(process.execPath, ['--input-type=module', '-e', script], user);
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('function,function,function,function,function');
  });

  it('answers --version without a TypeScript loader', async () => {
    const result = await cli(['--version'], user);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(JSON.parse(await readFile(join(packageRoot, 'package.json'), 'utf8')).version);
    expect(existsSync(join(user, 'node_modules/tsx'))).toBe(false);
  });

  it('builds the built-in chat in a folder without a config, into that folder', async () => {
    const result = await cli(['build'], user);
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(user, 'dist/cloudbase/index.mjs'), 'utf8')).toContain('Welcome to ');
    expect(JSON.parse(await readFile(join(user, 'dist/cloudbaserc.json'), 'utf8')).functions[0]).toMatchObject({ name: 'cloudsocket', envVariables: { ACCESS_PATH: '/chat' } });
    expect(existsSync(join(user, 'dist/cloudbase/public/index.html'))).toBe(true);
  });

  describe('a project made by `cloudsocket init`', () => {
    beforeAll(async () => {
      app = join(work, 'my-counter');
      const init = await cli(['init', app, '--template', 'counter', '--cloudsocket', tarball], user);
      expect(init.code, init.stderr).toBe(0);
      const installed = await npm(['install'], app);
      expect(installed.code, installed.stderr).toBe(0);
    }, INSTALL_TIMEOUT_MS);

    it('passes its own npm test: type check, conformance and its app tests on both targets', async () => {
      const result = await run('npm', ['test'], app, 300_000, { NO_COLOR: '1', FORCE_COLOR: '0' });
      expect(result.code, result.stdout.slice(-3000) + result.stderr.slice(-2000)).toBe(0);
      // The scaffold's test runs the conformance suite and the counter's own rows on both targets.
      const passed = Number(/Tests\s+(\d+) passed/.exec(result.stdout)?.[1] ?? 0);
      expect(passed).toBeGreaterThanOrEqual(40);
      expect(result.stdout).not.toMatch(/\d+ failed/);
    }, 320_000);

    it('serves the app on both targets with npm start, and stops on Ctrl+C', async () => {
      const { CLOUDSOCKET_DIST_DIR: _dist, ...env } = process.env;
      // Port 0 on both: the kernel picks ports nobody holds, and dev prints them; a port picked here and
      // freed before dev listens could be taken meanwhile by another test's server.
      const dev = spawn('npm', ['start', '--', '--port', '0', '--aws-port', '0'], {
        cwd: app,
        env: { ...env, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group, so the test can press Ctrl+C the way a terminal does: to the whole group.
        detached: true,
      });
      const output: string[] = [];
      const errors: string[] = [];
      createInterface({ input: dev.stderr! }).on('line', (line) => errors.push(line));
      let running = true;
      const exited = new Promise<string>((resolve) =>
        dev.once('exit', (code, signal) => {
          running = false;
          resolve(signal ?? String(code));
        }),
      );
      const said = () => `stdout:\n${output.join('\n')}\nstderr:\n${errors.join('\n')}`;
      try {
        const started = new Promise<void>((resolve) => {
          createInterface({ input: dev.stdout! }).on('line', (line) => {
            output.push(line);
            if (line.startsWith('cloudsocket AWS emulator')) resolve();
          });
        });
        const endedFirst = exited.then((how) => {
          throw new Error(`npm start ended (${how}) before both targets started\n${said()}`);
        });
        await withTimeout(Promise.race([started, endedFirst]), 120_000, 'both targets started');
        const urlAfter = (prefix: string) => /ws:\/\/\S+/.exec(output.find((line) => line.startsWith(prefix)) ?? '')?.[0];
        const urls = [urlAfter('cloudsocket CloudBase target'), urlAfter('cloudsocket AWS emulator')];
        expect(urls.every(Boolean), said()).toBe(true);
        for (const url of urls) {
          const { client } = await TestClient.join(url!);
          client.send({ type: 'add', by: 2 });
          expect(await client.next('added')).toMatchObject({ by: 2 });
          await client.close();
        }
        expect(running, said()).toBe(true);
      } finally {
        if (running) process.kill(-dev.pid!, 'SIGINT');
      }
      // npm ends the way its script ended, or, like any shell job, by the Ctrl+C it was sent.
      expect(['0', 'SIGINT'], said()).toContain(await withTimeout(exited, 30_000, 'npm start to exit'));
    }, 180_000);

    it('builds both artifacts into its own dist/, with its app inside', async () => {
      const result = await cli(['build'], app);
      expect(result.code, result.stderr).toBe(0);
      for (const file of ['dist/cloudbase.zip', 'dist/aws/lambda.zip', 'dist/aws/template.yaml', 'dist/cloudbaserc.json']) {
        expect(existsSync(join(app, file)), file).toBe(true);
      }
      expect(await readFile(join(app, 'dist/cloudbase/index.mjs'), 'utf8')).toContain('"by" must be a whole number from 1 to 100');
      expect(existsSync(join(app, 'node_modules/cloudsocket/dist'))).toBe(false);
    });

    it('dry-runs both deploys with its own names', async () => {
      const aws = await cli(['deploy', 'aws', '--dry-run'], app);
      expect(aws.code, aws.stderr).toBe(0);
      expect(aws.stdout).toContain('stack my-counter in us-east-1');
      expect(aws.stdout).toMatch(/CreateChangeSet .*"StackName":"my-counter"/);
      const cloudbase = await cli(['deploy', 'cloudbase', '--env', 'my-env-1a2b', '--dry-run'], app);
      expect(cloudbase.code, cloudbase.stderr).toBe(0);
      expect(cloudbase.stdout).toMatch(/createFunction .*"name":"my-counter"/);
      expect(cloudbase.stdout).toContain('/my-counter');
    });
  });
});
