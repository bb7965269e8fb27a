/**
 * Everything a CloudBase instance needs to share rooms with other instances
 * over one Redis: the registry, the rooms' logs, the backplane, room state
 * and the liveness beat, on two connections (commands, and one in subscriber mode).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { silentLogger, type Logger } from '../shared/log.js';
import type { RoomLogLimits } from '../shared/room-log.js';
import { DEFAULT_CORE_SETTINGS } from '../shared/settings.js';
import { connectRedis, RECONNECT_DELAY_CAP_MS } from './redis-connection.js';
import { RedisBackplane } from './redis-backplane.js';
import { RedisLiveness } from './redis-liveness.js';
import { RedisRegistry, type MissedPresence } from './redis-registry.js';
import { RedisStateStore } from './redis-state.js';
import { RedisRoomLog } from './redis-room-log.js';

export interface RedisScaleOutOptions {
  url: string;
  /** Default a random id; it must differ between live instances. */
  instanceId?: string;
  /** Key and channel prefix; default "cloudsocket:". */
  prefix?: string;
  /** An instance that has not renewed its key for this long is dead. */
  heartbeatMs: number;
  /** What each room's log keeps (ROOM_LOG_SIZE, ROOM_LOG_AGE); default their defaults. */
  roomLog?: RoomLogLimits;
  /** ROOM_STATE_TTL; default its default. */
  roomStateTtlMs?: number;
  logger?: Logger;
}

/** What `start` needs of the engine: forgetting a dead instance's connections tells their rooms; so does telling what an outage hid. */
export interface Disconnecter {
  disconnect(connectionId: string): Promise<void>;
  announceToOtherInstances(change: MissedPresence): Promise<void>;
}

/**
 * How long after its own restore an instance waits before telling the
 * others what their clients missed: as long as it refuses admissions after
 * an outage, time enough for every other instance to reconnect and
 * subscribe again, or a message to it would be lost with no one to notice.
 */
const MISSED_PRESENCE_DELAY_MS = 2 * RECONNECT_DELAY_CAP_MS;

export class RedisScaleOut {
  private liveness: RedisLiveness | undefined;
  private readonly announcing = new Set<ReturnType<typeof setTimeout>>();

  private constructor(
    readonly instanceId: string,
    readonly registry: RedisRegistry,
    readonly log: RedisRoomLog,
    readonly backplane: RedisBackplane,
    readonly state: RedisStateStore,
    private readonly client: Redis,
    private readonly options: RedisScaleOutOptions,
  ) {}

  /** Connects both connections; a Redis that cannot be reached is a RedisUnavailableError naming REDIS_URL. */
  static async connect(options: RedisScaleOutOptions): Promise<RedisScaleOut> {
    const instanceId = options.instanceId ?? randomBytes(8).toString('hex');
    const logger = options.logger ?? silentLogger;
    const client = await connectRedis(options.url, `cloudsocket-${instanceId}`);
    let subscriber: Redis;
    try {
      subscriber = await connectRedis(options.url, `cloudsocket-${instanceId}-sub`);
    } catch (error) {
      client.disconnect();
      throw error;
    }
    const { prefix } = options;
    const registry = new RedisRegistry({ client, prefix, instanceId, logger });
    const backplane = new RedisBackplane({ publisher: client, subscriber, prefix, logger });
    const log = new RedisRoomLog({ client, prefix, limits: options.roomLog ?? DEFAULT_CORE_SETTINGS.roomLog, logger, backplane });
    const state = new RedisStateStore({ client, prefix, ttlMs: options.roomStateTtlMs ?? DEFAULT_CORE_SETTINGS.roomStateTtlMs });
    return new RedisScaleOut(instanceId, registry, log, backplane, state, client, { ...options, instanceId });
  }

  /** Starts the liveness beat; survivors' reaping goes through `engine` so rooms hear `user_left`. */
  async start(engine: Disconnecter): Promise<void> {
    const logger = this.options.logger ?? silentLogger;
    this.registry.onMissedPresence = (missed) => {
      const timer = setTimeout(async () => {
        this.announcing.delete(timer);
        for (const change of missed) {
          await engine.announceToOtherInstances(change).catch((error) => logger.warn('missed_presence_not_told', { ...change, error }));
        }
        logger.info('missed_presence_told', { changes: missed.length });
      }, MISSED_PRESENCE_DELAY_MS);
      timer.unref();
      this.announcing.add(timer);
    };
    this.liveness = new RedisLiveness({
      client: this.client,
      instanceId: this.instanceId,
      prefix: this.options.prefix,
      heartbeatMs: this.options.heartbeatMs,
      logger,
      onDeadInstance: async (_deadId, connectionIds) => {
        for (const connectionId of connectionIds) {
          await engine.disconnect(connectionId).catch((error) => logger.error('reap_failed', { connectionId, error }));
        }
      },
      onForgotten: (reaped) => this.registry.restore({ reannounce: reaped }),
    });
    await this.liveness.start();
  }

  /** After the server has closed its sockets: leave the instance list, then hang up. */
  async stop(): Promise<void> {
    for (const timer of this.announcing) clearTimeout(timer);
    this.announcing.clear();
    this.registry.onMissedPresence = undefined;
    await this.liveness?.stop();
    await this.backplane.close();
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
