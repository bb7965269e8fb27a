/**
 * A WebSocket peer written by hand on a bare TCP socket: it completes the
 * handshake and then does nothing a polite client would (no pong, no reads
 * when paused). For testing how the server treats dead and slow peers.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export async function openRawWebSocket(port: number, path: string): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(upgradeRequest(path));
  await new Promise<void>((resolve, reject) => {
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (head.startsWith('HTTP/1.1 101')) resolve();
      else reject(new Error(`handshake refused: ${head.split('\r\n')[0]}`));
    };
    socket.on('data', onData);
  });
  return socket;
}

export interface RawAnswer {
  /** 0 when the server closed without answering. */
  status: number;
  body: string;
  /** With `waitForFrame`: the first WebSocket frame after a 101, as text (servers never mask, and these frames are small). */
  firstFrame?: string;
}

/**
 * Sends `head` (a request line and headers, written verbatim) and reads the
 * answer: the body of a refusal, or a 101 (and the first frame after it).
 * Rejects when nothing at all comes back within `timeoutMs`, naming the request.
 */
export function rawRequest(port: number, head: string, { waitForFrame = false, timeoutMs = 5000 } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head));
    let received = Buffer.alloc(0);
    const finish = (answer: RawAnswer | Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (answer instanceof Error) reject(answer);
      else resolve(answer);
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms to ${JSON.stringify(head.split('\r\n')[0])}`)), timeoutMs);
    const parsed = (): RawAnswer | undefined => {
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return undefined;
      const headText = received.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(headText)?.[1] ?? 0);
      const rest = received.subarray(end + 4);
      if (status === 101 && !waitForFrame) return { status, body: '' };
      if (status === 101) {
        // FIN + text opcode, then a 7-bit or 16-bit length.
        if (rest.length < 2) return undefined;
        const short = rest[1]! & 0x7f;
        const [length, offset] = short === 126 ? [rest.length >= 4 ? rest.readUInt16BE(2) : Infinity, 4] : [short, 2];
        if (rest.length < offset + length) return undefined;
        return { status, body: '', firstFrame: rest.subarray(offset, offset + length).toString('utf8') };
      }
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headText)?.[1] ?? NaN);
      return rest.length >= length ? { status, body: rest.subarray(0, length).toString('utf8') } : undefined;
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const answer = parsed();
      if (answer) finish(answer);
    });
    socket.on('close', () => finish(parsed() ?? { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(received.toString('latin1'))?.[1] ?? 0), body: received.toString('latin1') }));
    socket.on('error', () => undefined);
  });
}

/** A WebSocket upgrade request for `target`, otherwise well-formed. */
export function upgradeRequest(target: string, extraHeaders: string[] = []): string {
  return [
    `GET ${target} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    ...extraHeaders,
    '',
    '',
  ].join('\r\n');
}
