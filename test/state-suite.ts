/**
 * The one suite every StateStore passes, through the RoomState apps use
 * (`roomStateOf`), so the checks of keys and values are part of what is
 * proven. Each test gets a fresh, empty store from `create`; `peer` gives
 * another store over the same storage, as another process would have one
 * (the same object for a store that lives in one process).
 *
 * Every store is made with a TTL of STATE_TTL_MS and the suite's clock. A
 * store whose expiry follows that clock (memory, DynamoDB) is also shown to
 * forget a room on time; one whose server keeps time itself (Redis, PEXPIRE)
 * proves its expiry in its own file.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JsonValue } from '../shared/protocol.js';
import { roomStateOf, STATE_LIMITS, type RoomState, type StateStore } from '../shared/room-state.js';

export interface StateStoreUnderTest {
  store: StateStore;
  peer(): Promise<StateStore>;
  cleanup(): Promise<void>;
}

export interface StateStoreOptions {
  ttlMs: number;
  clock: () => number;
}

export const STATE_TTL_MS = 60_000;

/** Rejects with a CloudsocketError of `code`; the message is checked to say something. */
async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code, message: expect.stringMatching(/\w{3}/) });
}

export function stateSuite(
  name: string,
  create: (options: StateStoreOptions) => Promise<StateStoreUnderTest>,
  expiry: 'follows the clock' | 'kept by the server',
): void {
  describe(`state suite: ${name}`, () => {
    let subject: StateStoreUnderTest;
    let now = Date.now();
    const clock = () => now;
    const advance = (ms: number) => {
      now += ms;
    };
    /** The room most tests work in, and its state. */
    let home: string;
    let state: RoomState;
    let serial = 0;
    const room = () => `room-${++serial}`;

    beforeEach(async () => {
      now = Date.now();
      subject = await create({ ttlMs: STATE_TTL_MS, clock });
      home = room();
      state = roomStateOf(subject.store, home);
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    describe('get, set, delete and list', () => {
      it('knows nothing of a room nobody wrote to', async () => {
        expect(await state.get('anything')).toBeUndefined();
        expect(await state.list()).toEqual({});
        expect(await state.delete('anything')).toBe(false);
      });

      const values: Array<[string, JsonValue]> = [
        ['null', null],
        ['true', true],
        ['false', false],
        ['zero', 0],
        ['negative', -42],
        ['fraction', 1.5],
        ['big', Number.MAX_SAFE_INTEGER],
        ['beyond', 2 ** 60],
        ['text', 'hello'],
        ['digits', '5'],
        ['empty-text', ''],
        ['unicode', 'héllo 世界 \u{1F600}'],
        ['empty-list', []],
        ['empty-object', {}],
        ['nested', JSON.parse('{"x":1,"y":[2,{"z":null}],"odd key":"v","__proto__":"own"}') as JsonValue],
      ];

      it.each(values)('keeps a value (%s) exactly as it was set', async (key, value) => {
        await state.set(key, value);
        expect(await state.get(key)).toStrictEqual(value);
        expect(JSON.stringify(await state.get(key))).toBe(JSON.stringify(value));
      });

      it('lists every key with its value, keys in ascending order, and only its own room', async () => {
        for (const [key, value] of values) await state.set(key, value);
        await roomStateOf(subject.store, room()).set('elsewhere', 1);
        const listed = await state.list();
        expect(listed).toStrictEqual(Object.fromEntries(values));
        expect(Object.keys(listed)).toEqual(values.map(([key]) => key).sort());
      });

      it('replaces a value, and hands out copies that changing does not change the store', async () => {
        await state.set('cursor', { x: 1, y: 2 });
        await state.set('cursor', { x: 3, y: 4 });
        const read = (await state.get('cursor')) as { x: number };
        read.x = 99;
        expect(await state.get('cursor')).toStrictEqual({ x: 3, y: 4 });
        expect(await state.list()).toStrictEqual({ cursor: { x: 3, y: 4 } });
      });

      it('deletes a key and says whether there was one', async () => {
        await state.set('a', 1);
        await state.set('b', 'two');
        expect(await state.delete('a')).toBe(true);
        expect(await state.delete('a')).toBe(false);
        expect(await state.get('a')).toBeUndefined();
        expect(await state.list()).toStrictEqual({ b: 'two' });
        expect(await state.delete('b')).toBe(true);
        expect(await state.list()).toStrictEqual({});
      });

      it('keys that are property names of every object stay plain keys', async () => {
        await state.set('__proto__', { polluted: true });
        await state.set('constructor', 'c');
        await state.set('toString', 1);
        expect(await state.get('__proto__')).toStrictEqual({ polluted: true });
        const listed = await state.list();
        expect(Object.keys(listed)).toEqual(['__proto__', 'constructor', 'toString']);
        expect(Object.getPrototypeOf(listed)).toBe(Object.prototype);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      });

      it('is seen by another store over the same storage', async () => {
        const name = room();
        await roomStateOf(subject.store, name).set('shared', { by: 'first' });
        const other = roomStateOf(await subject.peer(), name);
        expect(await other.get('shared')).toStrictEqual({ by: 'first' });
        expect(await other.increment('shared-count', 2)).toBe(2);
        expect(await roomStateOf(subject.store, name).get('shared-count')).toBe(2);
      });
    });

    describe('increment', () => {
      it('starts a missing key at 0, adds 1 by default, any whole number when told, and keeps the result', async () => {
        expect(await state.increment('count')).toBe(1);
        expect(await state.increment('count', 41)).toBe(42);
        expect(await state.increment('count', -50)).toBe(-8);
        expect(await state.increment('count', 0)).toBe(-8);
        expect(await state.get('count')).toBe(-8);
        expect(await state.increment('fresh', -3)).toBe(-3);
      });

      it('adds to a whole number that was set', async () => {
        await state.set('count', 10);
        expect(await state.increment('count', 5)).toBe(15);
        await state.set('count', 'not any more');
        await expectCode(state.increment('count'), 'state_not_integer');
        expect(await state.get('count')).toBe('not any more');
      });

      it.each([['text', 'five'], ['digits as text', '5'], ['fraction', 1.5], ['null', null], ['boolean', true], ['object', { n: 1 }], ['list', [1]]] as Array<[string, JsonValue]>)(
        'refuses to add to a value that is not a whole number (%s), and leaves it',
        async (_, value) => {
          await state.set('value', value);
          await expectCode(state.increment('value'), 'state_not_integer');
          expect(await state.get('value')).toStrictEqual(value);
        },
      );

      it('refuses to leave the safe integers, either way, and leaves the value', async () => {
        await state.set('top', Number.MAX_SAFE_INTEGER - 1);
        expect(await state.increment('top')).toBe(Number.MAX_SAFE_INTEGER);
        await expectCode(state.increment('top'), 'state_out_of_range');
        expect(await state.get('top')).toBe(Number.MAX_SAFE_INTEGER);
        await state.set('bottom', -Number.MAX_SAFE_INTEGER);
        await expectCode(state.increment('bottom', -1), 'state_out_of_range');
        await state.set('beyond', 2 ** 60);
        await expectCode(state.increment('beyond', -1), 'state_out_of_range');
        expect(await state.get('beyond')).toBe(2 ** 60);
      });

      it.each([1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1' as unknown as number])('refuses %s as the amount', async (by) => {
        await expectCode(state.increment('count', by), 'invalid_state_value');
        expect(await state.get('count')).toBeUndefined();
      });

      it('loses no update among 200 callers incrementing at once, each seeing its own result', async () => {
        const name = room();
        const stores = [subject.store, await subject.peer(), await subject.peer()];
        const results = await Promise.all(Array.from({ length: 200 }, (_, i) => roomStateOf(stores[i % stores.length]!, name).increment('hits')));
        expect(await roomStateOf(subject.store, name).get('hits')).toBe(200);
        expect([...results].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      });

      it('sums different amounts from many callers, some adding, some taking away', async () => {
        const name = room();
        const stores = [subject.store, await subject.peer()];
        const amounts = Array.from({ length: 120 }, (_, i) => (i % 3 === 0 ? -(i % 7) : i % 11));
        await roomStateOf(subject.store, name).set('total', 1000);
        await Promise.all(amounts.map((by, i) => roomStateOf(stores[i % 2]!, name).increment('total', by)));
        expect(await roomStateOf(subject.store, name).get('total')).toBe(1000 + amounts.reduce((a, b) => a + b, 0));
      });
    });

    describe('keys', () => {
      const longest = 'k'.repeat(STATE_LIMITS.maxKeyChars);
      it.each(['a', longest, 'cursor:alice', 'v1.2_x-y', 'ключ', '名前', 'é'.repeat(STATE_LIMITS.maxKeyChars)])('takes %s', async (key) => {
        await state.set(key, key);
        expect(await state.get(key)).toBe(key);
        expect(await state.list()).toStrictEqual({ [key]: key });
        expect(await state.delete(key)).toBe(true);
        expect(await state.increment(key)).toBe(1);
      });

      it.each(['', `${longest}k`, 'a b', 'a/b', 'a#b', 'tab\t', 'emoji\u{1F600}', 'zero\u200Bwidth', 42 as unknown as string])('refuses %j for every operation', async (key) => {
        for (const operation of [() => state.get(key), () => state.set(key, 1), () => state.delete(key), () => state.increment(key)]) {
          await expectCode(operation(), 'invalid_state_key');
        }
        expect(await state.list()).toEqual({});
      });
    });

    describe('values', () => {
      const fits = 'x'.repeat(STATE_LIMITS.maxValueBytes - 2);
      it('takes a value whose JSON is exactly the limit, and refuses one byte more, counted in UTF-8', async () => {
        await state.set('fits', fits);
        expect(await state.get('fits')).toBe(fits);
        await expectCode(state.set('over', `${fits}x`), 'state_value_too_large');
        // "é" is two bytes of UTF-8, one UTF-16 unit.
        await expectCode(state.set('over', `${'é'.repeat(STATE_LIMITS.maxValueBytes / 2 - 1)}x`), 'state_value_too_large');
        await expectCode(state.set('over', { list: Array.from({ length: 400 }, (_, i) => i) }), 'state_value_too_large');
        expect(await state.get('over')).toBeUndefined();
      });

      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      const notJson: Array<[string, unknown]> = [
        ['undefined', undefined],
        ['NaN', Number.NaN],
        ['Infinity', Number.POSITIVE_INFINITY],
        ['a function', () => 1],
        ['a BigInt', 10n],
        ['a symbol', Symbol('s')],
        ['undefined inside an object', { a: undefined }],
        ['NaN inside a list', [1, Number.NaN]],
        ['a hole in a list', [1, , 3]],
        ['a Date', new Date(0)],
        ['a Map', new Map([['a', 1]])],
        ['a cycle', cyclic],
      ];
      it.each(notJson)('refuses %s and stores nothing', async (_, value) => {
        await expectCode(state.set('value', value as JsonValue), 'invalid_state_value');
        expect(await state.get('value')).toBeUndefined();
      });
    });

    describe(`at most ${STATE_LIMITS.maxKeysPerRoom} keys per room`, () => {
      const fill = async (target: RoomState, count: number) => {
        for (let start = 0; start < count; start += 32) {
          await Promise.all(Array.from({ length: Math.min(32, count - start) }, (_, i) => target.set(`key-${start + i}`, start + i)));
        }
      };

      it('refuses a new key in a full room, by set or increment, and takes changes to the keys it has', async () => {
        await fill(state, STATE_LIMITS.maxKeysPerRoom);
        await expectCode(state.set('one-more', 1), 'state_full');
        await expectCode(state.increment('one-more'), 'state_full');
        expect(await state.get('one-more')).toBeUndefined();
        await state.set('key-0', 'changed');
        expect(await state.increment('key-1', 10)).toBe(11);
        expect(Object.keys(await state.list())).toHaveLength(STATE_LIMITS.maxKeysPerRoom);
        // Another room is not affected.
        await roomStateOf(subject.store, room()).set('one-more', 1);

        expect(await state.delete('key-2')).toBe(true);
        await state.set('one-more', 1);
        await expectCode(state.increment('two-more'), 'state_full');
      });

      it('gives the last free places to exactly as many of many simultaneous newcomers', async () => {
        const free = 5;
        await fill(state, STATE_LIMITS.maxKeysPerRoom - free);
        const peers = [subject.store, await subject.peer()];
        expect(Object.keys(await state.list())).toHaveLength(STATE_LIMITS.maxKeysPerRoom - free);
        const attempts = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) => {
            const target = roomStateOf(peers[i % 2]!, home);
            return i % 2 === 0 ? target.set(`new-${i}`, i) : target.increment(`new-${i}`);
          }),
        );
        const refused = attempts.filter((attempt) => attempt.status === 'rejected');
        expect(attempts.length - refused.length).toBe(free);
        for (const attempt of refused) expect((attempt as PromiseRejectedResult).reason).toMatchObject({ code: 'state_full' });
        expect(Object.keys(await state.list())).toHaveLength(STATE_LIMITS.maxKeysPerRoom);
      });
    });

    if (expiry === 'follows the clock') {
      describe(`forgetting a room ${STATE_TTL_MS / 1000} s after its last write`, () => {
        it('forgets every key at once when the time is up, and a write after that starts the room afresh', async () => {
          await state.set('note', 'hello');
          await state.increment('count', 5);
          advance(STATE_TTL_MS - 2_000);
          expect(await state.list()).toEqual({ count: 5, note: 'hello' });
          advance(3_000);
          expect(await state.get('note')).toBeUndefined();
          expect(await state.list()).toEqual({});
          expect(await state.delete('note')).toBe(false);
          expect(await state.increment('count')).toBe(1);
          expect(await state.list()).toEqual({ count: 1 });
        });

        it('counts from the latest write of any kind: set, increment or delete', async () => {
          await state.set('kept', 1);
          await state.set('dropped', 1);
          for (const write of [() => state.increment('count'), () => state.set('other', 2), () => state.delete('dropped')]) {
            advance(STATE_TTL_MS - 2_000);
            await write();
          }
          advance(STATE_TTL_MS - 2_000);
          expect(await state.list()).toEqual({ count: 1, kept: 1, other: 2 });
          advance(3_000);
          expect(await state.list()).toEqual({});
        });

        it('gives a full room that expired all its places again, the old keys gone', async () => {
          for (let start = 0; start < STATE_LIMITS.maxKeysPerRoom; start += 32) {
            await Promise.all(Array.from({ length: 32 }, (_, i) => state.set(`key-${start + i}`, start + i)));
          }
          await expectCode(state.set('one-more', 1), 'state_full');
          advance(STATE_TTL_MS + 1_000);
          const peers = [subject.store, await subject.peer()];
          await Promise.all(Array.from({ length: 10 }, (_, i) => roomStateOf(peers[i % 2]!, home).set(`new-${i}`, i)));
          expect(Object.keys(await state.list()).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `new-${i}`).sort());
        });
      });
    }

    it('refuses a room name outside the alphabet, as the join route does', () => {
      expect(() => roomStateOf(subject.store, 'no spaces')).toThrow(expect.objectContaining({ code: 'invalid_room' }));
      expect(() => roomStateOf(subject.store, '')).toThrow(expect.objectContaining({ code: 'invalid_room' }));
    });
  });
}
