/**
 * Connections to Redis the way the CloudBase adapter needs them: the first
 * connection must succeed or the function stops with one clear error; after
 * that a lost Redis is retried for ever while commands fail at once (no
 * offline queue), so callers fall back to what this instance knows by itself
 * instead of waiting.
 */
import { Redis } from 'ioredis';
import { CloudsocketError, HandshakeError } from '../shared/errors.js';

/** Redis could not be reached when the function started. */
export class RedisUnavailableError extends CloudsocketError {
  constructor(url: string, cause: string) {
    super('redis_unavailable', `cannot reach Redis at REDIS_URL=${redactUrl(url)}: ${cause}`);
  }
}

/** A handshake while Redis is away: a clientId cannot be claimed across instances, so the client is asked to retry. */
export class RegistryUnavailableError extends HandshakeError {
  constructor() {
    super(503, 'registry_unavailable', 'the connection registry is unreachable, try again shortly');
  }
}

/** The longest wait between two attempts to reconnect: every instance is back within about this of Redis. */
export const RECONNECT_DELAY_CAP_MS = 2000;

/** How long a command may wait for Redis before it counts as an outage. */
const COMMAND_TIMEOUT_MS = 1000;
const CONNECT_TIMEOUT_MS = 5000;

export async function connectRedis(url: string, name: string): Promise<Redis> {
  let ready = false;
  const client = new Redis(url, {
    lazyConnect: true,
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // Before the first success a failure is final (the function exits); after it, retry with a capped backoff.
    retryStrategy: (attempt) => (ready ? Math.min(attempt * 100, RECONNECT_DELAY_CAP_MS) : null),
  });
  // Without a listener an 'error' event would throw; outages are reported by the callers that notice them.
  let cause: Error | undefined;
  client.on('error', (error: Error) => (cause = error));
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    // connect() rejects with "Connection is closed."; the socket's own error says why.
    throw new RedisUnavailableError(url, (cause ?? (error as Error)).message);
  }
  // ioredis selects the URL's database on connecting but goes on in database 0 when that fails (`/99` of a Redis with 16).
  const database = databaseOf(url);
  if (database !== undefined) {
    try {
      await client.select(database);
    } catch (error) {
      client.disconnect();
      throw new RedisUnavailableError(url, `database ${database} cannot be selected: ${(error as Error).message}`);
    }
  }
  ready = true;
  return client;
}

/** The database a `redis://host:port/N` URL names, if it names one. */
function databaseOf(url: string): number | undefined {
  const path = new URL(url).pathname.replace(/^\//, '');
  return path === '' ? undefined : Number(path);
}

const corkedConnections = new WeakSet<object>();

/**
 * Holds the commands sent on `client` for the rest of this turn of the event
 * loop and writes them at once after its poll phase (setImmediate): under
 * load several broadcasts are handled in one turn, and one write to Redis
 * for all of them costs about what one costs. Replies still come one per
 * command, in order.
 */
export function batchWritesThisTurn(client: Redis): void {
  const stream = client.stream;
  if (!stream || corkedConnections.has(stream)) return;
  corkedConnections.add(stream);
  stream.cork();
  setImmediate(() => {
    corkedConnections.delete(stream);
    stream.uncork();
  });
}

/** Whether an error means Redis is away (as opposed to Redis refusing a command, a bug to surface). */
export function isOutage(error: unknown): boolean {
  return !(error instanceof Error && error.name === 'ReplyError');
}

/** The URL without its password, fit for a log or an error message. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}
