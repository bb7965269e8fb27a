import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BUILT_RESUME_SECRET, ResumeTokens, type ResumeClaims } from '../shared/resume-token.js';

const SECRET = 'test secret, long enough to sign with';
const NOW = 1_800_000_000_000;
const claims: ResumeClaims = { clientId: '李雷_1', room: 'lobby', session: 'first-connection=', expiresAt: NOW + 60_000, logEpoch: '0123456789abcdef' };

/** The token with one character of its signature changed (base64url letters only, so it still decodes to 32 bytes). */
function withSignatureFlipped(token: string): string {
  const last = token.at(-2)!;
  return `${token.slice(0, -2)}${last === 'A' ? 'B' : 'A'}${token.at(-1)}`;
}

describe('resume tokens', () => {
  const tokens = new ResumeTokens(SECRET);

  it('gives back the claims it signed, with and without a log epoch', () => {
    expect(tokens.verify(tokens.sign(claims), NOW)).toEqual({ ok: true, claims });
    const { logEpoch: _, ...withoutEpoch } = claims;
    expect(tokens.verify(tokens.sign(withoutEpoch), NOW)).toEqual({ ok: true, claims: withoutEpoch });
  });

  it('is URL-safe, so it travels in a query as it is', () => {
    expect(tokens.sign(claims)).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
  });

  it('refuses a token once it has expired, and not a moment before', () => {
    const token = tokens.sign(claims);
    expect(tokens.verify(token, claims.expiresAt - 1).ok).toBe(true);
    expect(tokens.verify(token, claims.expiresAt)).toEqual({ ok: false, reason: 'expired' });
  });

  it('refuses a token signed with another secret as invalid, expired or not', () => {
    const foreign = new ResumeTokens('another deployment secret entirely');
    expect(tokens.verify(foreign.sign(claims), NOW)).toEqual({ ok: false, reason: 'invalid' });
    expect(tokens.verify(foreign.sign({ ...claims, expiresAt: NOW - 1 }), NOW)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('refuses claims changed after signing, and a changed signature', () => {
    const token = tokens.sign(claims);
    const [version, , signature] = token.split('.');
    const forgedClaims = Buffer.from(JSON.stringify(['victim', 'lobby', 'first-connection=', NOW + 60_000])).toString('base64url');
    expect(tokens.verify(`${version}.${forgedClaims}.${signature}`, NOW)).toEqual({ ok: false, reason: 'invalid' });
    expect(tokens.verify(withSignatureFlipped(token), NOW)).toEqual({ ok: false, reason: 'invalid' });
  });

  it.each([
    ['empty', ''],
    ['no dots', 'garbage'],
    ['another version', `v2${tokens.sign(claims).slice(2)}`],
    ['a short signature', 'v1.W10.AAAA'],
    ['a signature that is not base64url', 'v1.W10.!!!!'],
    ['a huge token', `v1.${'A'.repeat(5000)}.${'A'.repeat(43)}`],
  ])('refuses %s as invalid, without throwing', (_label, token) => {
    expect(tokens.verify(token, NOW)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('refuses well-signed claims of the wrong shape', () => {
    // Signed with the same secret, as an older version sharing it might have.
    const sign = (fields: unknown) => {
      const body = `v1.${Buffer.from(JSON.stringify(fields)).toString('base64url')}`;
      return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
    };
    expect(tokens.verify(sign(['alice', 'lobby', 's', NOW + 1000]), NOW).ok).toBe(true);
    for (const fields of [{ clientId: 'alice' }, ['alice', 'lobby', 's'], ['alice', 'lobby', 's', String(NOW + 1000)], ['alice', 7, 's', NOW + 1000], ['alice', 'lobby', 's', NOW + 1000, 5]]) {
      expect(tokens.verify(sign(fields), NOW), JSON.stringify(fields)).toEqual({ ok: false, reason: 'invalid' });
    }
  });

  it('has no built-in secret when running from source', () => {
    expect(BUILT_RESUME_SECRET).toBeUndefined();
  });
});
