/**
 * The pure parts of the core, where the arithmetic and the parsing rules are
 * easiest to pin down exactly.
 */
import { describe, expect, it } from 'vitest';
import { checkContent, MessageTooLargeError } from '../apps/chat/index.js';
import { ConfigError, InvalidMessageError } from '../shared/errors.js';
import { nameKey, normalizeName } from '../shared/names.js';
import { isValidName, parseFrame } from '../shared/protocol.js';
import { consumeToken, freshRateState, MAX_JUDGING_DELAY_MS, type RateLimit, type RateState } from '../shared/rate-limit.js';
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

  it('counts a frame from when it arrived: an even pace judged late is no burst, a frame overtaken by later ones is not refused, a flood still is', () => {
    // 60 frames at 6.7/s, all judged 10 s after the first arrived.
    let state = freshRateState(0);
    const paced: boolean[] = [];
    for (let i = 0; i < 60; i++) {
      const decision = consumeToken(state, 10_000, limit, i * 150);
      paced.push(decision.admitted);
      state = decision.state;
    }
    expect(paced.every(Boolean)).toBe(true);
    // One that arrived first is judged after those that arrived up to 4 s later.
    expect(consumeToken(state, 10_000, limit, 5_000).admitted).toBe(true);
    // Forty at one moment, judged half a second later: the burst and the five tokens that half second gave, then refusals.
    let flood = freshRateState(20_000);
    const admitted: boolean[] = [];
    for (let i = 0; i < 40; i++) {
      const decision = consumeToken(flood, 20_500, limit, 20_000);
      admitted.push(decision.admitted);
      flood = decision.state;
    }
    expect(admitted.slice(0, 25).every(Boolean)).toBe(true);
    expect(admitted.slice(25).some(Boolean)).toBe(false);
    expect(flood.strikes).toBe(15);
  });

  it('limits a flood however slowly it is handled: a frame is judged at most MAX_JUDGING_DELAY_MS after it arrived', () => {
    // Sixty frames at one moment, handled one a second, as an overloaded server might.
    let state = freshRateState(0);
    const admitted: boolean[] = [];
    for (let i = 0; i < 60; i++) {
      const decision = consumeToken(state, i * 1000, limit, 0);
      admitted.push(decision.admitted);
      state = decision.state;
    }
    // The burst, and the tokens of the delay a frame is judged within; the rest refused.
    const allowed = limit.burst + (MAX_JUDGING_DELAY_MS / 1000) * limit.perSecond;
    expect(admitted.filter(Boolean)).toHaveLength(allowed);
    expect(admitted.slice(allowed).some(Boolean)).toBe(false);
    expect(state.strikes).toBe(60 - allowed);
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

  it('refuses every bidirectional control and every invisible letter in a name', () => {
    const bidi = [0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0x200e, 0x200f, 0x061c];
    // The Hangul fillers are letters (Lo) that draw nothing.
    const invisible = [0x115f, 0x1160, 0x3164, 0xffa0, 0x200b, 0x2060, 0xfeff];
    for (const code of [...bidi, ...invisible]) {
      const char = String.fromCodePoint(code);
      for (const name of [`eve${char}`, `${char}eve`, `e${char}ve`]) expect(isValidName(name), code.toString(16)).toBe(false);
      // Nor does NFKC, which admission applies first, turn one into a letter.
      expect(isValidName(`eve${char}`.normalize('NFKC')), code.toString(16)).toBe(false);
    }
  });
});

describe('names', () => {
  it('gives look-alike names one key and different names different keys', () => {
    const alice = nameKey('alice');
    // Cyrillic а, Cyrillic і, Greek ο, full-width letters, a ligature and a Roman numeral ⅼ.
    for (const name of ['\u0430lice', 'al\u0456ce', 'ａｌｉｃｅ', 'a\u217Cice', 'aIice', 'a1ice']) expect(nameKey(name), name).toBe(alice);
    expect(nameKey('b\u03BFb')).toBe(nameKey('bob'));
    expect(nameKey('ﬁona')).toBe(nameKey('fiona'));
    expect(nameKey('mike')).toBe(nameKey('rnike'));
    expect(nameKey('ОLEG')).toBe(nameKey('0LEG'));
    // Cyrillic ё decomposes to е and a diaeresis: the same as Latin ë, not as plain e.
    expect(nameKey('zo\u0451')).toBe(nameKey('zoë'));
    expect(nameKey('zoë')).not.toBe(nameKey('zoe'));
    for (const [a, b] of [['alice', 'alicia'], ['alice', 'Alice'], ['bob', 'b0b'], ['李雷', '李電'], ['user_1', 'user-1']] as const) expect(nameKey(a), `${a} ${b}`).not.toBe(nameKey(b));
  });

  it('is a key of a key: folding twice changes nothing', () => {
    for (const name of ['\u0430lice', 'ΜΙΚΕ', 'mmm', 'ｏｌｇａ', 'zo\u0451', '李雷']) expect(nameKey(nameKey(name)), name).toBe(nameKey(name));
  });

  it('keeps names in NFKC', () => {
    expect(normalizeName('ａｌｉｃｅ')).toBe('alice');
    expect(normalizeName('ﬁ')).toBe('fi');
    expect(normalizeName('李雷')).toBe('李雷');
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
      roomLog: { maxEntries: 1000, maxAgeMs: 300_000 },
      resumeTokenTtlMs: 10_800_000,
      resumeSecret: undefined,
    });
  });

  it('reads the room log limits, the resume token lifetime and the resume secret', () => {
    const settings = readCoreSettings({ ROOM_LOG_SIZE: '20', ROOM_LOG_AGE: '1.5', RESUME_TOKEN_TTL: '60', RESUME_SECRET: 'a secret of 24 characters' });
    expect(settings.roomLog).toEqual({ maxEntries: 20, maxAgeMs: 1500 });
    expect(settings.resumeTokenTtlMs).toBe(60_000);
    expect(settings.resumeSecret).toBe('a secret of 24 characters');
  });

  it('keeps room state a day after its last write unless ROOM_STATE_TTL says otherwise; 0 keeps it', () => {
    expect(readCoreSettings({}).roomStateTtlMs).toBe(86_400_000);
    expect(readCoreSettings({ ROOM_STATE_TTL: '90' }).roomStateTtlMs).toBe(90_000);
    expect(readCoreSettings({ ROOM_STATE_TTL: '0' }).roomStateTtlMs).toBe(0);
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
    ['ROOM_LOG_SIZE', '0', /ROOM_LOG_SIZE="0" must be at least 1/],
    ['ROOM_LOG_SIZE', '10.5', /ROOM_LOG_SIZE="10.5" must be a whole number/],
    ['ROOM_LOG_AGE', '0', /ROOM_LOG_AGE must be more than 0 seconds/],
    ['RESUME_TOKEN_TTL', 'forever', /RESUME_TOKEN_TTL="forever" must be a number/],
    ['ROOM_STATE_TTL', '-1', /ROOM_STATE_TTL="-1" must be at least 0/],
    ['RESUME_SECRET', 'short', /RESUME_SECRET must be at least 16 characters \(it has 5\)/],
  ])('refuses %s=%s with a message naming it', (name, value, message) => {
    expect(() => readCoreSettings({ [name]: value })).toThrow(ConfigError);
    expect(() => readCoreSettings({ [name]: value })).toThrow(message);
  });

  it('never repeats a resume secret it refuses in its message', () => {
    expect(() => readCoreSettings({ RESUME_SECRET: 'hunter2' })).toThrow(expect.objectContaining({ message: expect.not.stringContaining('hunter2') }));
  });
});
