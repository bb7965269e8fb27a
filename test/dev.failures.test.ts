/**
 * `cloudsocket dev` fails loudly: a port another process holds, a target that
 * dies, a flag for a target it does not run, each end it with a message that
 * names the cause and a non-zero exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAll, builtInProject } from '../scripts/build.js';
import { freePort, portIsTaken, runArtifact } from '../scripts/run-artifact.js';
import { TestClient, withTimeout } from './support/client.js';

const NOTICE_DISABLED = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

interface Dev {
  child: ChildProcess;
  stdout: string[];
  stderr(): string;
  exited: Promise<number | null>;
  /** Resolves with the first stdout line, past or future, that `matches` accepts. */
  line(matches: (line: string) => boolean, what: string, timeoutMs?: number): Promise<string>;
}

const started: Dev[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
let dist: string;

beforeAll(async () => {
  dist = await mkdtemp(join(tmpdir(), 'cloudsocket-dev-failures-'));
  cleanups.push(() => rm(dist, { recursive: true, force: true }));
  await buildAll(builtInProject(dist));
});

afterAll(async () => {
  for (const dev of started) {
    if (dev.child.exitCode !== null || dev.child.signalCode !== null) continue;
    // SIGINT, not SIGKILL: dev stops its CloudBase child only when it gets to.
    dev.child.kill('SIGINT');
    await withTimeout(dev.exited, 10_000, 'dev to exit').catch(() => dev.child.kill('SIGKILL'));
  }
  for (const cleanup of cleanups) await cleanup();
});

/** `cloudsocket dev ARGS` as a child process; `env` values of undefined remove the variable. */
function runDev(args: string[], env: Record<string, string | undefined> = {}): Dev {
  const merged: Record<string, string | undefined> = { ...process.env, CLOUDSOCKET_DIST_DIR: dist, LOG_LEVEL: 'warn', ...env };
  for (const [name, value] of Object.entries(merged)) if (value === undefined) delete merged[name];
  const child = spawn(process.execPath, ['bin/cloudsocket.js', 'dev', ...args], { env: merged, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    stdout.push(line);
    for (const wake of waiters) wake();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const dev: Dev = {
    child,
    stdout,
    stderr: () => stderr,
    exited,
    line: (matches, what, timeoutMs = 60_000) =>
      withTimeout(
        new Promise<string>((resolve, reject) => {
          const check = () => {
            const seen = stdout.find(matches);
            if (seen === undefined) return;
            waiters.delete(check);
            resolve(seen);
          };
          waiters.add(check);
          check();
          void exited.then((code) => reject(new Error(`dev exited with ${code} before ${what}; stderr: ${stderr}`)));
        }),
        timeoutMs,
        what,
      ),
  };
  started.push(dev);
  return dev;
}

async function ended(dev: Dev): Promise<number | null> {
  return withTimeout(dev.exited, 30_000, 'dev to exit');
}

/** Something else listening on a port: not even HTTP. */
async function squatter(): Promise<number> {
  const server: Server = createServer((socket) => socket.on('error', () => undefined));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as AddressInfo).port;
}

/** The one child process of dev: the CloudBase function (bash execs node). */
async function cloudbasePid(dev: Dev): Promise<number> {
  const pid = dev.child.pid!;
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/).map(Number);
  expect(children).toHaveLength(1);
  return children[0]!;
}

const emulatorUrl = (dev: Dev) => dev.line((line) => line.startsWith('cloudsocket AWS emulator'), 'the AWS URL').then((line) => line.split(/\s+/)[3]!);

describe('a port another process listens on', () => {
  it.each(['port', 'aws-port'])('stops dev before it builds or starts anything, naming --%s', async (flag) => {
    const taken = await squatter();
    const empty = await mkdtemp(join(tmpdir(), 'cloudsocket-dev-empty-'));
    cleanups.push(() => rm(empty, { recursive: true, force: true }));
    const other = flag === 'port' ? 'aws-port' : 'port';
    const dev = runDev([`--${flag}`, String(taken), `--${other}`, '0'], { CLOUDSOCKET_DIST_DIR: empty });
    expect(await ended(dev)).toBe(1);
    expect(dev.stderr()).toBe(`cloudsocket: dev: port ${taken} is already in use (--${flag})\n`);
    expect(dev.stdout).toEqual([]);
  });

  it('is never taken for the started function, even when it answers /healthz', async () => {
    const impostor = createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'));
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => impostor.close(resolve)));
    const { port } = impostor.address() as AddressInfo;
    const starting = runArtifact(join(dist, 'cloudbase'), { port, env: { LOG_LEVEL: 'warn' }, startTimeoutMs: 10_000 });
    await expect(starting).rejects.toMatchObject({ code: 'port_in_use', port });
  });
});

describe('a target that dies while dev runs', () => {
  it('prints its exit code and stderr tail, stops the emulator and exits 1', async () => {
    // The real function, made to die on a signal with last words, as a crash would leave them.
    const hooks = await mkdtemp(join(tmpdir(), 'cloudsocket-dev-hooks-'));
    cleanups.push(() => rm(hooks, { recursive: true, force: true }));
    const dieOnUsr2 = join(hooks, 'die-on-usr2.cjs');
    await writeFile(dieOnUsr2, "process.on('SIGUSR2', () => { process.stderr.write('first words\\nlast words\\n'); process.exit(3); });\n");
    const dev = runDev(['--port', '0', '--aws-port', '0', '--no-build'], { NODE_OPTIONS: `--require ${dieOnUsr2}` });
    const aws = await TestClient.join(`${await emulatorUrl(dev)}?clientId=dies_a`, { timeoutMs: 15_000 });

    process.kill(await cloudbasePid(dev), 'SIGUSR2');
    expect((await aws.client.waitClosed(10_000)).code).toBe(1001);
    expect(await ended(dev)).toBe(1);
    expect(dev.stderr()).toBe(
      'cloudsocket: dev: the CloudBase target exited with code 3 while dev was running; its stderr ended with:\n  first words\n  last words\n',
    );
  });

  it('names the signal that killed it', async () => {
    const dev = runDev(['--target', 'cloudbase', '--port', '0', '--no-build']);
    await dev.line((line) => line.startsWith('cloudsocket CloudBase target'), 'the CloudBase URL');
    process.kill(await cloudbasePid(dev), 'SIGKILL');
    expect(await ended(dev)).toBe(1);
    expect(dev.stderr()).toBe('cloudsocket: dev: the CloudBase target was killed by SIGKILL while dev was running (nothing on stderr)\n');
  });
});

describe('a dev without a build to run', () => {
  it('names the missing CloudBase file and what to run, in one line, exit 1', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'cloudsocket-dev-unbuilt-'));
    cleanups.push(() => rm(empty, { recursive: true, force: true }));
    const dev = runDev(['--no-build', '--target', 'cloudbase', '--port', '0'], { CLOUDSOCKET_DIST_DIR: empty });
    expect(await ended(dev)).toBe(1);
    expect(dev.stderr()).toBe(`cloudsocket: ${join(empty, 'cloudbase/scf_bootstrap')} is missing; run \`cloudsocket build\` first\n`);
    expect(dev.stdout).toEqual([]);
  });
});

/** Resolves once process `pid` is gone; /proc is the only word on a process that is not our child. */
async function processGone(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await readFile(`/proc/${pid}/stat`, 'utf8').then((stat) => !/^\d+ \(.*\) Z/.test(stat), () => false))) {
    if (Date.now() > deadline) throw new Error(`process ${pid} still runs ${timeoutMs} ms later`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a dev that dies without cleaning up', () => {
  it('takes the CloudBase function with it when killed with SIGKILL: clients get 1012, the port is free', async () => {
    const port = await freePort();
    const dev = runDev(['--target', 'cloudbase', '--port', String(port), '--no-build']);
    await dev.line((line) => line.startsWith('cloudsocket CloudBase target'), 'the CloudBase URL');
    const functionPid = await cloudbasePid(dev);
    const { client } = await TestClient.join(`ws://127.0.0.1:${port}/?clientId=orphan_a`);

    dev.child.kill('SIGKILL');
    expect((await client.waitClosed(10_000)).code).toBe(1012);
    await processGone(functionPid, 10_000);
    expect(await portIsTaken(port, '0.0.0.0')).toBe(false);
  });

  it('takes the redis-server of --redis with it when killed with SIGKILL', async () => {
    const dev = runDev(['--instances', '1', '--redis', '--no-build']);
    const started = await dev.line((line) => line.startsWith('started redis-server on 127.0.0.1:'), 'the redis-server line');
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(started)![1]);
    await dev.line((line) => line.startsWith('cloudsocket CloudBase target'), 'the CloudBase URL');
    const pid = dev.child.pid!;
    const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/).map(Number);
    const names = await Promise.all(children.map((child) => readFile(`/proc/${child}/comm`, 'utf8').then((comm) => comm.trim())));
    const redisPid = children[names.indexOf('redis-server')]!;
    expect(redisPid).toBeGreaterThan(0);

    dev.child.kill('SIGKILL');
    await processGone(redisPid, 10_000);
    expect(await portIsTaken(port, '127.0.0.1')).toBe(false);
  });

  it('stops on SIGHUP as on SIGTERM: the function closes its clients with 1012 and dev exits 0', async () => {
    const dev = runDev(['--target', 'cloudbase', '--port', '0', '--no-build']);
    const url = await dev.line((line) => line.startsWith('cloudsocket CloudBase target'), 'the CloudBase URL').then((line) => line.split(/\s+/)[3]!);
    const functionPid = await cloudbasePid(dev);
    const { client } = await TestClient.join(`${url}?clientId=hangup_a`);

    dev.child.kill('SIGHUP');
    expect((await client.waitClosed(10_000)).code).toBe(1012);
    expect(await ended(dev)).toBe(0);
    await processGone(functionPid, 10_000);
  });
});

describe('flags', () => {
  it.each([
    [['--target', 'aws', '--port', '9100'], "dev: --port is the CloudBase target's port and --target aws does not run it; the emulator's is --aws-port"],
    [['--target', 'cloudbase', '--aws-port', '3100'], 'dev: --aws-port applies to the AWS emulator and --target cloudbase does not run it'],
    [['--target', 'cloudbase', '--idle-timeout', '60'], 'dev: --idle-timeout applies to the AWS emulator and --target cloudbase does not run it'],
    [['--idle-timeout', '0'], 'dev: --idle-timeout must be a whole number from 1 to 86400, got "0"'],
    [['--max-duration', '1.5'], 'dev: --max-duration must be a whole number from 1 to 86400, got "1.5"'],
  ])('refuses %j (exit 2)', async (args, message) => {
    const dev = runDev(args);
    expect(await ended(dev)).toBe(2);
    expect(dev.stderr()).toBe(`cloudsocket: ${message}\n`);
    expect(dev.stdout).toEqual([]);
  });

  it.each([
    ['--idle-timeout', ['--idle-timeout', '1']],
    ['--max-duration', ['--max-duration', '1', '--idle-timeout', '600']],
  ])('%s reaches the emulator: an idle connection is closed with 1001', async (_flag, args) => {
    const dev = runDev(['--target', 'aws', '--aws-port', String(await freePort()), '--no-build', ...args]);
    const client = await TestClient.connect(`${await emulatorUrl(dev)}?clientId=timed`);
    expect((await client.waitClosed(10_000)).code).toBe(1001);
  });
});

describe("the AWS SDK's Node version notice", () => {
  it('appears at most once per dev run, however many Lambda environments start', async () => {
    const dev = runDev(['--port', '0', '--aws-port', '0', '--no-build'], { [NOTICE_DISABLED]: undefined });
    const url = await emulatorUrl(dev);
    const [a, b] = await Promise.all(['notice_a', 'notice_b'].map((id) => TestClient.join(`${url}?clientId=${id}`, { timeoutMs: 15_000 })));
    a!.client.send({ type: 'chat', content: 'hello' });
    await b!.client.next('chat', 10_000);
    await Promise.all([a!.client.close(), b!.client.close()]);
    dev.child.kill('SIGINT');
    expect(await ended(dev)).toBe(0);
    const output = `${dev.stdout.join('\n')}\n${dev.stderr()}`;
    const notices = output.split('NodeVersionSupportWarning').length - 1;
    expect(notices).toBe(Number(process.versions.node.split('.')[0]) < 22 ? 1 : 0);
  });
});
