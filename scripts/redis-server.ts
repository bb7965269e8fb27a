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

export async function startRedisServer(options: { port?: number } = {}): Promise<LocalRedis> {
  if (!existsSync(REDIS_SERVER_PATH)) throw new RedisServerMissingError();
  const port = options.port ?? (await freePort());
  const redis: LocalRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    child: await spawnRedis(port),
    stop: async (signal = 'SIGTERM') => {
      const { child } = redis;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill(signal);
      await exited;
    },
    restart: async () => {
      await redis.stop();
      redis.child = await spawnRedis(port);
    },
  };
  return redis;
}

async function spawnRedis(port: number): Promise<ChildProcess> {
  const child = spawn(REDIS_SERVER_PATH, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
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
