/** The frames a chat client receives: the core's, with the chat's words always set, and the chat's own. */
interface Presence<Type extends string> {
  type: Type;
  clientId: string;
  room: string;
  message: string;
  onlineCount: number;
}

/** The room's frames carry the seq its log gave them (protocol.md, "Sequence numbers and resuming"). */
interface Numbered {
  seq: number;
}

export type ChatServerFrame =
  | (Presence<'welcome'> & { seq: number; resumeToken: string })
  | (Presence<'user_joined'> & Numbered)
  | (Presence<'user_left'> & Numbered)
  | ({ type: 'chat'; id: string; clientId: string; room: string; message: string; onlineCount: number } & Numbered)
  | ({ type: 'private'; id: string; clientId: string; to: string; message: string } & Numbered)
  | { type: 'resumed'; clientId: string; room: string; seq: number; resumeToken: string; onlineCount: number; replayed: number }
  | { type: 'resume_failed'; code: string; message: string }
  | { type: 'pong' }
  | { type: 'users'; room: string; users: string[]; onlineCount: number }
  | { type: 'error'; code: string; message: string };
