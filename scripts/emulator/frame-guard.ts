/**
 * API Gateway limits each WebSocket *frame* to 32 KB, apart from the 128 KB
 * limit on a whole (possibly fragmented) message, and closes with 1009 when a
 * client sends a larger frame. `ws` only knows a message limit (`maxPayload`),
 * so the frame headers are read here, from the raw socket, ahead of `ws`: only
 * the 2–14 header bytes of each frame are looked at, payloads are skipped.
 */
import type { Duplex } from 'node:stream';

/** API Gateway's "WebSocket frame size" quota. */
export const MAX_GATEWAY_FRAME_BYTES = 32 * 1024;

const LONGEST_HEADER = 14;

/**
 * Calls `onTooBig` once, as soon as the header of a data frame announcing more
 * than `limit` payload bytes arrives. Must be attached before the socket's data
 * starts flowing to `ws` (synchronously in `handleUpgrade`'s callback), so it
 * sees every byte the client sends after the handshake.
 */
export function guardFrameSize(socket: Duplex, limit: number, onTooBig: (payloadBytes: number) => void): void {
  const header = Buffer.alloc(LONGEST_HEADER);
  let headerBytes = 0;
  let payloadLeft = 0;

  const onData = (chunk: Buffer): void => {
    let offset = 0;
    while (offset < chunk.length) {
      if (payloadLeft > 0) {
        const skipped = Math.min(payloadLeft, chunk.length - offset);
        payloadLeft -= skipped;
        offset += skipped;
        continue;
      }
      header[headerBytes++] = chunk[offset++]!;
      if (headerBytes < 2) continue;
      const shortLength = header[1]! & 0x7f;
      const lengthBytes = shortLength === 126 ? 2 : shortLength === 127 ? 8 : 0;
      const needed = 2 + lengthBytes + (header[1]! & 0x80 ? 4 : 0);
      if (headerBytes < needed) continue;
      const payloadBytes =
        lengthBytes === 0 ? shortLength : lengthBytes === 2 ? header.readUInt16BE(2) : Number(header.readBigUInt64BE(2));
      headerBytes = 0;
      // Opcodes 0–7 are data and continuation frames; control frames are at most 125 bytes anyway.
      if ((header[0]! & 0x0f) < 0x08 && payloadBytes > limit) {
        socket.off('data', onData);
        onTooBig(payloadBytes);
        return;
      }
      payloadLeft = payloadBytes;
    }
  };
  socket.prependListener('data', onData);
}
