/**
 * API Gateway's account limits and the failures a deployed app meets, as
 * options of the emulator (all off by default, each a flag of `cloudsocket
 * dev`): the @connections callback throttle, the new-connections-per-second
 * limit, `$disconnect` events that never come (API Gateway delivers them on a
 * best-effort basis), and a delay for each Lambda cold start. The integration
 * timeout (29 s, API Gateway's) is always on; see gateway.ts.
 */
import type { Logger } from '../../shared/log.js';

export interface ChaosOptions {
  /** @connections requests per second, account-wide, past which LimitExceededException (429) answers. */
  callbackRatePerSecond?: number;
  /** New connections per second past which the handshake is refused with 429 (API Gateway's default quota is 500). */
  connectRatePerSecond?: number;
  /** The probability, 0 to 1, that a connection's `$disconnect` is never invoked. */
  disconnectDropRate?: number;
  /** Added to each new execution environment's init, as a cold start's download and start-up. */
  coldStartMs?: number;
  /** Chosen in [0, 1) for each `$disconnect`; Math.random unless a test fixes it. */
  random?: () => number;
}

/** Requests of the last second, counted in ten 100 ms slots so the window slides without a timer. */
class PerSecond {
  private readonly slots = new Array<number>(10).fill(0);
  private slotStart = 0;
  private slot = 0;

  constructor(private readonly limit: number) {}

  /** Counts one request; false when it is past the limit (and then it is not counted). */
  take(now = Date.now()): boolean {
    const current = Math.floor(now / 100);
    const elapsed = Math.min(10, current - this.slotStart);
    for (let i = 1; i <= elapsed; i++) this.slots[(this.slot + i) % 10] = 0;
    if (elapsed > 0) {
      this.slot = (this.slot + elapsed) % 10;
      this.slotStart = current;
    }
    const total = this.slots.reduce((sum, n) => sum + n, 0);
    if (total >= this.limit) return false;
    this.slots[this.slot]! += 1;
    return true;
  }
}

export class Chaos {
  private readonly callbacks?: PerSecond;
  private readonly connects?: PerSecond;
  readonly coldStartMs: number;

  constructor(
    private readonly options: ChaosOptions,
    private readonly logger: Logger,
  ) {
    if (options.callbackRatePerSecond !== undefined) this.callbacks = new PerSecond(options.callbackRatePerSecond);
    if (options.connectRatePerSecond !== undefined) this.connects = new PerSecond(options.connectRatePerSecond);
    this.coldStartMs = options.coldStartMs ?? 0;
  }

  allowsCallback(): boolean {
    return this.callbacks?.take() ?? true;
  }

  allowsConnect(): boolean {
    return this.connects?.take() ?? true;
  }

  /** True when this `$disconnect` is to be lost. */
  dropsDisconnect(connectionId: string): boolean {
    const rate = this.options.disconnectDropRate ?? 0;
    if (rate <= 0 || (this.options.random ?? Math.random)() >= rate) return false;
    this.logger.info('disconnect_dropped', { connectionId });
    return true;
  }
}
