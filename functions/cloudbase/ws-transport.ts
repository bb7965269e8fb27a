import type { Socket } from 'node:net';
import { Sender, WebSocket } from 'ws';
import type { Logger } from '../../shared/log.js';
import type { SendOutcome, Transport } from '../../shared/transport.js';

declare module 'ws' {
  /** ws exports its frame writer (lib/sender.js); @types/ws does not describe it. */
  export class Sender {
    static frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[];
  }
}

/** Text frames even from bytes: the protocol closes binary frames with 1003. One object, not one per send. */
const TEXT_FRAME = { binary: false } as const;
/** A whole unmasked text message: server frames are never masked, so its bytes suit every recipient. */
const TEXT_MESSAGE = { fin: true, opcode: 0x01, mask: false, readOnly: false, rsv1: false } as const;

/**
 * What a socket's `ws` Sender is doing, as lib/sender.js keeps it: `_state`
 * is 0 unless it is compressing or reading a Blob, and `_queue` holds the
 * sends waiting on that. Either may be missing from another version of `ws`;
 * such a socket is sent to through `ws.send`, which is always right.
 */
interface SenderInternals {
  _state?: number;
  _queue?: unknown[];
  sendFrame(list: Buffer[], cb?: (error?: Error) => void): void;
}

/** Bytes of one turn's broadcast frames a socket holds back to write at once. */
const COALESCED_BYTES = 16 * 1024;

/** The Transport of a process that owns its sockets. */
export class WsTransport implements Transport {
  readonly sockets = new Map<string, WebSocket>();
  /**
   * Sockets holding the broadcast frames of this turn of the event loop.
   * Under load several broadcasts reach a socket in one turn (chats read
   * from many clients at once, or several messages from the backplane in one
   * read); corked, they leave in one write instead of one each, and the
   * write is what a delivery costs most.
   */
  private readonly corked = new Set<Socket>();
  private readonly uncorkAll = () => {
    for (const raw of this.corked) raw.uncork();
    this.corked.clear();
  };

  constructor(
    private readonly maxBufferedBytes: number,
    private readonly logger: Logger,
  ) {}

  async send(connectionId: string, data: string): Promise<SendOutcome> {
    const socket = this.writable(connectionId);
    if (!socket) return 'gone';
    socket.send(data, TEXT_FRAME);
    return 'sent';
  }

  /**
   * A broadcast: the frame (header and payload) is built once into one
   * Buffer, and that same Buffer is written to every socket in one
   * synchronous loop, where `ws.send` would encode, frame and cork for each.
   */
  async sendMany(connectionIds: readonly string[], data: string): Promise<string[]> {
    const payload = Buffer.from(data);
    const frame = Buffer.concat(Sender.frame(payload, TEXT_MESSAGE));
    // sendFrame reads the list and lets it go, so one list serves every socket.
    const list = [frame];
    const gone: string[] = [];
    for (const connectionId of connectionIds) {
      try {
        const socket = this.writable(connectionId);
        if (!socket) gone.push(connectionId);
        else this.writeCorked(socket, list, payload);
      } catch (error) {
        this.logger.warn('send_failed', { connectionId, error });
      }
    }
    return gone;
  }

  /**
   * Writes with the socket corked until the event loop has run what it had
   * to (setImmediate runs after the poll phase). Past COALESCED_BYTES it is
   * uncorked at once: what waits corked counts in bufferedAmount, which
   * must keep measuring what the peer has not taken.
   */
  private writeCorked(socket: WebSocket, list: Buffer[], payload: Buffer): void {
    const raw = (socket as unknown as { _socket?: Socket })._socket;
    if (raw && !this.corked.has(raw)) {
      if (this.corked.size === 0) setImmediate(this.uncorkAll);
      raw.cork();
      this.corked.add(raw);
    }
    writeFrame(socket, list, payload);
    if (raw && raw.writableLength > COALESCED_BYTES && this.corked.delete(raw)) raw.uncork();
  }

  async close(connectionId: string, code: number, reason: string): Promise<void> {
    this.sockets.get(connectionId)?.close(code, reason);
  }

  /** The socket when it can take a frame; a slow consumer is cut off instead. */
  private writable(connectionId: string): WebSocket | undefined {
    const socket = this.sockets.get(connectionId);
    // Closing (either side sent its close frame, or the TCP connection ended): nothing more may be sent.
    if (!socket || socket.readyState !== WebSocket.OPEN) return undefined;
    // The socket's unwritten bytes plus whatever its Sender still holds, as ws counts them.
    if (socket.bufferedAmount > this.maxBufferedBytes) {
      // A close frame would queue behind the backlog it is meant to end, so cut the TCP connection.
      this.logger.warn('slow_consumer', { connectionId, bufferedBytes: socket.bufferedAmount });
      socket.terminate();
      return undefined;
    }
    return socket;
  }
}

/**
 * Writes a framed message through the socket's own Sender, as `ws.send`
 * ends up doing, so the bytes land in the same socket buffer that
 * `bufferedAmount` reads. A Sender that is busy (compressing, reading a
 * Blob) has sends queued that must go first: the message joins its queue.
 */
function writeFrame(socket: WebSocket, list: Buffer[], payload: Buffer): void {
  const sender = (socket as unknown as { _sender?: SenderInternals | null })._sender;
  if (sender && sender._state === 0 && sender._queue?.length === 0) sender.sendFrame(list);
  else socket.send(payload, TEXT_FRAME);
}
