import { WebSocket } from 'ws';
import type { Logger } from '../../shared/log.js';
import type { SendOutcome, Transport } from '../../shared/transport.js';

/** Text frames even from bytes: the protocol closes binary frames with 1003. One object, not one per send. */
const TEXT_FRAME = { binary: false } as const;

/** The Transport of a process that owns its sockets. */
export class WsTransport implements Transport {
  readonly sockets = new Map<string, WebSocket>();

  constructor(
    private readonly maxBufferedBytes: number,
    private readonly logger: Logger,
  ) {}

  async send(connectionId: string, data: string): Promise<SendOutcome> {
    return this.write(connectionId, data);
  }

  /**
   * A broadcast: the frame is turned into bytes once (`ws` would encode a
   * string again for every socket) and written in one synchronous loop.
   */
  async sendMany(connectionIds: readonly string[], data: string): Promise<string[]> {
    const bytes = Buffer.from(data);
    const gone: string[] = [];
    for (const connectionId of connectionIds) {
      try {
        if (this.write(connectionId, bytes) === 'gone') gone.push(connectionId);
      } catch (error) {
        this.logger.warn('send_failed', { connectionId, error });
      }
    }
    return gone;
  }

  async close(connectionId: string, code: number, reason: string): Promise<void> {
    this.sockets.get(connectionId)?.close(code, reason);
  }

  private write(connectionId: string, data: string | Buffer): SendOutcome {
    const socket = this.sockets.get(connectionId);
    if (!socket || socket.readyState !== WebSocket.OPEN) return 'gone';
    if (socket.bufferedAmount > this.maxBufferedBytes) {
      // A close frame would queue behind the backlog it is meant to end, so cut the TCP connection.
      this.logger.warn('slow_consumer', { connectionId, bufferedBytes: socket.bufferedAmount });
      socket.terminate();
      return 'gone';
    }
    socket.send(data, TEXT_FRAME);
    return 'sent';
  }
}
