/**
 * The chat room of raw-ws.ts with each broadcast framed once: the frame's
 * header and payload built into one Buffer (server frames are unmasked, so
 * the bytes suit every member) and that Buffer written to each member. How
 * it is written is the caller's: the two baselines built on this differ in
 * nothing else.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { Duplex } from 'node:stream';
// Sender is typed where the CloudBase transport uses it (functions/cloudbase/ws-transport.ts).
import { Sender, WebSocketServer, type WebSocket } from 'ws';
import { chatContent, enter, frame, joinedFrom, leave, listen, welcomeFrame } from './chat-room.js';

export interface Member {
  ws: WebSocket;
  /** The TCP socket under `ws`, as the HTTP upgrade handed it over. */
  socket: Duplex;
}

const TEXT_MESSAGE = { fin: true, opcode: 0x01, mask: false, readOnly: false, rsv1: false } as const;

export function servePrebuiltFrames(write: (member: Member, frame: Buffer) => void): void {
  const rooms = new Map<string, Set<Member>>();
  const http = createServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 128 * 1024 });

  http.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      const joined = joinedFrom(req);
      const { room, clientId } = joined;
      const member: Member = { ws, socket };
      const roomMembers = enter(rooms, room, member);

      ws.send(welcomeFrame(joined, roomMembers.size));
      ws.on('message', (data) => {
        const content = chatContent(data);
        if (content === undefined) return;
        const payload = Buffer.from(frame({ type: 'chat', id: randomUUID(), clientId, room, message: content, onlineCount: roomMembers.size }));
        const bytes = Buffer.concat(Sender.frame(payload, TEXT_MESSAGE));
        for (const peer of roomMembers) write(peer, bytes);
      });
      ws.on('close', () => leave(rooms, room, roomMembers, member));
    });
  });
  listen(http);
}
