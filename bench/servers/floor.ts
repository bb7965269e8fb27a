/**
 * Baseline: the floor of a Node broadcast. Each message is framed once and
 * the same Buffer goes to every member in one `socket.write` on its TCP
 * socket, with no check but that the socket still takes writes: no
 * WebSocket state, no backpressure, nothing but the kernel write per
 * recipient that every server pays.
 */
import { servePrebuiltFrames } from './prebuilt-frame.js';

servePrebuiltFrames(({ socket }, frame) => {
  if (socket.writable) socket.write(frame);
});
