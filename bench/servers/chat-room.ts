/**
 * What the `ws` baselines share: the chat room as cloudsocket's frames
 * describe it (welcome, then one `chat` frame per message to every member,
 * sender included), read from the same query, and the line that tells the
 * bench the port. Each baseline differs only in how it writes a broadcast.
 */
import type { IncomingMessage, Server } from 'node:http';

export interface Joined {
  room: string;
  clientId: string;
}

let anonymous = 0;

export function joinedFrom(req: IncomingMessage): Joined {
  const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
  return { room: query.get('room') || 'lobby', clientId: query.get('clientId') || `client_${++anonymous}` };
}

/** Puts `member` in its room, made on first use; resolves to the room's members. */
export function enter<T>(rooms: Map<string, Set<T>>, room: string, member: T): Set<T> {
  let members = rooms.get(room);
  if (!members) rooms.set(room, (members = new Set()));
  members.add(member);
  return members;
}

/** Takes `member` out of its room, and the room out of the map once empty. */
export function leave<T>(rooms: Map<string, Set<T>>, room: string, members: Set<T>, member: T): void {
  members.delete(member);
  if (members.size === 0) rooms.delete(room);
}

export function frame(fields: Record<string, unknown>): string {
  return JSON.stringify({ ...fields, timestamp: new Date().toISOString() });
}

export function welcomeFrame({ room, clientId }: Joined, onlineCount: number): string {
  return frame({ type: 'welcome', clientId, room, message: `Welcome to ${room}, ${clientId}!`, onlineCount });
}

/** The content of a `{"type":"chat","content":...}` frame; undefined for anything else. */
export function chatContent(data: { toString(): string }): string | undefined {
  try {
    const content = (JSON.parse(data.toString()) as { content?: unknown }).content;
    return typeof content === 'string' ? content : undefined;
  } catch {
    return undefined;
  }
}

export function listen(http: Server): void {
  http.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    const address = http.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    process.stdout.write(JSON.stringify({ event: 'listening', port }) + '\n');
  });
  process.once('SIGTERM', () => process.exit(0));
}
