/**
 * The Backplane over Redis pub/sub: one channel per instance, so a frame
 * reaches only the instances that own one of its recipients. Pub/sub rather
 * than Streams because these are live frames: nobody reads them later, a
 * subscriber that is away misses only what it could not have delivered
 * anyway, and Redis keeps nothing per message (docs/cloudbase.md).
 *
 * Memory stays bounded on both sides: Redis disconnects a subscriber whose
 * output buffer passes client-output-buffer-limit pubsub; here, publishes
 * waiting for Redis are capped and the excess is dropped (and counted), and
 * with no offline queue nothing piles up while Redis is away.
 */
import type { Redis } from 'ioredis';
import type { Backplane, BackplaneMessage } from '../shared/backplane.js';
import { silentLogger, type Logger } from '../shared/log.js';

export interface RedisBackplaneOptions {
  /** Publishes on this connection (it may be the registry's). */
  publisher: Redis;
  /** A connection of its own: one in subscriber mode can send nothing else. */
  subscriber: Redis;
  /** The registry's prefix, so apps sharing a Redis do not hear each other. */
  prefix?: string;
  /** Publishes waiting for Redis at once before new ones are dropped. */
  maxInFlight?: number;
  logger?: Logger;
}

const DEFAULT_MAX_IN_FLIGHT = 10_000;

/** Where a script publishes a message to all: the channel, and the payload it appends the frame to. */
export interface ScriptedPublish {
  channel: string;
  head: string;
}

export class RedisBackplane implements Backplane {
  /** Messages dropped because Redis was away or too many were waiting for it. */
  dropped = 0;
  private inFlight = 0;
  private readonly prefix: string;
  private readonly maxInFlight: number;
  private readonly logger: Logger;
  private readonly handlers = new Map<string, (message: BackplaneMessage) => void>();
  /** The instance this one subscribed as: messages to all that it sent itself are skipped. */
  private self: string | undefined;

  constructor(private readonly options: RedisBackplaneOptions) {
    this.prefix = options.prefix ?? 'cloudsocket:';
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.logger = options.logger ?? silentLogger;
    options.subscriber.on('messageBuffer', (channel: Buffer, payload: Buffer) => {
      const name = channel.toString();
      const text = payload.toString();
      if (name === this.allChannel()) return this.fromAll(text);
      const handler = this.handlers.get(name);
      if (!handler) return;
      const message = decode(text);
      if (message) handler(message);
      else this.logger.warn('backplane_message_unreadable', { channel: channel.toString() });
    });
    // ioredis resubscribes by itself after a reconnect; subscribing again here is idempotent and says when it is done.
    options.subscriber.on('ready', () => {
      const channels = [...this.handlers.keys(), ...(this.self === undefined ? [] : [this.allChannel()])];
      if (channels.length === 0) return;
      options.subscriber.subscribe(...channels).then(
        () => this.logger.info('backplane_resubscribed', { channels: channels.length }),
        (error: unknown) => this.logger.warn('backplane_resubscribe_failed', { error }),
      );
    });
  }

  async publish(instanceId: string, message: BackplaneMessage): Promise<void> {
    await this.publishOn(this.channel(instanceId), encode(message));
  }

  private async publishOn(channel: string, payload: string): Promise<void> {
    if (this.inFlight >= this.maxInFlight) return this.drop('backlog');
    this.inFlight++;
    try {
      await this.options.publisher.publish(channel, payload);
    } catch (error) {
      this.drop(error instanceof Error ? error.message : String(error));
    } finally {
      this.inFlight--;
    }
  }

  async publishToAll(message: BackplaneMessage): Promise<void> {
    await this.publishOn(this.allChannel(), this.toAll(encode(message)));
  }

  /**
   * For a store that publishes a 'room' message to all from a script of its
   * own, in the step that numbers the frame (RedisRoomLog.appendToAll): the
   * channel, and the payload up to the frame, which comes last and is the
   * script's to add. Within the backlog like any publish: past it, `send` is
   * given nothing to publish on and the message counts as dropped, as it
   * does when `send` fails.
   */
  async publishingToAll<T>(room: string, except: string | undefined, send: (target: ScriptedPublish | undefined) => Promise<T>): Promise<T> {
    if (this.inFlight >= this.maxInFlight) {
      this.drop('backlog');
      return send(undefined);
    }
    this.inFlight++;
    try {
      return await send({ channel: this.allChannel(), head: this.toAll(encode({ kind: 'room', room, data: '', ...(except ? { except } : {}) })) });
    } catch (error) {
      this.drop(error instanceof Error ? error.message : String(error));
      throw error;
    } finally {
      this.inFlight--;
    }
  }

  /** A message to all: sender's id, a line break, the message. */
  private toAll(encoded: string): string {
    return `${this.self ?? ''}\n${encoded}`;
  }

  async subscribe(instanceId: string, handler: (message: BackplaneMessage) => void): Promise<void> {
    const channel = this.channel(instanceId);
    this.self = instanceId;
    this.handlers.set(channel, handler);
    await this.options.subscriber.subscribe(channel, this.allChannel());
  }

  private fromAll(text: string): void {
    const cut = text.indexOf('\n');
    if (cut < 0 || text.slice(0, cut) === this.self) return;
    const handler = this.self === undefined ? undefined : this.handlers.get(this.channel(this.self));
    const message = decode(text.slice(cut + 1));
    if (handler && message) handler(message);
  }

  private allChannel(): string {
    return `${this.prefix}all`;
  }

  async close(): Promise<void> {
    this.handlers.clear();
    this.options.subscriber.disconnect();
  }

  private drop(reason: string): void {
    // One line per outage or backlog, not one per message.
    if (this.dropped++ === 0 || this.dropped % 1000 === 0) this.logger.warn('backplane_dropped', { reason, dropped: this.dropped });
  }

  private channel(instanceId: string): string {
    return `${this.prefix}instance:${instanceId}`;
  }
}

/**
 * Lines instead of JSON: the frame is already JSON and would be escaped a
 * second time. Connection ids never hold a comma or a line break (base64url).
 */
function encode(message: BackplaneMessage): string {
  if (message.kind === 'deliver') return `d\n${message.connectionIds.join(',')}\n${message.data}`;
  // Room names and connection ids never hold a line break (shared/protocol.ts isValidName, base64url).
  if (message.kind === 'room') return `r\n${message.room}\n${message.except ?? ''}\n${message.data}`;
  return `c\n${message.connectionId}\n${message.code}\n${message.reason}`;
}

function decode(payload: string): BackplaneMessage | undefined {
  const first = payload.indexOf('\n');
  const second = payload.indexOf('\n', first + 1);
  if (first !== 1 || second < 0) return undefined;
  const ids = payload.slice(first + 1, second);
  if (payload[0] === 'd') return { kind: 'deliver', connectionIds: ids.split(','), data: payload.slice(second + 1) };
  const third = payload.indexOf('\n', second + 1);
  if (third < 0) return undefined;
  if (payload[0] === 'r') {
    const except = payload.slice(second + 1, third);
    return { kind: 'room', room: ids, data: payload.slice(third + 1), ...(except ? { except } : {}) };
  }
  if (payload[0] !== 'c') return undefined;
  return { kind: 'close', connectionId: ids, code: Number(payload.slice(second + 1, third)), reason: payload.slice(third + 1) };
}
