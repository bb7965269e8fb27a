/** A real redis-server per test file, on a free port, gone afterwards. */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect } from 'vitest';
import { connectRedis } from '../../registries/redis-connection.js';
import { startRedisServer, type LocalRedis } from '../../scripts/redis-server.js';

export { startRedisServer, type LocalRedis } from '../../scripts/redis-server.js';

export interface RedisOfFile {
  readonly url: string;
  /** A connection made the way the CloudBase target makes its own; disconnected after the file's tests. */
  client(name?: string): Promise<Redis>;
  /** Disconnects `client` (of another server, say) with the file's own. */
  keep(client: Redis): Redis;
}

/** Starts a redis-server before the file's tests and stops it after them. */
export function redisForFile(): RedisOfFile {
  let server: LocalRedis | undefined;
  const clients: Redis[] = [];
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await server?.stop();
  });
  return {
    get url() {
      return server!.url;
    },
    async client(name = 'test') {
      return this.keep(await connectRedis(server!.url, name));
    },
    keep(client) {
      clients.push(client);
      return client;
    },
  };
}

/** Every command name `client` sends from now on: one entry is one round trip. */
export function recordCommands(client: Redis): string[] {
  const sent: string[] = [];
  const original = client.sendCommand.bind(client);
  client.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
    sent.push(command.name);
    return (original as (...args: unknown[]) => unknown)(command, ...rest);
  }) as typeof client.sendCommand;
  return sent;
}

/** Asserts, from the server's own counters, that scripts ran on it and no command walked the keyspace. */
export async function expectNoKeyspaceWalk(client: Redis): Promise<void> {
  const info = await client.info('commandstats');
  expect(info).toMatch(/cmdstat_evalsha:calls=\d+/);
  expect(info).not.toMatch(/cmdstat_(keys|scan|hscan|sscan|zscan):/);
}
