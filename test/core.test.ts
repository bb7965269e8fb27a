/**
 * The pure parts of the core, where the arithmetic and the parsing rules are
 * easiest to pin down exactly.
 */
import { describe, expect, it } from 'vitest';
import { checkContent, MessageTooLargeError } from '../apps/chat/index.js';
import { ConfigError, InvalidMessageError } from '../shared/errors.js';
import { isValidName, parseFrame } from '../shared/protocol.js';
import { consumeToken, freshRateState, type RateLimit, type RateState } from '../shared/rate-limit.js';
import { readCoreSettings } from '../shared/settings.js';

describe('token bucket', () => {
  const limit: RateLimit = { perSecond: 10, burst: 20, closeAfter: 50 };

  function spend(state: RateState, now: number, times: number, using = limit) {
    const admitted: boolean[] = [];
    for (let i = 0; i < times; i++) {
      const decision = consumeToken(state, now, using);
      admitted.push(decision.admitted);
      state = decision.state;
    }
    return { admitted, state };
  }

  it('admits exactly the burst at once, then refuses and counts strikes', () => {
    const { admitted, state } = spend(freshRateState(1_000), 1_000, 25);
    expect(admitted.filter(Boolean)).toHaveLength(20);
    expect(admitted.slice(20)).toEqual([false, false, false, false, false]);
    expect(state.strikes).toBe(5);
  });

  it('refills one token per 1/perSecond and clears strikes on the next admitted frame', () => {
    const drained = spend(freshRateState(0), 0, 21).state;
    expect(consumeToken(drained, 50, limit).admitted).toBe(false);
    const refilled = consumeToken(drained, 100, limit);
    expect(refilled.admitted).toBe(true);
    expect(refilled.state.strikes).toBe(0);
  });

  it('does not bank more than the burst after a long silence', () => {
    const { admitted } = spend(freshRateState(0), 3_600_000, 30);
    expect(admitted.filter(Boolean)).toHaveLength(20);
  });

  it('admits everything when perSecond is 0', () => {
    const { admitted } = spend(freshRateState(0), 0, 500, { ...limit, perSecond: 0 });
    expect(admitted.every(Boolean)).toBe(true);
  });
});

describe('frame parsing', () => {
  it('takes JSON objects as commands by type, or by action when type is absent', () => {
    expect(parseFrame('{"type":"chat","content":"x"}')).toMatchObject({ kind: 'command', name: 'chat' });
    expect(parseFrame('  {"action":"sendmessage","data":"x"}')).toMatchObject({ kind: 'command', name: 'sendmessage' });
  });

  it('takes anything that is not a JSON object as text', () => {
    for (const text of ['hello', '"a json string"', '[1,2]', '42', 'null', ' ']) expect(parseFrame(text)).toEqual({ kind: 'text', text });
  });

  it.each(['{"type":"chat"', '{}', '{"type":""}', '{"type":null}', '{"__proto__":{"type":"chat"}}', ''])('refuses %j as invalid_message', (text) => {
    expect(() => parseFrame(text)).toThrow(InvalidMessageError);
  });

  it('counts content in characters, not UTF-16 units', () => {
    expect(checkContent('😀'.repeat(4000))).toHaveLength(8000);
    expect(() => checkContent('😀'.repeat(4001))).toThrow(MessageTooLargeError);
    expect(() => checkContent('')).toThrow(InvalidMessageError);
  });

  it('accepts names of Unicode letters, digits, _ and -, 1 to 32 characters', () => {
    for (const name of ['a', 'Zoë', '李雷', 'user_1-b', 'x'.repeat(32), '١٢٣']) expect(isValidName(name), name).toBe(true);
    for (const name of ['', 'x'.repeat(33), 'a b', 'a/b', 'a.b', '<script>', 'tab\t']) expect(isValidName(name), name).toBe(false);
  });
});

describe('settings', () => {
  it('has the documented defaults', () => {
    const settings = readCoreSettings({});
    expect(settings).toMatchObject({
      heartbeatTimeoutMs: 300_000,
      cleanupIntervalMs: 30_000,
      rateLimit: { perSecond: 10, burst: 20, closeAfter: 50 },
      allowedOrigins: null,
      fanoutConcurrency: 50,
    });
  });

  it('reads seconds with fractions and origins without case or trailing slash', () => {
    const settings = readCoreSettings({ HEARTBEAT_TIMEOUT: '0.5', ALLOWED_ORIGINS: 'https://A.example/, http://b.example' });
    expect(settings.heartbeatTimeoutMs).toBe(500);
    expect([...settings.allowedOrigins!]).toEqual(['https://a.example', 'http://b.example']);
    expect(readCoreSettings({ ALLOWED_ORIGINS: '*' }).allowedOrigins).toBeNull();
  });

  it.each([
    ['HEARTBEAT_TIMEOUT', 'soon', /HEARTBEAT_TIMEOUT="soon" must be a number/],
    ['HEARTBEAT_TIMEOUT', '0', /HEARTBEAT_TIMEOUT must be more than 0 seconds/],
    ['RATE_BURST', '2.5', /RATE_BURST="2.5" must be a whole number/],
    ['RATE_LIMIT', '-1', /RATE_LIMIT="-1" must be at least 0/],
    ['FANOUT_CONCURRENCY', '5000', /FANOUT_CONCURRENCY="5000" must be at most 1000/],
  ])('refuses %s=%s with a message naming it', (name, value, message) => {
    expect(() => readCoreSettings({ [name]: value })).toThrow(ConfigError);
    expect(() => readCoreSettings({ [name]: value })).toThrow(message);
  });
});
