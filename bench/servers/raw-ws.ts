/**
 * Baseline: the least a Node program can do to run the same chat room over
 * `ws`, written the way its README does: `send(string)` to every member of
 * the room. It answers with the same frames as cloudsocket and skips
 * everything else: no validation beyond JSON, no rate limit, no presence,
 * no liveness.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { chatContent, enter, frame, joinedFrom, leave, listen, welcomeFrame } from './chat-room.js';

const rooms = new Map<string, Set<WebSocket>>();

const http = createServer((_req, res) => {
  res.writeHead(404);
  res.end();
});
const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: 128 * 1024 });

wss.on('connection', (ws, req) => {
  const joined = joinedFrom(req);
  const { room, clientId } = joined;
  const roomMembers = enter(rooms, room, ws);

  ws.send(welcomeFrame(joined, roomMembers.size));
  ws.on('message', (data) => {
    const content = chatContent(data);
    if (content === undefined) return;
    const chat = frame({ type: 'chat', id: randomUUID(), clientId, room, message: content, onlineCount: roomMembers.size });
    for (const peer of roomMembers) if (peer.readyState === WebSocket.OPEN) peer.send(chat);
  });
  ws.on('close', () => leave(rooms, room, roomMembers, ws));
});

listen(http);
