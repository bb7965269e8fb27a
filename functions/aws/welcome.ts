/**
 * The welcome, invoked asynchronously by `$connect`. The invocation can
 * arrive before API Gateway has opened the connection (posting then answers
 * 410), so it first waits for GetConnection to know the connection. A 410
 * also means gone, and two things tell the two apart: once the connection's
 * entry has been removed (its `$disconnect` ran), or once the handshake has
 * had its time (`$connect` returns right after queueing the welcome, so a
 * connection still unreachable seconds after that has left), it stops at
 * once instead of spending its retries on a client that has gone.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Greeting } from '../../shared/engine.js';
import type { LambdaContext, WebSocketResult, WelcomePayload } from './events.js';
import { guarded, type Runtime } from './runtime.js';

export type WelcomeHandler = (payload: WelcomePayload, context?: LambdaContext) => Promise<WebSocketResult>;

/** Waits before each GetConnection; about 3 s in all, well past a normal handshake. */
const CONFIRM_DELAYS_MS = [0, 50, 100, 200, 400, 800, 1500];

/** How long after the welcome was queued the connection may still be opening: the waits above, counted from then, not from a late start. */
const OPENING_MS = CONFIRM_DELAYS_MS.reduce((total, wait) => total + wait, 0);

export const createWelcomeHandler = (runtime: () => Runtime): WelcomeHandler => async (payload) => {
  const connectionId = typeof payload?.connectionId === 'string' ? payload.connectionId : '';
  return guarded(runtime, 'welcome', connectionId, async (rt) => {
    if (!connectionId || typeof payload.domainName !== 'string' || typeof payload.stage !== 'string') {
      rt.logger.error('welcome_bad_payload', { payload });
      return { statusCode: 400, body: 'connectionId, domainName and stage are required' };
    }
    const stillRegistered = async () => (await rt.registry.get(connectionId)) !== undefined;
    const queuedAt = typeof payload.queuedAt === 'number' && Number.isFinite(payload.queuedAt) ? payload.queuedAt : Date.now();
    if (!(await confirmConnection(() => rt.connectionOpen(payload, connectionId), queuedAt + OPENING_MS, stillRegistered))) {
      // Never opened, or already closed: its $disconnect (or the TTL) forgets it.
      rt.logger.info('welcome_unconfirmed', { connectionId });
      return { statusCode: 410, body: 'connection not open' };
    }
    await rt.engine(payload).greet(connectionId, greetingFrom(payload.greeting));
    return { statusCode: 200 };
  });
};

/** The payload comes from our own $connect, but only its expected shape is let through to the engine. */
function greetingFrom(value: unknown): Greeting {
  if (value === null || typeof value !== 'object') return {};
  const { since, continued, resumeFailed } = value as Record<string, unknown>;
  const greeting: Greeting = {};
  if (typeof since === 'number' && Number.isSafeInteger(since) && since >= 0) greeting.since = since;
  if (continued === true) greeting.continued = true;
  if (resumeFailed !== null && typeof resumeFailed === 'object') {
    const { code, message } = resumeFailed as Record<string, unknown>;
    if (typeof code === 'string' && typeof message === 'string') greeting.resumeFailed = { code, message };
  }
  return greeting;
}

async function confirmConnection(isOpen: () => Promise<boolean>, openingUntil: number, stillRegistered: () => Promise<boolean>): Promise<boolean> {
  for (const wait of CONFIRM_DELAYS_MS) {
    if (wait > 0) {
      if (Date.now() > openingUntil || !(await stillRegistered())) return false;
      await delay(wait);
    }
    if (await isOpen()) return true;
  }
  return false;
}
