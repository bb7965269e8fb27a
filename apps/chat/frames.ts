/** The frames a chat client receives: the core's, with the chat's words always set, and the chat's own. */
interface Presence<Type extends string> {
  type: Type;
  clientId: string;
  room: string;
  message: string;
  onlineCount: number;
}

export type ChatServerFrame =
  | Presence<'welcome'>
  | Presence<'user_joined'>
  | Presence<'user_left'>
  | { type: 'chat'; id: string; clientId: string; room: string; message: string; onlineCount: number }
  | { type: 'private'; id: string; clientId: string; to: string; message: string }
  | { type: 'pong' }
  | { type: 'users'; room: string; users: string[]; onlineCount: number }
  | { type: 'error'; code: string; message: string };
