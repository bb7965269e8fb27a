/**
 * A per-connection token bucket, kept as GCRA state (one "theoretical arrival
 * time") so that it fits in a single number a registry can store and update in
 * the same write as the activity touch.
 */
export interface RateLimit {
  /** Sustained frames per second; 0 turns the limit off. */
  perSecond: number;
  /** Frames that may arrive at once after a quiet spell. */
  burst: number;
  /** Consecutive refused frames after which the connection is closed with 1008. */
  closeAfter: number;
}

export interface RateState {
  /** Epoch ms at which the bucket would be full again. */
  tat: number;
  /** Frames refused in a row; reset by the next admitted frame. */
  strikes: number;
}

export const DEFAULT_RATE_LIMIT: RateLimit = { perSecond: 10, burst: 20, closeAfter: 50 };

export function freshRateState(now: number): RateState {
  return { tat: now, strikes: 0 };
}

export interface RateDecision {
  admitted: boolean;
  state: RateState;
}

/**
 * How late after its arrival a frame may still be judged as of when it is
 * handled. Without a bound, a server too slow to keep up forgave every
 * flood: each frame, judged later, found the bucket refilled by the wait.
 */
export const MAX_JUDGING_DELAY_MS = 3000;

/**
 * When a frame that reached the platform at `receivedAt` is judged, handled
 * at `now`: then, but never later than MAX_JUDGING_DELAY_MS after it came.
 */
export function judgingTime(now: number, receivedAt: number): number {
  return Math.min(now, receivedAt + MAX_JUDGING_DELAY_MS);
}

/**
 * GCRA. `receivedAt` (default `now`) is when the frame reached the platform,
 * `now` when it is handled. A frame counts from its arrival, so frames sent at
 * an even pace but handled together (after a queue or a cold start) are not a
 * burst; and it is judged as of when it is handled (judgingTime), so one
 * handled after frames that arrived later (concurrent invocations finish in
 * any order) is not taken for one that came too fast. A flood handled
 * slowly is still a flood: past MAX_JUDGING_DELAY_MS its frames are judged
 * as if handled then, so at most the burst and that delay's tokens pass.
 */
export function consumeToken(state: RateState, now: number, limit: RateLimit, receivedAt = now): RateDecision {
  if (limit.perSecond <= 0) return { admitted: true, state: { tat: receivedAt, strikes: 0 } };
  const interval = 1000 / limit.perSecond;
  const tolerance = interval * (limit.burst - 1);
  const tat = Math.max(state.tat, receivedAt);
  if (tat - judgingTime(now, receivedAt) > tolerance) {
    return { admitted: false, state: { tat: state.tat, strikes: state.strikes + 1 } };
  }
  return { admitted: true, state: { tat: tat + interval, strikes: 0 } };
}
