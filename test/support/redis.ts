/** A real redis-server per test file, on a free port, gone afterwards. */
import type { Redis } from 'ioredis';
import { expect } from 'vitest';

export { startRedisServer, type LocalRedis } from '../../scripts/redis-server.js';

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
