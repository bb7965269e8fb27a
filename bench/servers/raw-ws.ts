/**
 * Baseline: the least a Node program can do to run the same chat room over
 * `ws`. It answers with the same frames as cloudsocket (welcome, then one
 * `chat` frame per message, encoded once and sent to every member of the
 * room) and skips everything else: no validation beyond JSON, no rate limit,
 * no presence, no liveness.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';

const rooms = new Map<string, Set<WebSocket>>();
let anonymous = 0;

const http = createServer((_req, res) => {
  res.writeHead(404);
  res.end();
});
const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: 128 * 1024 });

wss.on('connection', (ws, req) => {
  const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
  const room = query.get('room') || 'lobby';
  const clientId = query.get('clientId') || `client_${++anonymous}`;
  let members = rooms.get(room);
  if (!members) rooms.set(room, (members = new Set()));
  members.add(ws);
  const roomMembers = members;

  ws.send(frame({ type: 'welcome', clientId, room, message: `Welcome to ${room}, ${clientId}!`, onlineCount: roomMembers.size }));
  ws.on('message', (data) => {
    let content: unknown;
    try {
      content = (JSON.parse(data.toString()) as { content?: unknown }).content;
    } catch {
      return;
    }
    if (typeof content !== 'string') return;
    const chat = frame({ type: 'chat', id: randomUUID(), clientId, room, message: content, onlineCount: roomMembers.size });
    for (const peer of roomMembers) if (peer.readyState === WebSocket.OPEN) peer.send(chat);
  });
  ws.on('close', () => {
    roomMembers.delete(ws);
    if (roomMembers.size === 0) rooms.delete(room);
  });
});

function frame(fields: Record<string, unknown>): string {
  return JSON.stringify({ ...fields, timestamp: new Date().toISOString() });
}

http.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = http.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(JSON.stringify({ event: 'listening', port }) + '\n');
});
process.once('SIGTERM', () => process.exit(0));
