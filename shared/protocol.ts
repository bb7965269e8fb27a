/**
 * The wire format of protocol v1 (docs/protocol.md): limits, name rules, the
 * parsing of client frames and the shapes of server frames. Pure functions;
 * nothing here knows about sockets or platforms.
 */
import { InvalidMessageError } from './errors.js';

/** API Gateway's payload limit; the CloudBase target keeps it too so both behave alike. */
export const MAX_FRAME_BYTES = 128 * 1024;
export const DEFAULT_ROOM = 'lobby';

const NAME_PATTERN = /^[\p{L}\p{N}_-]{1,32}$/u;
/**
 * Letters that draw nothing (the Hangul fillers are letters, yet invisible)
 * would let two names look identical. The bidirectional controls (U+202A-202E,
 * U+2066-2069, U+200E/200F, U+061C) are format characters, outside the
 * alphabet already; they are default-ignorable too, so this rule names them again.
 */
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u;

/** clientIds and rooms share one alphabet: 1-32 Unicode letters, digits, `_` or `-`, none of them invisible. */
export function isValidName(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 64 && NAME_PATTERN.test(value) && !INVISIBLE.test(value);
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * What a text frame turns out to be. A JSON object is a command; anything else
 * is text, which the app may take (the chat makes it a message). A frame that opens
 * like an object but does not parse is malformed rather than text, so a client
 * with a broken encoder hears about it instead of chatting garbage.
 */
export type InboundFrame =
  | { kind: 'command'; name: string; fields: Readonly<Record<string, unknown>> }
  | { kind: 'text'; text: string };

export function parseFrame(text: string): InboundFrame {
  const start = text.trimStart();
  if (!start.startsWith('{')) {
    if (text.length === 0) throw new InvalidMessageError('empty frame');
    return { kind: 'text', text };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InvalidMessageError('frame is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InvalidMessageError('frame is not a JSON object');
  }
  const fields = parsed as Record<string, unknown>;
  // Own properties only: a frame carrying "__proto__" must not reach a prototype.
  const type = Object.hasOwn(fields, 'type') ? fields.type : undefined;
  const action = Object.hasOwn(fields, 'action') ? fields.action : undefined;
  const name = type ?? action;
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidMessageError('"type" must be a non-empty string');
  }
  return { kind: 'command', name, fields };
}

/** Reads an own string field; absent or mistyped is `invalid_message`. */
export function stringField(fields: Readonly<Record<string, unknown>>, key: string): string {
  const value = Object.hasOwn(fields, key) ? fields[key] : undefined;
  if (typeof value !== 'string') throw new InvalidMessageError(`"${key}" must be a string`);
  return value;
}

/**
 * Server frames. Every one carries `type` and an ISO-8601 `timestamp`. The
 * core sends the presence frames, `pong`, `users` and `error`; an app adds its own.
 */
export type ServerFrame =
  | { type: 'welcome' | 'user_joined' | 'user_left'; clientId: string; room: string; message?: string; onlineCount: number }
  | { type: 'pong' }
  | { type: 'users'; room: string; users: string[]; onlineCount: number }
  | { type: 'error'; code: string; message: string }
  | { type: string; [field: string]: JsonValue };

export function encodeFrame(frame: ServerFrame, at: Date): string {
  return JSON.stringify({ ...frame, timestamp: at.toISOString() });
}
