/**
 * The two wires the load processes speak. Both put the same chat fields in
 * the same JSON; Socket.IO wraps them in its engine.io/socket.io packet
 * framing. Clients are plain `ws` sockets in both cases so the client-side
 * cost is the same for every server and the measurement is of the server.
 */
import type { Dialect } from './messages.js';

export interface DialectCodec {
  /** Path and query appended to the server URL. */
  query(clientId: string, room: string): string;
  /** The frame that posts `content` to the sender's room. */
  chatFrame(content: string): string;
  /** What to answer to a frame that is not a chat (engine.io pings); undefined: nothing. */
  reply(frame: string): string | undefined;
  /** True once `frame` says the server has put the client in its room. */
  isReady(frame: string): boolean;
  /** Where a chat frame starts; frames that do not start so are not chats. */
  chatPrefix: string;
}

const chat: DialectCodec = {
  query: (clientId, room) => `?clientId=${clientId}&room=${room}`,
  chatFrame: (content) => `{"type":"chat","content":"${content}"}`,
  reply: () => undefined,
  isReady: (frame) => frame.startsWith('{"type":"welcome"'),
  chatPrefix: '{"type":"chat"',
};

/** engine.io v4 packet types: 0 open, 2 ping, 3 pong, 4 message; socket.io: 0 connect, 2 event. */
const socketio: DialectCodec = {
  query: (clientId, room) => `socket.io/?EIO=4&transport=websocket&clientId=${clientId}&room=${room}`,
  chatFrame: (content) => `42["chat",{"content":"${content}"}]`,
  reply: (frame) => (frame === '2' ? '3' : frame.startsWith('0{') ? '40' : undefined),
  isReady: (frame) => frame.startsWith('42["welcome"'),
  chatPrefix: '42["chat"',
};

export const dialects: Record<Dialect, DialectCodec> = { chat, socketio };

const MESSAGE_FIELD = '"message":"';

/**
 * Content carries who sent it and when: `p<pid>t<ms>x…`, padded to a fixed
 * size. The time is the sender's intended send time on its own
 * performance.now() clock, so a stalled sender cannot hide its own delay.
 */
export function makeContent(pid: number, intendedAtMs: number, bytes: number): string {
  const head = `p${pid}t${intendedAtMs.toFixed(3)}x`;
  return head.length >= bytes ? head : head + 'x'.repeat(bytes - head.length);
}

export interface ContentStamp {
  pid: number;
  intendedAtMs: number;
}

/** Reads the stamp back out of a chat frame without parsing the whole JSON. */
export function readStamp(frame: string): ContentStamp | undefined {
  const at = frame.indexOf(MESSAGE_FIELD);
  if (at < 0) return undefined;
  const start = at + MESSAGE_FIELD.length;
  if (frame.charCodeAt(start) !== 112 /* p */) return undefined;
  const t = frame.indexOf('t', start);
  const x = frame.indexOf('x', t);
  if (t < 0 || x < 0) return undefined;
  const pid = Number(frame.slice(start + 1, t));
  const intendedAtMs = Number(frame.slice(t + 1, x));
  return Number.isFinite(pid) && Number.isFinite(intendedAtMs) ? { pid, intendedAtMs } : undefined;
}
