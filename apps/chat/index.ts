/**
 * The built-in chat room of protocol v1, written with the public app API only:
 * what it adds to the core is chat and private messages, the AWS sample's
 * `sendmessage` frame, plain text as chat, its content rule and its words.
 */
import { randomUUID } from 'node:crypto';
import {
  defineApp,
  InvalidMessageError,
  ProtocolError,
  route,
  stringField,
  UnknownTypeError,
  type App,
  type AuthDecision,
  type Context,
  type HandshakeRequest,
} from '../../shared/index.js';

export const MAX_CONTENT_CHARS = 4000;

export class MessageTooLargeError extends ProtocolError {
  constructor(limit: number) {
    super('message_too_large', `content is longer than ${limit} characters`);
  }
}

export class RecipientNotFoundError extends ProtocolError {
  constructor(clientId: string) {
    super('recipient_not_found', `no connected client "${clientId.slice(0, 64)}"`);
  }
}

/** Chat content: a non-empty string of at most MAX_CONTENT_CHARS characters (code points). */
export function checkContent(content: string): string {
  if (content.length === 0) throw new InvalidMessageError('content must not be empty');
  // Counting code points is only needed when UTF-16 units already exceed the limit.
  if (content.length > MAX_CONTENT_CHARS && countCodePoints(content) > MAX_CONTENT_CHARS) {
    throw new MessageTooLargeError(MAX_CONTENT_CHARS);
  }
  return content;
}

function countCodePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

export function newMessageId(): string {
  return randomUUID();
}

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
    // ping, join and users come from the core (the default).
    routes: { chat, sendmessage, private: privateMessage },
    presenceText: {
      welcome: ({ clientId, room }) => `Welcome to ${room}, ${clientId}!`,
      alreadyInRoom: ({ clientId, room }) => `You are already in ${room}, ${clientId}.`,
      joined: ({ clientId, room }) => `${clientId} joined ${room}`,
      left: ({ clientId, room }) => `${clientId} left ${room}`,
    },
    onMessage: async (ctx, frame) => {
      if (frame.kind === 'command') throw new UnknownTypeError(frame.name);
      await postChat(ctx, checkContent(frame.text));
    },
  });
}

/** The chat as the deployables run it: AUTH_TOKEN from the environment of the function. */
export function chatFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): App {
  return createChatApp({ authToken: env.AUTH_TOKEN || undefined });
}
