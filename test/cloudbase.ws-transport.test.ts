/**
 * The CloudBase transport's broadcast writes one prebuilt frame to every
 * socket. Checked with real `ws` servers and clients: every client parses
 * every frame, a socket whose Sender still holds queued sends gets the
 * broadcast after them, and sockets closing or already gone are skipped
 * without an exception or a corrupt frame.
 */
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { WsTransport } from '../functions/cloudbase/ws-transport.js';
import { createLogger, type Logger } from '../shared/log.js';

interface Peer {
  id: string;
  /** The server's side of the connection, the one the transport writes to. */
  server: WebSocket;
  client: WebSocket;
  received: string[];
  errors: Error[];
  /** Resolves with the close code the client saw. */
  closed: Promise<number>;
  /** Resolves once the client has received `count` messages in all. */
  receivedCount(count: number): Promise<string[]>;
}

describe('WsTransport broadcast', () => {
  let wss: WebSocketServer;
  let transport: WsTransport;
  let warnings: string[];
  let peers: Peer[];

  beforeEach(async () => {
    // Compression on, so a Sender can be busy deflating and hold sends in its queue.
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: { threshold: 0 } });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    warnings = [];
    const logger: Logger = createLogger('warn', (line) => void warnings.push(line));
    transport = new WsTransport(1 << 20, logger);
    peers = [];
  });

  afterEach(async () => {
    for (const peer of peers) peer.client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });

  async function connect(id: string): Promise<Peer> {
    const port = (wss.address() as AddressInfo).port;
    const server = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
    const client = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: true });
    const received: string[] = [];
    const errors: Error[] = [];
    const waiters: Array<{ count: number; resolve: (messages: string[]) => void }> = [];
    client.on('message', (data, isBinary) => {
      expect(isBinary).toBe(false);
      received.push(data.toString());
      for (const waiter of waiters.filter((w) => received.length >= w.count)) waiter.resolve(received);
    });
    client.on('error', (error) => errors.push(error));
    const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve());
      client.once('error', reject);
    });
    const peer: Peer = {
      id,
      server: await server,
      client,
      received,
      errors,
      closed,
      receivedCount: (count) =>
        new Promise((resolve) => (received.length >= count ? resolve(received) : waiters.push({ count, resolve }))),
    };
    transport.sockets.set(id, peer.server);
    peers.push(peer);
    return peer;
  }

  /** One at a time, so each client is paired with its own server-side socket. */
  async function connectAll(ids: string[]): Promise<Peer[]> {
    const connected: Peer[] = [];
    for (const id of ids) connected.push(await connect(id));
    return connected;
  }

  /** Long messages compared by length and ending, so a failure prints a line, not 70 kB. */
  const summary = (messages: string[]) => messages.map((message) => `${message.length}:${message.slice(-8)}`);

  const senderState = (socket: WebSocket) => (socket as unknown as { _sender: { _state: number; _queue: unknown[] } })._sender;

  it('sends one frame every client parses, at each length encoding', async () => {
    const group = await connectAll(['a', 'b', 'c']);
    // 7-bit, 16-bit and 64-bit payload lengths, and characters of several UTF-8 widths.
    const messages = ['short é', 'x'.repeat(300) + ' ü', 'y'.repeat(70_000) + ' 漢字 🙂'];
    for (const message of messages) expect(await transport.sendMany(['a', 'b', 'c'], message)).toEqual([]);
    for (const peer of group) {
      expect(summary(await peer.receivedCount(messages.length))).toEqual(summary(messages));
      expect(peer.received).toEqual(messages);
      expect(peer.errors).toEqual([]);
    }
  });

  it('puts a broadcast behind the sends a busy Sender has queued, on that socket only', async () => {
    const [busy, idle] = await connectAll(['busy', 'idle']);
    busy!.server.send('compressed first', { compress: true });
    busy!.server.send('queued second');
    // The premise: ws is still deflating the first and holds the second in its queue.
    expect(senderState(busy!.server)._state).not.toBe(0);
    expect(senderState(busy!.server)._queue.length).toBe(1);
    const queuedBytes = busy!.server.bufferedAmount;
    expect(queuedBytes).toBeGreaterThan(0);

    expect(await transport.sendMany(['busy', 'idle'], 'broadcast one')).toEqual([]);
    // Still counted while it waits behind the queue, so the slow-consumer check sees it.
    expect(busy!.server.bufferedAmount).toBeGreaterThan(queuedBytes);
    expect(await transport.sendMany(['idle', 'busy'], 'broadcast two')).toEqual([]);

    expect(await busy!.receivedCount(4)).toEqual(['compressed first', 'queued second', 'broadcast one', 'broadcast two']);
    expect(await idle!.receivedCount(2)).toEqual(['broadcast one', 'broadcast two']);
    expect([...busy!.errors, ...idle!.errors]).toEqual([]);
  });

  it('skips sockets that are closing, terminated or unknown, and writes to one whose peer has vanished without throwing', async () => {
    const [closing, terminated, vanished, healthy] = await connectAll(['closing', 'terminated', 'vanished', 'healthy']);
    closing!.server.close(1000, 'bye');
    terminated!.server.terminate();
    // The server has not heard of this yet: its side is still open, and the write meets a dead TCP peer.
    (vanished!.client as unknown as { _socket: { destroy(): void } })._socket.destroy();
    expect(vanished!.server.readyState).toBe(WebSocket.OPEN);

    const ids = ['closing', 'terminated', 'vanished', 'healthy', 'never-connected'];
    const first = await transport.sendMany(ids, 'after the closes');
    expect(first.sort()).toEqual(['closing', 'never-connected', 'terminated']);
    const vanishedClosed = new Promise<void>((resolve) => vanished!.server.once('close', () => resolve()));
    expect((await transport.sendMany(ids, 'and another')).sort()).toEqual(first);

    expect(await healthy!.receivedCount(2)).toEqual(['after the closes', 'and another']);
    expect(await closing!.closed).toBe(1000);
    expect(closing!.received).toEqual([]);
    expect(terminated!.received).toEqual([]);
    await vanishedClosed;
    expect([...closing!.errors, ...healthy!.errors]).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it('cuts off a socket whose backlog is over the limit and still delivers to the rest', async () => {
    transport = new WsTransport(64 * 1024, createLogger('warn', (line) => void warnings.push(line)));
    const [slow, fast] = await connectAll(['slow', 'fast']);
    // A corked TCP socket keeps every write in its own buffer, as one the kernel stopped taking from would.
    (slow!.server as unknown as { _socket: { cork(): void } })._socket.cork();
    const big = 'z'.repeat(16 * 1024);
    const gone: string[] = [];
    for (let i = 0; i < 10; i++) gone.push(...(await transport.sendMany(['slow', 'fast'], `${i}:${big}`)));
    expect(gone).toContain('slow');
    expect(warnings.some((line) => line.includes('slow_consumer'))).toBe(true);
    expect(slow!.server.readyState).toBe(WebSocket.CLOSING);
    expect(gone.every((id) => id === 'slow')).toBe(true);
    expect((await fast!.receivedCount(10)).map((message) => message.split(':')[0])).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(fast!.errors).toEqual([]);
  });

  it('writes the frames of several broadcasts in one turn to a socket at once, and a large one at once', async () => {
    const [peer] = await connectAll(['coalesced']);
    const raw = (peer!.server as unknown as { _socket: Socket })._socket;
    const writes: number[] = [];
    const { _write, _writev } = raw as unknown as { _write: (...args: unknown[]) => void; _writev: (chunks: unknown[], ...rest: unknown[]) => void };
    Object.assign(raw, {
      _write: (...args: unknown[]) => (writes.push(1), _write.apply(raw, args)),
      _writev: (chunks: unknown[], ...rest: unknown[]) => (writes.push(chunks.length), _writev.apply(raw, [chunks, ...rest])),
    });
    // All in one turn: the sends resolve as microtasks, before setImmediate.
    for (const text of ['one', 'two', 'three']) await transport.sendMany(['coalesced'], text);
    expect(writes).toEqual([]);
    expect(await peer!.receivedCount(3)).toEqual(['one', 'two', 'three']);
    expect(writes).toEqual([3]);

    // Past 16 KiB it leaves at once, so bufferedAmount measures only what the peer has not taken.
    writes.length = 0;
    await transport.sendMany(['coalesced'], 'l'.repeat(20 * 1024));
    expect(writes).toEqual([1]);
    expect(raw.writableCorked).toBe(0);
    expect((await peer!.receivedCount(4))[3]).toHaveLength(20 * 1024);
  });
});
