/**
 * The app API: what a user writes to get their own WebSocket backend on every
 * target. The built-in chat (apps/chat) is written with nothing but this.
 */
import { ConfigError } from './errors.js';
import type { InboundFrame, JsonObject, ServerFrame } from './protocol.js';
import type { ConnectionRecord } from './registry.js';
import type { RoomState } from './room-state.js';
import type { CoreRouteName } from './routes.js';

/** The handshake as the core sees it, whatever the platform. */
export interface HandshakeRequest {
  connectionId: string;
  /** Header names in lower case; repeated headers joined with ", ". */
  headers: Readonly<Record<string, string>>;
  query: Readonly<Record<string, string>>;
  sourceIp: string;
}

/**
 * The answer of an `authenticate` hook. `identity` is stored with the
 * connection (JSON only, so every registry can hold it); `clientId`, when
 * given, replaces the one the client asked for.
 */
export type AuthDecision =
  | { allow: true; identity?: JsonObject; clientId?: string }
  | { allow: false; reason?: string };

/** A frame builder that is told the room's head count, so one room listing serves both. */
export type FrameSource = ServerFrame | ((room: { onlineCount: number }) => ServerFrame);

export interface BroadcastOptions {
  /** Leave this connection out (for `user_joined`, which the newcomer does not get). */
  except?: string;
}

/** What a hook or route can do. Every method is async because the registry may be remote. */
export interface Context {
  /** The connection this event belongs to, as it was when the event arrived. */
  readonly connection: ConnectionRecord;
  /** When the event arrived. */
  readonly now: Date;
  /** Sends a frame to this connection. */
  reply(frame: ServerFrame): Promise<void>;
  /** Sends a frame to everyone in `room`; resolves to the room's head count. */
  broadcast(room: string, frame: FrameSource, options?: BroadcastOptions): Promise<number>;
  /** Sends to the connection holding `clientId`; false when there is none. */
  sendToClient(clientId: string, frame: ServerFrame): Promise<boolean>;
  /** Leaves the current room (announcing `user_left`) and enters `room` (welcome, `user_joined`). */
  joinRoom(room: string): Promise<void>;
  listRoom(room: string): Promise<ConnectionRecord[]>;
  close(code: number, reason: string): Promise<void>;
  /**
   * The state of the connection's room (the room it was in when the event
   * arrived), the same for every connection of the room on every target.
   */
  readonly state: RoomState;
  /** Another room's state; a room name outside the alphabet is `invalid_room`. */
  roomState(room: string): RoomState;
}

/**
 * A typed message route: `parse` validates the frame's fields, `handle` acts
 * on the result. Handlers and hooks may return a promise (it is awaited); any
 * value they resolve to is ignored, so `return ctx.broadcast(...)` reads fine.
 */
export interface Route<Message> {
  parse(fields: Readonly<Record<string, unknown>>): Message;
  handle(ctx: Context, message: Message): unknown;
}

/** What the core tells an app's presence texts about the event it is announcing. */
export interface PresenceEvent {
  clientId: string;
  room: string;
  onlineCount: number;
}

/**
 * Words for the presence frames the core sends; each text becomes the frame's
 * `message` field. Absent, those frames carry no `message`.
 */
export interface PresenceText {
  welcome?(event: PresenceEvent): string;
  /** The `welcome` answering a `join` to the room the connection is already in. */
  alreadyInRoom?(event: PresenceEvent): string;
  joined?(event: PresenceEvent): string;
  left?(event: PresenceEvent): string;
}

export interface App {
  name: string;
  /** Runs on the handshake; a refusal is HTTP 401. Absent: everyone is let in. */
  authenticate?(request: HandshakeRequest): AuthDecision | Promise<AuthDecision>;
  /** After the core has sent `welcome` and announced `user_joined`. */
  onConnect?(ctx: Context): unknown;
  /** Commands by their `type` (or `action`, for AWS-style clients). A route named like a core route replaces it. */
  routes?: Readonly<Record<string, Route<any>>>;
  /**
   * Which of the core's routes (`ping`, `join`, `users`; shared/routes.ts)
   * the app answers. Absent or true: all three. False: none, so those types
   * are `unknown_type` unless the app routes them itself.
   */
  coreRoutes?: boolean | readonly CoreRouteName[];
  presenceText?: PresenceText;
  /**
   * Frames no route takes: plain text, and commands of unknown type. Absent,
   * text is `invalid_message` and unknown commands `unknown_type`.
   */
  onMessage?(ctx: Context, frame: InboundFrame): unknown;
  /** After the connection left its room and `user_left` went out. */
  onDisconnect?(ctx: Context): unknown;
}

/** Identity functions that exist for type inference at the call site. */
export function defineApp(app: App): App {
  return app;
}

export function route<Message>(definition: Route<Message>): Route<Message> {
  return definition;
}

/**
 * The app a module exports: its default export, else an export named `app`.
 * The entries `cloudsocket build` generates call this with the project's app module.
 */
export function appFromModule(module: Record<string, unknown>, source: string): App {
  const candidate = module.default ?? module.app;
  if (isApp(candidate)) return candidate;
  throw new ConfigError(`${source} must export an app made with defineApp, as its default export or as "app"`);
}

function isApp(value: unknown): value is App {
  return typeof value === 'object' && value !== null && typeof (value as { name?: unknown }).name === 'string';
}
