/**
 * Debian's redis-server on a free port, with nothing written to disk: for
 * `cloudsocket dev --redis` and the tests. Ready once it answers PING.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { CloudsocketError } from '../shared/errors.js';
import { freePort } from './run-artifact.js';

export const REDIS_SERVER_PATH = '/usr/bin/redis-server';

export class RedisServerMissingError extends CloudsocketError {
  constructor() {
    super('redis_server_missing', `${REDIS_SERVER_PATH} is not installed; install it with "apt-get install redis-server", or set REDIS_URL to a Redis you run`);
  }
}

export interface LocalRedis {
  port: number;
  url: string;
  child: ChildProcess;
  /** Stops the server (SIGTERM unless told); resolves once it has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port, empty, as a Redis without persistence comes back. */
  restart(): Promise<void>;
}

export interface RedisServerOptions {
  port?: number;
  /** Stop the server when this process dies without stopping it (kill -9), as `dev --redis` wants. */
  stopWithThisProcess?: boolean;
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<LocalRedis> {
  if (!existsSync(REDIS_SERVER_PATH)) throw new RedisServerMissingError();
  const port = options.port ?? (await freePort());
  const guarded = options.stopWithThisProcess ?? false;
  const redis: LocalRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    child: await spawnRedis(port, guarded),
    stop: async (signal = 'SIGTERM') => {
      const { child } = redis;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill(signal);
      await exited;
    },
    restart: async () => {
      await redis.stop();
      redis.child = await spawnRedis(port, guarded);
    },
  };
  return redis;
}

async function spawnRedis(port: number, guarded: boolean): Promise<ChildProcess> {
  const child = spawn(REDIS_SERVER_PATH, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (guarded && child.pid !== undefined) guard(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) => reject(new CloudsocketError('redis_server_exited', `redis-server on port ${port} exited (${signal ?? code}) ${stderr.trim()}`))),
  );
  exited.catch(() => {});
  const deadline = Date.now() + 10_000;
  while (!(await answersPing(port))) {
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new CloudsocketError('redis_server_start_timeout', `redis-server did not answer on port ${port} within 10 s`);
    }
    await Promise.race([new Promise((resolve) => setTimeout(resolve, 20)), exited]);
  }
  return child;
}

/**
 * redis-server has no way to follow its parent, so a small Node process
 * does: it reads a pipe only this process writes to, and end-of-file there
 * means this process is gone, even by SIGKILL; it then stops the server. It
 * goes when the server does, so it never signals a reused pid.
 */
const GUARD_SCRIPT = "process.stdin.on('end', () => { try { process.kill(Number(process.argv[1]), 'SIGTERM'); } catch {} process.exit(0); }).resume();";

function guard(server: ChildProcess): void {
  const watcher = spawn(process.execPath, ['-e', GUARD_SCRIPT, String(server.pid)], { stdio: ['pipe', 'ignore', 'ignore'] });
  server.once('exit', () => watcher.kill());
  // Neither the watcher nor its pipe keeps this process running.
  watcher.unref();
  (watcher.stdin as unknown as { unref(): void }).unref();
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.setTimeout(500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      resolve(data.toString().startsWith('+PONG'));
      socket.destroy();
    });
    socket.once('timeout', () => socket.destroy());
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}
