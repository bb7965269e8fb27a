/**
 * The `disconnectReason` API Gateway puts in a `$disconnect` event, by cause,
 * as far as real events show it (docs/emulator.md cites each). Where no real
 * event is known, the emulator passes what it has: the gateway's own close
 * reason, or the client's.
 */

/** A client's close frame without a status code (read as 1005). */
export const CLIENT_CLOSED_WITHOUT_STATUS = 'Client-side close frame status not set';
/** The idle timeout and, by the same close code, the 2-hour limit. */
export const GOING_AWAY = 'Going away';
/** DeleteConnection, whose close carries 1000. */
export const DELETED_BY_BACKEND = 'Connection Closed Normally';

/** The reason for a close the client started: its own reason, or API Gateway's text when its frame had no status. */
export function clientDisconnectReason(code: number, reason: string): string {
  return code === 1005 ? CLIENT_CLOSED_WITHOUT_STATUS : reason;
}
