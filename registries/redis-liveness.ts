/**
 * Which instances are alive. Each renews `{p}alive:{id}` with a TTL of one
 * heartbeat, three times per heartbeat, and lists itself in `{p}instances`.
 * On the same beat each looks for instances whose key expired (killed, or
 * gone without cleanup) and takes their connections, atomically, so exactly
 * one survivor removes each and announces `user_left`. A death is noticed
 * within 4/3 of a heartbeat of the last renewal.
 */
import type { Redis } from 'ioredis';
import { silentLogger, type Logger } from '../shared/log.js';

const SCRIPTS = {
  // ARGV: prefix, instanceId, ttl ms. 1 when the key was still there; 2 when it was not because survivors took this
  // instance for dead and removed its connections (told once); 0 when it was not otherwise (Redis is new, or empty again).
  csBeat: `
local key = ARGV[1] .. 'alive:' .. ARGV[2]
local existed = redis.call('EXISTS', key)
if existed == 0 and redis.call('DEL', ARGV[1] .. 'reaped:' .. ARGV[2]) == 1 then existed = 2 end
redis.call('SET', key, '1', 'PX', ARGV[3])
redis.call('ZADD', ARGV[1] .. 'instances', 0, ARGV[2])
return existed`,
  // ARGV: prefix, instanceId, mark ttl ms. { deadId, {connectionIds} } for each dead instance, each handed out once.
  csReap: `
local out = {}
for _, id in ipairs(redis.call('ZRANGE', ARGV[1] .. 'instances', 0, -1)) do
  if id ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. 'alive:' .. id) == 0 then
    redis.call('ZREM', ARGV[1] .. 'instances', id)
    local owned = ARGV[1] .. 'owner:' .. id
    out[#out + 1] = { id, redis.call('SMEMBERS', owned) }
    redis.call('DEL', owned)
    -- Should it only have been cut off, it learns on its next beat that its users were announced as left.
    redis.call('SET', ARGV[1] .. 'reaped:' .. id, '1', 'PX', ARGV[3])
  end
end
return out`,
  // ARGV: prefix, instanceId.
  csLeave: `
redis.call('DEL', ARGV[1] .. 'alive:' .. ARGV[2])
redis.call('ZREM', ARGV[1] .. 'instances', ARGV[2])
return 1`,
} as const;

/** How long a reaped instance's mark waits for it to come back: far longer than any partition it could live through. */
const REAPED_MARK_MS = 24 * 60 * 60 * 1000;

type Scripted = Record<keyof typeof SCRIPTS, (...args: Array<string | number>) => Promise<unknown>>;

export interface RedisLivenessOptions {
  client: Redis;
  instanceId: string;
  prefix?: string;
  /** The key's TTL: an instance silent this long is dead. */
  heartbeatMs: number;
  /** Removes a dead instance's connections (and announces them). */
  onDeadInstance(instanceId: string, connectionIds: string[]): Promise<void>;
  /**
   * This instance's key was gone: its connections may have been taken; write them again. `reaped`: survivors took
   * it for dead, removed its connections and told their rooms they left.
   */
  onForgotten?(reaped: boolean): Promise<void>;
  logger?: Logger;
}

export class RedisLiveness {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private readonly scripts: Scripted;
  private readonly prefix: string;
  private readonly logger: Logger;

  constructor(private readonly options: RedisLivenessOptions) {
    this.prefix = options.prefix ?? 'cloudsocket:';
    this.logger = options.logger ?? silentLogger;
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      if (!(name in options.client)) options.client.defineCommand(name, { numberOfKeys: 0, lua });
    }
    this.scripts = options.client as unknown as Scripted;
  }

  /** Announces this instance and starts beating; the first beat has happened when this resolves. */
  async start(): Promise<void> {
    await this.scripts.csBeat(this.prefix, this.options.instanceId, this.options.heartbeatMs);
    this.timer = setInterval(() => {
      this.beating ??= this.beat().finally(() => (this.beating = undefined));
    }, Math.max(1, Math.floor(this.options.heartbeatMs / 3)));
    this.timer.unref();
  }

  /** Stops beating and takes this instance off the list, so nobody reaps what it has already removed. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    await this.scripts.csLeave(this.prefix, this.options.instanceId).catch(() => {});
  }

  private async beat(): Promise<void> {
    const { instanceId, heartbeatMs } = this.options;
    try {
      const existed = await this.scripts.csBeat(this.prefix, instanceId, heartbeatMs);
      if (existed === 0 || existed === 2) {
        this.logger.warn('instance_key_was_gone', { instanceId, reaped: existed === 2 });
        await this.options.onForgotten?.(existed === 2);
      }
      const dead = (await this.scripts.csReap(this.prefix, instanceId, REAPED_MARK_MS)) as Array<[string, string[]]>;
      for (const [deadId, connectionIds] of dead) {
        this.logger.warn('instance_dead', { instanceId: deadId, connections: connectionIds.length });
        await this.options.onDeadInstance(deadId, connectionIds);
      }
    } catch (error) {
      // Redis away: the registry notices and says so; try again on the next beat.
      this.logger.debug('heartbeat_failed', { error });
    }
  }
}
