/**
 * Baseline: the same chat room on Socket.IO 4, the way its docs write a room
 * broadcast (`socket.join(room)`, `io.to(room).emit(...)`), WebSocket
 * transport only, with the same fields in its frames as cloudsocket's. With
 * REDIS_URL, processes share rooms through @socket.io/redis-adapter, set up
 * as its README does (a pub client and a duplicate for sub).
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, maxHttpBufferSize: 128 * 1024 });
let anonymous = 0;
if (process.env.REDIS_URL) {
  const pub = new Redis(process.env.REDIS_URL);
  const sub = pub.duplicate();
  io.adapter(createAdapter(pub, sub, { key: process.env.REDIS_PREFIX ?? 'socket.io' }));
}

io.on('connection', (socket) => {
  const query = socket.handshake.query;
  const room = typeof query.room === 'string' && query.room ? query.room : 'lobby';
  const clientId = typeof query.clientId === 'string' && query.clientId ? query.clientId : `client_${++anonymous}`;
  void socket.join(room);
  // This process's members only, even over Redis: counting the whole room (fetchSockets) costs a round trip per frame,
  // which cloudsocket pays and this baseline is spared.
  const onlineCount = () => io.sockets.adapter.rooms.get(room)?.size ?? 0;

  socket.emit('welcome', stamped({ type: 'welcome', clientId, room, message: `Welcome to ${room}, ${clientId}!`, onlineCount: onlineCount() }));
  socket.on('chat', (payload: unknown) => {
    const content = payload && typeof payload === 'object' ? (payload as { content?: unknown }).content : undefined;
    if (typeof content !== 'string') return;
    io.to(room).emit('chat', stamped({ type: 'chat', id: randomUUID(), clientId, room, message: content, onlineCount: onlineCount() }));
  });
});

function stamped(fields: Record<string, unknown>): Record<string, unknown> {
  return { ...fields, timestamp: new Date().toISOString() };
}

http.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = http.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(JSON.stringify({ event: 'listening', port }) + '\n');
});
process.once('SIGTERM', () => process.exit(0));
