/**
 * The built-in chat room of protocol v1, written with the public app API only.
 */
import { defineApp, route, type App, type AuthDecision, type Context, type HandshakeRequest, type Route } from './app.js';
import { newMessageId } from './engine.js';
import { InvalidRoomError, RecipientNotFoundError, UnknownTypeError } from './errors.js';
import { checkContent, isValidName, stringField } from './protocol.js';

async function postChat(ctx: Context, content: string): Promise<void> {
  const { clientId, room } = ctx.connection;
  await ctx.broadcast(room, ({ onlineCount }) => ({
    type: 'chat',
    id: newMessageId(),
    clientId,
    room,
    message: content,
    onlineCount,
  }));
}

const chat = route({
  parse: (fields) => checkContent(stringField(fields, 'content')),
  handle: postChat,
});

/** The AWS sample chat's frame: `{"action":"sendmessage","data":"..."}`. */
const sendmessage = route({
  parse: (fields) => checkContent(stringField(fields, 'data')),
  handle: postChat,
});

/** Protocol routes every app gets unless it replaces them: liveness, rooms, presence. */
export const coreRoutes = {
  ping: route({
    parse: () => undefined,
    handle: (ctx) => ctx.reply({ type: 'pong' }),
  }),
  join: route({
    parse: (fields) => {
      const room = stringField(fields, 'room');
      if (!isValidName(room)) throw new InvalidRoomError();
      return room;
    },
    handle: (ctx, room) => ctx.joinRoom(room),
  }),
  users: route({
    parse: () => undefined,
    handle: async (ctx) => {
      const { room } = ctx.connection;
      const members = await ctx.listRoom(room);
      await ctx.reply({ type: 'users', room, users: members.map((m) => m.clientId).sort(), onlineCount: members.length });
    },
  }),
} satisfies Record<string, Route<any>>;

const privateMessage = route({
  parse: (fields) => ({ to: stringField(fields, 'to'), content: checkContent(stringField(fields, 'content')) }),
  handle: async (ctx, { to, content }) => {
    const delivered = await ctx.sendToClient(to, {
      type: 'private',
      id: newMessageId(),
      clientId: ctx.connection.clientId,
      to,
      message: content,
    });
    if (!delivered) throw new RecipientNotFoundError(to);
  },
});

export interface ChatOptions {
  /** When set, clients must pass `?token=` equal to it (the AUTH_TOKEN setting). */
  authToken?: string;
  /** A custom hook; wins over authToken. */
  authenticate?: (request: HandshakeRequest) => AuthDecision | Promise<AuthDecision>;
}

export function createChatApp(options: ChatOptions = {}): App {
  const { authToken } = options;
  const authenticate =
    options.authenticate ??
    (authToken
      ? (request: HandshakeRequest): AuthDecision =>
          request.query.token === authToken ? { allow: true } : { allow: false, reason: 'a valid token is required' }
      : undefined);
  return defineApp({
    name: 'chat',
    ...(authenticate ? { authenticate } : {}),
    routes: { ...coreRoutes, chat, sendmessage, private: privateMessage },
    onMessage: async (ctx, frame) => {
      if (frame.kind === 'command') throw new UnknownTypeError(frame.name);
      await postChat(ctx, checkContent(frame.text));
    },
  });
}
