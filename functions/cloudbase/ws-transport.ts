import { WebSocket } from 'ws';
import type { Logger } from '../../shared/log.js';
import type { SendOutcome, Transport } from '../../shared/transport.js';

/** The Transport of a process that owns its sockets. */
export class WsTransport implements Transport {
  readonly sockets = new Map<string, WebSocket>();

  constructor(
    private readonly maxBufferedBytes: number,
    private readonly logger: Logger,
  ) {}

  async send(connectionId: string, data: string): Promise<SendOutcome> {
    const socket = this.sockets.get(connectionId);
    if (!socket || socket.readyState !== WebSocket.OPEN) return 'gone';
    if (socket.bufferedAmount > this.maxBufferedBytes) {
      // A close frame would queue behind the backlog it is meant to end, so cut the TCP connection.
      this.logger.warn('slow_consumer', { connectionId, bufferedBytes: socket.bufferedAmount });
      socket.terminate();
      return 'gone';
    }
    socket.send(data);
    return 'sent';
  }

  async close(connectionId: string, code: number, reason: string): Promise<void> {
    this.sockets.get(connectionId)?.close(code, reason);
  }
}
