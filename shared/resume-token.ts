/**
 * Resume tokens (protocol.md, "Sequence numbers and resuming"): what a
 * client shows to take its clientId and its session back on a new
 * connection. A token is its claims in the clear and an HMAC-SHA256 of them:
 * nobody without the secret can make one, and the server keeps nothing to
 * check one.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface ResumeClaims {
  clientId: string;
  room: string;
  /** The session the connection belongs to (ConnectionRecord.session). */
  session: string;
  /** Epoch ms after which the token is refused. */
  expiresAt: number;
  /** The room log's epoch when the token was made (RoomLog.epoch), where it has one. */
  logEpoch?: string;
}

export type TokenCheck = { ok: true; claims: ResumeClaims } | { ok: false; reason: 'invalid' | 'expired' };

const VERSION = 'v1';
const SIGNATURE_BYTES = 32;
/** Far above any token made here (names are at most 32 characters); longer input is refused unread. */
const MAX_TOKEN_CHARS = 1024;

/**
 * The secret `cloudsocket build` writes into a bundle (scripts/build.ts), so
 * every instance of one build shares it; undefined when running from source.
 */
declare const __CLOUDSOCKET_RESUME_SECRET__: string | undefined;
export const BUILT_RESUME_SECRET: string | undefined =
  typeof __CLOUDSOCKET_RESUME_SECRET__ === 'string' ? __CLOUDSOCKET_RESUME_SECRET__ : undefined;

export class ResumeTokens {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = Buffer.from(secret, 'utf8');
  }

  sign(claims: ResumeClaims): string {
    const fields = [claims.clientId, claims.room, claims.session, claims.expiresAt, ...(claims.logEpoch === undefined ? [] : [claims.logEpoch])];
    const body = `${VERSION}.${Buffer.from(JSON.stringify(fields)).toString('base64url')}`;
    return `${body}.${this.signature(body).toString('base64url')}`;
  }

  /** The signature first: an expired token says so only when it is one of ours. */
  verify(token: string, now: number): TokenCheck {
    if (token.length > MAX_TOKEN_CHARS) return INVALID;
    const cut = token.lastIndexOf('.');
    const body = token.slice(0, cut);
    if (cut < 0 || !body.startsWith(`${VERSION}.`)) return INVALID;
    const given = Buffer.from(token.slice(cut + 1), 'base64url');
    if (given.length !== SIGNATURE_BYTES || !timingSafeEqual(given, this.signature(body))) return INVALID;
    const claims = claimsFrom(body.slice(VERSION.length + 1));
    if (!claims) return INVALID;
    if (now >= claims.expiresAt) return EXPIRED;
    return { ok: true, claims };
  }

  private signature(body: string): Buffer {
    return createHmac('sha256', this.key).update(body).digest();
  }
}

const INVALID: TokenCheck = { ok: false, reason: 'invalid' };
const EXPIRED: TokenCheck = { ok: false, reason: 'expired' };

/** Signed claims are ours, so only their shape is checked: a secret shared with an older version may have signed another. */
function claimsFrom(encoded: string): ResumeClaims | undefined {
  let fields: unknown;
  try {
    fields = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(fields) || (fields.length !== 4 && fields.length !== 5)) return undefined;
  const [clientId, room, session, expiresAt, logEpoch] = fields as unknown[];
  if (typeof clientId !== 'string' || typeof room !== 'string' || typeof session !== 'string' || typeof expiresAt !== 'number') return undefined;
  if (logEpoch !== undefined && typeof logEpoch !== 'string') return undefined;
  return logEpoch === undefined ? { clientId, room, session, expiresAt } : { clientId, room, session, expiresAt, logEpoch };
}
