/**
 * Baseline: `ws` at its best for a broadcast. Each message is framed once
 * (ws's own `Sender.frame`) and the same Buffer is written to every open
 * member through its socket's Sender, the path `ws.send` ends in, without
 * encoding and framing it again per member.
 */
import { WebSocket } from 'ws';
import { servePrebuiltFrames } from './prebuilt-frame.js';

interface SenderPath {
  _sender: { sendFrame(list: Buffer[]): void };
}

servePrebuiltFrames(({ ws }, frame) => {
  if (ws.readyState === WebSocket.OPEN) (ws as unknown as SenderPath)._sender.sendFrame([frame]);
});
