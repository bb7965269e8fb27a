/**
 * Settings from environment variables, read the same way on every target.
 * A value that cannot be used is a ConfigError naming the variable.
 */
import { ConfigError } from './errors.js';
import { DEFAULT_RATE_LIMIT, type RateLimit } from './rate-limit.js';
import type { RoomLogLimits } from './room-log.js';
import { DEFAULT_STATE_TTL_MS } from './room-state.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface CoreSettings {
  /** A connection with no frame for this long is closed with 1001. */
  heartbeatTimeoutMs: number;
  /** How often idle connections are looked for. */
  cleanupIntervalMs: number;
  rateLimit: RateLimit;
  /** Origins allowed to open a connection; null allows any. */
  allowedOrigins: ReadonlySet<string> | null;
  /** Sends in flight at once during a broadcast. */
  fanoutConcurrency: number;
  /** Rooms with more members than this get no `user_joined` / `user_left` frames. */
  presenceLimit: number;
  /** What each room's log keeps for resuming clients: ROOM_LOG_SIZE frames, ROOM_LOG_AGE old at most. */
  roomLog: RoomLogLimits;
  /** How long a resume token is honoured after it was handed out. */
  resumeTokenTtlMs: number;
  /** ROOM_STATE_TTL: a room's `ctx.state` is forgotten this long after its last write; 0 keeps it for good. */
  roomStateTtlMs: number;
  /** RESUME_SECRET, which signs resume tokens; unset, the engine uses the build's secret or makes one. */
  resumeSecret: string | undefined;
}

/** Long enough for API Gateway's 2-hour connection limit and a reconnect after it. */
const DEFAULT_RESUME_TOKEN_TTL_SECONDS = 10_800;
/**
 * Rooms are named by their clients, so state nobody writes any more must go
 * some time, or every room ever named would stay in memory (one instance),
 * in Redis and in the table.
 */
const DEFAULT_ROOM_STATE_TTL_SECONDS = DEFAULT_STATE_TTL_MS / 1000;
/** An HMAC key much shorter than this is guessable offline from any one token. */
const MIN_RESUME_SECRET_CHARS = 16;

export const DEFAULT_CORE_SETTINGS: CoreSettings = {
  heartbeatTimeoutMs: 300_000,
  cleanupIntervalMs: 30_000,
  rateLimit: DEFAULT_RATE_LIMIT,
  allowedOrigins: null,
  fanoutConcurrency: 50,
  presenceLimit: 100,
  roomLog: { maxEntries: 1000, maxAgeMs: 300_000 },
  resumeTokenTtlMs: DEFAULT_RESUME_TOKEN_TTL_SECONDS * 1000,
  roomStateTtlMs: DEFAULT_ROOM_STATE_TTL_SECONDS * 1000,
  resumeSecret: undefined,
};

export function readCoreSettings(env: Env): CoreSettings {
  return {
    heartbeatTimeoutMs: readSeconds(env, 'HEARTBEAT_TIMEOUT', 300) * 1000,
    cleanupIntervalMs: readSeconds(env, 'CLEANUP_INTERVAL', 30) * 1000,
    rateLimit: {
      perSecond: readNumber(env, 'RATE_LIMIT', DEFAULT_RATE_LIMIT.perSecond, { min: 0 }),
      burst: readNumber(env, 'RATE_BURST', DEFAULT_RATE_LIMIT.burst, { min: 1, integer: true }),
      closeAfter: readNumber(env, 'RATE_LIMIT_CLOSE_AFTER', DEFAULT_RATE_LIMIT.closeAfter, { min: 1, integer: true }),
    },
    allowedOrigins: readOrigins(env.ALLOWED_ORIGINS),
    fanoutConcurrency: readNumber(env, 'FANOUT_CONCURRENCY', 50, { min: 1, max: 1000, integer: true }),
    presenceLimit: readNumber(env, 'PRESENCE_LIMIT', 100, { min: 0, integer: true }),
    roomLog: {
      maxEntries: readNumber(env, 'ROOM_LOG_SIZE', 1000, { min: 1, max: 100_000, integer: true }),
      maxAgeMs: readSeconds(env, 'ROOM_LOG_AGE', 300) * 1000,
    },
    resumeTokenTtlMs: readSeconds(env, 'RESUME_TOKEN_TTL', DEFAULT_RESUME_TOKEN_TTL_SECONDS) * 1000,
    roomStateTtlMs: readNumber(env, 'ROOM_STATE_TTL', DEFAULT_ROOM_STATE_TTL_SECONDS, { min: 0 }) * 1000,
    resumeSecret: readSecret(env, 'RESUME_SECRET', MIN_RESUME_SECRET_CHARS),
  };
}

function readSecret(env: Env, name: string, minChars: number): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  // The value itself never goes into the message: it is a secret.
  if (raw.length < minChars) throw new ConfigError(`${name} must be at least ${minChars} characters (it has ${raw.length})`);
  return raw;
}

interface NumberRule {
  min?: number;
  max?: number;
  integer?: boolean;
}

export function readNumber(env: Env, name: string, fallback: number, rule: NumberRule = {}): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  const problems: string[] = [];
  if (!Number.isFinite(value)) problems.push('a number');
  if (rule.integer && !Number.isInteger(value)) problems.push('a whole number');
  if (rule.min !== undefined && !(value >= rule.min)) problems.push(`at least ${rule.min}`);
  if (rule.max !== undefined && !(value <= rule.max)) problems.push(`at most ${rule.max}`);
  if (problems.length > 0) throw new ConfigError(`${name}=${JSON.stringify(raw)} must be ${problems.join(', ')}`);
  return value;
}

/** Seconds, fractions allowed so tests can shorten timers. */
export function readSeconds(env: Env, name: string, fallback: number): number {
  const seconds = readNumber(env, name, fallback, { min: 0 });
  if (seconds === 0) throw new ConfigError(`${name} must be more than 0 seconds`);
  return seconds;
}

export function readChoice<T extends string>(env: Env, name: string, choices: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if ((choices as readonly string[]).includes(raw)) return raw as T;
  throw new ConfigError(`${name}=${JSON.stringify(raw)} must be one of ${choices.join(', ')}`);
}

/** Comma-separated origins, compared without case and trailing slash; "*" or empty allows any. */
function readOrigins(raw: string | undefined): ReadonlySet<string> | null {
  const origins = (raw ?? '').split(',').map(normalizeOrigin).filter((origin) => origin !== '');
  if (origins.length === 0 || origins.includes('*')) return null;
  return new Set(origins);
}

export function normalizeOrigin(origin: string): string {
  return origin.trim().toLowerCase().replace(/\/+$/, '');
}

/** The fields that are set, so `{ ...defaults, ...definedOnly(overrides) }` keeps a default where an override is undefined. */
export function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** What a caller of an adapter factory may set over the values read from the environment. */
export type SettingsOverrides<T extends { core: CoreSettings }> = Partial<Omit<T, 'core'>> & { core?: Partial<CoreSettings> };

export function withOverrides<T extends { core: CoreSettings }>(settings: T, overrides: SettingsOverrides<T> = {}): T {
  const { core, ...rest } = overrides;
  return { ...settings, ...definedOnly(rest), core: { ...settings.core, ...definedOnly(core ?? {}) } };
}
