/**
 * Room state in Redis, shared by every instance of a CloudBase function:
 * one hash per room, `{p}state:{room}`, field = key, value = the JSON text.
 * Reads are HGET and HGETALL. Writes are Lua scripts: one that may add a
 * key checks the key limit and writes in one atomic step, an increment is
 * HINCRBY after checking the field holds a whole number and the sum stays a
 * safe integer, and every write renews the hash's expiry (ROOM_STATE_TTL),
 * so Redis itself forgets a room nobody writes to any more. One round trip
 * per operation; no KEYS or SCAN.
 *
 * Unlike the registry, nothing answers from memory while Redis is away: a
 * copy only this instance saw would part from what the others see. The
 * command fails at once (no offline queue) and the sender hears `unavailable`.
 */
import type { Redis } from 'ioredis';
import { StateFullError, StateNotIntegerError, StateOutOfRangeError } from '../shared/errors.js';
import { DEFAULT_STATE_TTL_MS, STATE_LIMITS, type StateStore } from '../shared/room-state.js';

/** Renews the expiry of a written hash; ARGV[4] is the TTL in ms, 0 for none. */
const RENEW = `
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) else redis.call('PERSIST', KEYS[1]) end`;

const SCRIPTS = {
  // KEYS: the room's hash. ARGV: key, JSON text, maxKeysPerRoom, ttlMs. 0 when the room is full.
  csStateSet: `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
${RENEW}
return 1`,
  // KEYS: the room's hash. ARGV: key, (unused), (unused), ttlMs. 1 when the key was there.
  csStateDelete: `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
${RENEW}
return 1`,
  // KEYS: the room's hash. ARGV: key, by, maxKeysPerRoom, ttlMs. {'ok', value}, or {reason}.
  csStateIncrement: `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then
  if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return {'full'} end
  v = '0'
elseif not string.match(v, '^%-?%d+$') then
  return {'not_integer'}
end
local limit = ${Number.MAX_SAFE_INTEGER}
local current = tonumber(v)
local sum = current + tonumber(ARGV[2])
if current > limit or current < -limit or sum > limit or sum < -limit then return {'out_of_range'} end
redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
${RENEW}
-- As text: ioredis 6 reads the integer reply 9007199254740991, a safe integer, as 9007199254740992.
return {'ok', redis.call('HGET', KEYS[1], ARGV[1])}`,
} as const;

type Scripted = Record<keyof typeof SCRIPTS, (...args: Array<string | number>) => Promise<unknown>>;

export interface RedisStateStoreOptions {
  client: Redis;
  /** Prepended to every key, as for the registry. Default "cloudsocket:". */
  prefix?: string;
  /** A room's state is forgotten this long after its last write; 0 keeps it. Default a day (ROOM_STATE_TTL). */
  ttlMs?: number;
}

export class RedisStateStore implements StateStore {
  private readonly client: Redis;
  private readonly scripts: Scripted;
  private readonly prefix: string;
  private readonly ttlMs: number;

  constructor(options: RedisStateStoreOptions) {
    this.client = options.client;
    this.prefix = options.prefix ?? 'cloudsocket:';
    this.ttlMs = Math.ceil(options.ttlMs ?? DEFAULT_STATE_TTL_MS);
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      if (!(name in this.client)) this.client.defineCommand(name, { numberOfKeys: 1, lua });
    }
    this.scripts = this.client as unknown as Scripted;
  }

  async get(room: string, key: string): Promise<string | undefined> {
    return (await this.client.hget(this.hash(room), key)) ?? undefined;
  }

  async set(room: string, key: string, json: string): Promise<void> {
    const stored = await this.scripts.csStateSet(this.hash(room), key, json, STATE_LIMITS.maxKeysPerRoom, this.ttlMs);
    if (stored === 0) throw new StateFullError(STATE_LIMITS.maxKeysPerRoom);
  }

  async delete(room: string, key: string): Promise<boolean> {
    return (await this.scripts.csStateDelete(this.hash(room), key, '', '', this.ttlMs)) === 1;
  }

  async increment(room: string, key: string, by: number): Promise<number> {
    const [outcome, value] = (await this.scripts.csStateIncrement(this.hash(room), key, by, STATE_LIMITS.maxKeysPerRoom, this.ttlMs)) as [string, string?];
    if (outcome === 'ok') return Number(value);
    if (outcome === 'full') throw new StateFullError(STATE_LIMITS.maxKeysPerRoom);
    if (outcome === 'not_integer') throw new StateNotIntegerError(key);
    throw new StateOutOfRangeError(key);
  }

  async list(room: string): Promise<Array<[string, string]>> {
    return Object.entries(await this.client.hgetall(this.hash(room)));
  }

  private hash(room: string): string {
    return `${this.prefix}state:${room}`;
  }
}
