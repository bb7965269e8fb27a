import { ConfigError } from '../../shared/errors.js';
import { LOG_LEVELS, type LogLevel } from '../../shared/log.js';
import { readChoice, readCoreSettings, readNumber, readSeconds, type CoreSettings, type Env, type SettingsOverrides } from '../../shared/settings.js';

export interface CloudbaseSettings {
  port: number;
  host: string;
  /** How often protocol-level pings go out; a peer that missed the previous one is dropped. */
  pingIntervalMs: number;
  /** Unsent bytes a slow client may pile up before it is disconnected. */
  maxBufferedBytes: number;
  logLevel: LogLevel;
  /** The HTTP access path CloudBase routes to the function (ACCESS_PATH); the page is served there too. */
  accessPath: string;
  /** REDIS_URL: the Redis every instance shares rooms through; absent, each instance is on its own. */
  redisUrl: string | undefined;
  /** REDIS_PREFIX: put before every key and channel, so apps can share one Redis. */
  redisPrefix: string;
  /** INSTANCE_HEARTBEAT: an instance that has not renewed its liveness key for this long is dead, its users gone. */
  instanceHeartbeatMs: number;
  /** HANDSHAKE_TIMEOUT: how long a handshake waits for `authenticate` before it is answered 500, as a timed-out `$connect` is on AWS. */
  handshakeTimeoutMs: number;
  core: CoreSettings;
}

export type CloudbaseSettingsOverrides = SettingsOverrides<CloudbaseSettings>;

export function readCloudbaseSettings(env: Env): CloudbaseSettings {
  return {
    port: readNumber(env, 'PORT', 9000, { min: 0, max: 65535, integer: true }),
    host: env.HOST || '0.0.0.0',
    pingIntervalMs: readSeconds(env, 'PING_INTERVAL', 30) * 1000,
    maxBufferedBytes: readNumber(env, 'MAX_BUFFERED_BYTES', 4 * 1024 * 1024, { min: 1024, integer: true }),
    logLevel: readChoice(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    accessPath: readAccessPath(env.ACCESS_PATH),
    redisUrl: readRedisUrl(env.REDIS_URL),
    redisPrefix: env.REDIS_PREFIX || 'cloudsocket:',
    instanceHeartbeatMs: readSeconds(env, 'INSTANCE_HEARTBEAT', 10) * 1000,
    // The template's $connect function has Timeout: 10.
    handshakeTimeoutMs: readSeconds(env, 'HANDSHAKE_TIMEOUT', 10) * 1000,
    core: readCoreSettings(env),
  };
}

function readRedisUrl(raw: string | undefined): string | undefined {
  const url = raw?.trim();
  if (!url) return undefined;
  if (!/^rediss?:\/\/\S+$/.test(url)) throw new ConfigError('REDIS_URL must be a redis:// or rediss:// URL');
  return url;
}

function readAccessPath(raw: string | undefined): string {
  const path = raw?.trim() || '/';
  if (!/^\/[A-Za-z0-9_\-/]{0,127}$/.test(path)) throw new ConfigError(`ACCESS_PATH=${JSON.stringify(raw)} must be a path such as /chat`);
  return path;
}
