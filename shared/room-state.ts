/**
 * Room state: a small key/value map per room that every process serving the
 * room sees, where module variables are per process (one CloudBase instance,
 * one of the four Lambda functions). Apps reach it as `ctx.state` and
 * `ctx.roomState(room)`; a StateStore keeps it (memory, Redis, DynamoDB).
 *
 * Keys and values are checked here, once, before any store sees them; a
 * store receives a valid key and a value's JSON text and keeps the text as
 * it is. What a store must do itself is what needs its atomicity: the key
 * limit per room and increments.
 */
import {
  InvalidRoomError,
  InvalidStateKeyError,
  InvalidStateValueError,
  StateNotIntegerError,
  StateOutOfRangeError,
  StateValueTooLargeError,
} from './errors.js';
import { normalizeName } from './names.js';
import { isValidName, type JsonObject, type JsonValue } from './protocol.js';

/**
 * Chosen so a room's whole state fits one DynamoDB item (400 KB of 1024
 * bytes, attribute names included): 256 keys of at most 64 characters (256
 * bytes of UTF-8, plus a 2-byte prefix) with values of at most 1024 bytes
 * come to under 330,000 bytes with the item's own attributes, of 409,600.
 */
export const STATE_LIMITS = {
  maxKeyChars: 64,
  maxValueBytes: 1024,
  maxKeysPerRoom: 256,
} as const;

/** How long a room's state outlives its last write unless ROOM_STATE_TTL says otherwise: a day. */
export const DEFAULT_STATE_TTL_MS = 86_400_000;

/** What `ctx.state` and `ctx.roomState(room)` are: one room's map. */
export interface RoomState {
  /** The value under `key`, or undefined when there is none. */
  get(key: string): Promise<JsonValue | undefined>;
  set(key: string, value: JsonValue): Promise<void>;
  /** Whether there was a value to delete. */
  delete(key: string): Promise<boolean>;
  /** Adds `by` (default 1) to a whole number, a missing key counting as 0, in one atomic step; resolves to the new value. */
  increment(key: string, by?: number): Promise<number>;
  /** Every key and value, keys in ascending order. */
  list(): Promise<JsonObject>;
}

/**
 * Where room state lives. Keys arrive checked and values as their JSON text.
 * Implementations must pass test/state-suite.ts.
 */
export interface StateStore {
  /** The JSON text under `key`, or undefined. */
  get(room: string, key: string): Promise<string | undefined>;
  /** Stores the text; a key new to a room that already holds maxKeysPerRoom keys is a StateFullError. */
  set(room: string, key: string, json: string): Promise<void>;
  delete(room: string, key: string): Promise<boolean>;
  /**
   * Atomically: the stored whole number (0 when missing) plus `by`, stored
   * and returned. Throws what `incremented` throws for the stored text, and
   * StateFullError for a new key in a full room.
   */
  increment(room: string, key: string, by: number): Promise<number>;
  /** Every key with its JSON text, in any order. */
  list(room: string): Promise<Array<[string, string]>>;
}

/** Binds a store to one room, checking the room name as the core's `join` does. */
export function roomStateOf(store: StateStore, room: string): RoomState {
  const name = normalizeName(room);
  if (!isValidName(name)) throw new InvalidRoomError();
  return {
    get: async (key) => {
      const json = await store.get(name, checkedKey(key));
      return json === undefined ? undefined : (JSON.parse(json) as JsonValue);
    },
    set: async (key, value) => store.set(name, checkedKey(key), encodeStateValue(value)),
    delete: async (key) => store.delete(name, checkedKey(key)),
    increment: async (key, by = 1) => {
      if (!Number.isSafeInteger(by)) throw new InvalidStateValueError('increment takes a whole number "by"');
      return store.increment(name, checkedKey(key), by);
    },
    list: async () => {
      const entries = await store.list(name);
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return Object.fromEntries(entries.map(([key, json]) => [key, JSON.parse(json) as JsonValue]));
    },
  };
}

const KEY_PATTERN = /^[\p{L}\p{N}_.:-]+$/u;

export function isValidStateKey(key: unknown): key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > STATE_LIMITS.maxKeyChars * 2) return false;
  return KEY_PATTERN.test(key) && [...key].length <= STATE_LIMITS.maxKeyChars;
}

function checkedKey(key: unknown): string {
  if (!isValidStateKey(key)) throw new InvalidStateKeyError(STATE_LIMITS.maxKeyChars);
  return key;
}

/** The value's JSON text, refused unless the value is JSON that survives the round trip unchanged and fits the limit. */
export function encodeStateValue(value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    // A cycle, or a BigInt.
    json = undefined;
  }
  if (json === undefined) throw notJson();
  if (Buffer.byteLength(json) > STATE_LIMITS.maxValueBytes) throw new StateValueTooLargeError(STATE_LIMITS.maxValueBytes);
  // JSON.stringify quietly drops undefined and functions and turns NaN into null; a store would then hold something else than was set.
  if (!isPlainJson(value)) throw notJson();
  return json;
}

function notJson(): InvalidStateValueError {
  return new InvalidStateValueError('a state value must be JSON: null, a boolean, a finite number, a string, or arrays and plain objects of them');
}

function isPlainJson(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!(i in value) || !isPlainJson(value[i])) return false;
        return true;
      }
      const prototype = Object.getPrototypeOf(value);
      return (prototype === Object.prototype || prototype === null) && Object.values(value).every(isPlainJson);
    }
    default:
      return false;
  }
}

/** JSON text of a whole number, the only text an increment accepts. */
const INTEGER_TEXT = /^-?\d+$/;

/** Whether the stored text is a number an increment may add to. */
export function isSafeIntegerText(json: string): boolean {
  return INTEGER_TEXT.test(json) && Number.isSafeInteger(Number(json));
}

/**
 * The result of incrementing the stored text by `by`, for stores that read
 * and write in one atomic step (and for telling why a conditional write failed).
 */
export function incremented(key: string, json: string | undefined, by: number): number {
  if (json === undefined) return by;
  if (!INTEGER_TEXT.test(json)) throw new StateNotIntegerError(key);
  const sum = Number(json) + by;
  if (!Number.isSafeInteger(Number(json)) || !Number.isSafeInteger(sum)) throw new StateOutOfRangeError(key);
  return sum;
}
