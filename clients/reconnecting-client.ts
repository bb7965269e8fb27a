/**
 * The chat client both the browser page and the `cloudsocket chat` command
 * use: one connection that keeps itself alive (heartbeat pings, round-trip
 * times) and comes back by itself after a drop, with the identity and room it
 * had. It runs in browsers and in Node alike because it is handed the
 * WebSocket class to use (the browser's own, or `ws`) and touches no other
 * platform API.
 */
import { ClosedForAbuseError, CloseCode, CloudsocketError, SessionReplacedError } from '../shared/errors.js';
import { DEFAULT_ROOM } from '../shared/protocol.js';
import type { ChatServerFrame } from '../apps/chat/frames.js';
import { DeliveredSeqs } from './delivered-seqs.js';

/**
 * A listener type checked bivariantly: the browser's and ws's event classes
 * differ, but both carry the few fields read here, and TypeScript accepts
 * either only when the parameter is declared through a method.
 */
type Listener<E> = { handle(event: E): void }['handle'];

/** The part of the WebSocket API (the browser's or `ws`'s) this client uses. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** Drops the connection without a closing handshake, where the implementation can (ws). */
  terminate?(): void;
  onopen: Listener<unknown> | null;
  onmessage: Listener<{ data: unknown }> | null;
  onclose: Listener<{ code: number; reason: string }> | null;
  onerror: Listener<unknown> | null;
}

export type SocketConstructor = new (url: string) => SocketLike;

type KnownFrameType = 'welcome' | 'chat' | 'private' | 'user_joined' | 'user_left' | 'pong' | 'users' | 'error';

/**
 * The resume fields of protocol v1 on the chat's frames: the room's seq on
 * frames meant for its members, the room's latest seq and the session's token
 * on the welcome. Optional, because a server from before resuming sends none.
 */
type WithResumeFields<F> = F extends { type: 'welcome' }
  ? F & { seq?: number; resumeToken?: string }
  : F extends { type: 'chat' | 'private' | 'user_joined' | 'user_left' }
    ? F & { seq?: number }
    : F;

/** The answer to a connection that resumed: the frames it missed came just before it, `replayed` of them. */
export interface ResumedFrame {
  type: 'resumed';
  clientId: string;
  room: string;
  /** The room's latest seq. */
  seq: number;
  resumeToken: string;
  onlineCount: number;
  replayed: number;
  timestamp: string;
}

/** The resume could not be honoured; an ordinary welcome follows, as for a new connection. */
export interface ResumeFailedFrame {
  type: 'resume_failed';
  code: string;
  message: string;
  timestamp: string;
}

/** A frame from the server, as protocol v1 defines it. */
export type ChatFrame = (WithResumeFields<Extract<ChatServerFrame, { type: KnownFrameType }>> & { timestamp: string }) | ResumedFrame | ResumeFailedFrame;

export type ClientFrame =
  | { type: 'chat'; content: string }
  | { type: 'ping'; timestamp?: string }
  | { type: 'private'; to: string; content: string }
  | { type: 'join'; room: string }
  | { type: 'users' };

export type ConnectionState =
  /** `attempt` is 0 for the first connection, then the reconnect attempt being made. */
  | { status: 'connecting'; attempt: number }
  | { status: 'open' }
  /** Waiting `delayMs` (until `retryAt`, epoch ms) before reconnect `attempt` of `maxAttempts`. */
  | { status: 'reconnecting'; attempt: number; maxAttempts: number; delayMs: number; retryAt: number; code: number; reason: string }
  /** `gaveUp`: the reconnect attempts ran out, as opposed to a close that is final by its code. */
  | { status: 'closed'; code: number; reason: string; gaveUp: boolean };

/** How a connection that asked to resume came out. */
export type ResumeOutcome =
  /**
   * `replayed`: how many frames the server replayed; `delivered`: how many
   * frames the resume handed to the app that it had not had (the replay and
   * any live frame that overtook it, repeats dropped).
   */
  | { resumed: true; clientId: string; room: string; replayed: number; delivered: number }
  /** The server's `resume_failed` code and message; the welcome that follows starts a new session. */
  | { resumed: false; code: string; message: string };

export interface ClientEvents {
  state: ConnectionState;
  /**
   * Every frame, each seq'd frame once: a repeat of a seq already delivered is
   * dropped. Seq'd frames come as they arrive, except while a connection is
   * resuming: those are held until `resumed` and then delivered in seq order.
   */
  frame: ChatFrame;
  resume: ResumeOutcome;
  /** Milliseconds between a ping (heartbeat or asked for) and its pong. */
  rtt: number;
}

export interface ReconnectingClientOptions {
  /** ws:// or wss:// URL of the server; may carry a path and other query parameters (token). */
  url: string;
  WebSocket: SocketConstructor;
  /** Asked for on the first connection; afterwards the one the first welcome assigned. */
  clientId?: string;
  room?: string;
  /** First reconnect delay; each further attempt doubles it. Default 3000. */
  reconnectDelayMs?: number;
  /** Reconnect attempts after a drop before giving up; 0 never reconnects. Default 5. */
  reconnectAttempts?: number;
  /** Ceiling of the doubling. Default 30000. */
  maxReconnectDelayMs?: number;
  /** Each delay is spread uniformly over ±this fraction so clients dropped together do not return together. Default 0.2. */
  jitter?: number;
  /** How often to ping; a ping still unanswered at the next one means the connection is dead. 0 disables. Default 30000. */
  heartbeatIntervalMs?: number;
  /**
   * How long an open connection may go without its welcome before it is given
   * up and replaced. On AWS the welcome comes from a separate invocation that
   * can fail on its own; a socket that is open but unknown to the server would
   * otherwise sit silent forever. 0 disables. Default 10000.
   */
  welcomeTimeoutMs?: number;
  /** Source of randomness for the jitter, in [0, 1). */
  random?: () => number;
}

export const DEFAULT_RECONNECT_DELAY_MS = 3000;
export const DEFAULT_RECONNECT_ATTEMPTS = 5;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 30_000;
export const DEFAULT_WELCOME_TIMEOUT_MS = 10_000;

/** The close code this client uses (and reports) when the heartbeat finds the connection dead. */
export const HEARTBEAT_LOST_CLOSE_CODE = 4000;
/** The close code this client uses (and reports) when an open connection never got its welcome. */
export const NO_WELCOME_CLOSE_CODE = 4002;

/** The close of a connection whose session another connection resumed, and how this client reports it. */
export const SESSION_REPLACED_CLOSE_CODE = CloseCode.sessionReplaced;

/**
 * Closes that mean "do not come back": a normal goodbye, the server's policy
 * (auth, abuse), or another connection having resumed this session (coming
 * back would take the name from it, and it would take it back, forever).
 */
const FINAL_CLOSE_CODES = new Set<number>([1000, 1008, SESSION_REPLACED_CLOSE_CODE]);

/** Frames whose `seq` reports where the room stands rather than numbering the frame itself. */
const SEQ_REPORTING_TYPES = new Set(['welcome', 'resumed']);

const OPEN = 1;

export class InvalidServerUrlError extends CloudsocketError {
  constructor(url: string) {
    super('invalid_url', `server URL must start with ws:// or wss://, got ${JSON.stringify(url.slice(0, 200))}`);
  }
}

/** The delay before reconnect `attempt` (1-based): doubling from `baseMs`, capped, then jittered. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, jitter: number, random: () => number): number {
  const nominal = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.round(nominal * (1 - jitter + 2 * jitter * random()));
}

interface PendingPing {
  sentAt: number;
  resolve(rtt: number): void;
  reject(error: Error): void;
}

export class ReconnectingClient {
  private readonly baseUrl: URL;
  private readonly settings: Required<Omit<ReconnectingClientOptions, 'url' | 'clientId' | 'room'>>;
  private readonly listeners: { [K in keyof ClientEvents]: Set<(value: ClientEvents[K]) => void> } = {
    state: new Set(),
    frame: new Set(),
    resume: new Set(),
    rtt: new Set(),
  };
  private socket: SocketLike | undefined;
  private currentState: ConnectionState = { status: 'closed', code: 1000, reason: 'not connected yet', gaveUp: false };
  private attempt = 0;
  private pendingPings: PendingPing[] = [];
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private welcomeDeadline: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly requestedClientId: string | undefined;
  /** The clientId of the first welcome: who this client is, and asks to be again on every reconnect. */
  private ownClientId: string | undefined;
  private assignedClientId: string | undefined;
  private wantedRoom: string | undefined;
  private latestRtt: number | undefined;
  /**
   * Set by a `closed_for_abuse` or `session_replaced` frame: the close that
   * follows is final and reported as 1008 or 4001 with the frame's message,
   * whatever code it carries (on AWS it is 1000, because DeleteConnection
   * takes no close code).
   */
  private finalClose: { code: number; reason: string } | undefined;
  /** The token of the latest welcome or `resumed`: every reconnect resumes the session with it. */
  private resumeToken: string | undefined;
  /** The current connection asked to resume and has not heard yet how that went. */
  private resuming = false;
  /** Seq'd frames that came while resuming: held until `resumed` puts them in seq order. */
  private held: Array<{ frame: ChatFrame; seq: number }> = [];
  /** What was delivered, by room: the current one and the one left last, whose late frames may still come. */
  private delivered = new Map<string, DeliveredSeqs>();

  constructor(options: ReconnectingClientOptions) {
    this.baseUrl = parseServerUrl(options.url);
    this.requestedClientId = options.clientId || undefined;
    this.wantedRoom = options.room || undefined;
    this.settings = {
      WebSocket: options.WebSocket,
      reconnectDelayMs: options.reconnectDelayMs ?? DEFAULT_RECONNECT_DELAY_MS,
      reconnectAttempts: options.reconnectAttempts ?? DEFAULT_RECONNECT_ATTEMPTS,
      maxReconnectDelayMs: options.maxReconnectDelayMs ?? 30_000,
      jitter: options.jitter ?? 0.2,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
      welcomeTimeoutMs: options.welcomeTimeoutMs ?? DEFAULT_WELCOME_TIMEOUT_MS,
      random: options.random ?? Math.random,
    };
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  get isOpen(): boolean {
    return this.currentState.status === 'open';
  }

  /** The clientId of the current connection's welcome (before any welcome: the one asked for). */
  get clientId(): string | undefined {
    return this.assignedClientId ?? this.identity;
  }

  /**
   * The clientId asked for on every reconnect: the one the first welcome assigned. A
   * reconnect that races the server's cleanup of the dropped connection can be handed
   * a variant (`alice-2`) while the old record lingers; asking for the original again
   * next time, rather than for the variant, keeps the identity from drifting.
   */
  get identity(): string | undefined {
    return this.ownClientId ?? this.requestedClientId;
  }

  /** The room of the last welcome (or the one asked for, before any welcome). */
  get room(): string | undefined {
    return this.wantedRoom;
  }

  get lastRtt(): number | undefined {
    return this.latestRtt;
  }

  /** The highest seq of the current room this client has seen: where a resume continues. */
  get since(): number {
    return this.delivered.get(this.currentRoom)?.highest ?? 0;
  }

  /**
   * The URL the next connection will use: the server URL plus the identity to
   * come back as and, once a welcome gave a token, the session to resume.
   */
  get connectUrl(): string {
    const url = new URL(this.baseUrl.href);
    if (this.identity) url.searchParams.set('clientId', this.identity);
    if (this.wantedRoom) url.searchParams.set('room', this.wantedRoom);
    if (this.resumeToken) {
      url.searchParams.set('resume', this.resumeToken);
      url.searchParams.set('since', String(this.since));
    }
    return url.href;
  }

  /**
   * Whether the current room's seqs put its frames in order. False once two
   * different frames came under one seq: a server whose numbering is not
   * shared by everything that sends (the AWS handlers on their default
   * per-container log). Frames are still delivered, each once; a UI should
   * then show them as they arrive rather than by seq.
   */
  get seqOrderTrusted(): boolean {
    return this.delivered.get(this.currentRoom)?.consistent ?? true;
  }

  private get currentRoom(): string {
    return this.wantedRoom ?? DEFAULT_ROOM;
  }

  on<K extends keyof ClientEvents>(event: K, listener: (value: ClientEvents[K]) => void): () => void {
    this.listeners[event].add(listener);
    return () => void this.listeners[event].delete(listener);
  }

  /** Starts connecting; does nothing while already connected or trying to. */
  connect(): void {
    if (this.currentState.status !== 'closed') return;
    this.attempt = 0;
    this.openSocket();
  }

  /** Says goodbye (1000) and stops reconnecting. */
  close(reason = 'closed by client'): void {
    if (this.currentState.status === 'closed') return;
    clearTimeout(this.retryTimer);
    const socket = this.socket;
    this.dropSocket();
    socket?.close(1000, reason);
    this.end({ status: 'closed', code: 1000, reason, gaveUp: false });
  }

  /** Sends a frame when connected; false when there is no open connection to send it on. */
  send(frame: ClientFrame): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  chat(content: string): boolean {
    return this.send({ type: 'chat', content });
  }

  privateMessage(to: string, content: string): boolean {
    return this.send({ type: 'private', to, content });
  }

  join(room: string): boolean {
    return this.send({ type: 'join', room });
  }

  requestUsers(): boolean {
    return this.send({ type: 'users' });
  }

  /** Resolves with the round-trip time of a ping; rejects when not connected or the connection ends first. */
  ping(): Promise<number> {
    return new Promise((resolve, reject) => {
      const sentAt = now();
      if (!this.send({ type: 'ping', timestamp: new Date().toISOString() })) return reject(new Error('not connected'));
      this.pendingPings.push({ sentAt, resolve, reject });
    });
  }

  private openSocket(): void {
    this.finalClose = undefined;
    this.resuming = this.resumeToken !== undefined;
    if (!this.resuming) this.delivered = new Map([[this.currentRoom, new DeliveredSeqs()]]);
    this.setState({ status: 'connecting', attempt: this.attempt });
    let socket: SocketLike;
    try {
      socket = new this.settings.WebSocket(this.connectUrl);
    } catch (error) {
      // Refused before any network traffic (a browser's mixed-content rule, say): retrying cannot help.
      const reason = `cannot connect: ${error instanceof Error ? error.message : String(error)}`;
      return this.end({ status: 'closed', code: 1006, reason, gaveUp: false });
    }
    this.socket = socket;
    socket.onopen = () => {
      this.setState({ status: 'open' });
      this.startHeartbeat();
      this.awaitWelcome();
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => this.lost(event.code, event.reason);
    // A failed connection reports its error and then closes; the close decides what happens.
    socket.onerror = () => {};
  }

  private receive(data: unknown): void {
    const frame = parseServerFrame(data);
    if (!frame) return;
    const seq = frameSeq(frame);
    if (seq !== undefined) {
      if (!this.resuming) return void this.deliver(frame, seq);
      this.held.push({ frame, seq });
      // A replay under way shows the server knows this connection; a long one must not run into the deadline.
      this.awaitWelcome();
      return;
    }
    if (frame.type === 'welcome') {
      this.welcomed(frame);
    } else if (frame.type === 'resumed') {
      return this.resumed(frame);
    } else if (frame.type === 'resume_failed') {
      return this.resumeFailed(frame);
    } else if (frame.type === 'error' && frame.code === ClosedForAbuseError.code) {
      this.finalClose = { code: CloseCode.policyViolation, reason: frame.message };
    } else if (frame.type === 'error' && frame.code === SessionReplacedError.code) {
      this.finalClose = { code: SESSION_REPLACED_CLOSE_CODE, reason: frame.message };
    } else if (frame.type === 'pong') {
      const pending = this.pendingPings.shift();
      if (pending) {
        const rtt = Math.round(now() - pending.sentAt);
        this.latestRtt = rtt;
        pending.resolve(rtt);
        this.emit('rtt', rtt);
      }
    }
    this.emit('frame', frame);
  }

  private welcomed(frame: Extract<ChatFrame, { type: 'welcome' }>): void {
    clearTimeout(this.welcomeDeadline);
    // A server that predates resuming answers a resume with a plain welcome: a new session.
    if (this.resuming) this.startSession();
    this.ownClientId ??= frame.clientId;
    this.assignedClientId = frame.clientId;
    const left = this.currentRoom;
    const leftSeqs = this.delivered.get(left);
    this.wantedRoom = frame.room;
    this.resumeToken = frame.resumeToken;
    const seqs = this.delivered.get(frame.room) ?? new DeliveredSeqs();
    if (typeof frame.seq === 'number') seqs.advanceTo(frame.seq);
    this.delivered = new Map([[frame.room, seqs]]);
    if (leftSeqs && left !== frame.room) this.delivered.set(left, leftSeqs);
    // Only a welcomed connection counts as a success; one that opens and dies at once keeps backing off.
    this.attempt = 0;
  }

  private resumed(frame: ResumedFrame): void {
    clearTimeout(this.welcomeDeadline);
    this.resuming = false;
    // A room whose numbering started over (its log lost with a restart): what was delivered says nothing about the seqs to come.
    if (frame.seq < (this.delivered.get(frame.room)?.highest ?? 0)) this.delivered = new Map();
    if (!this.delivered.has(frame.room)) this.delivered.set(frame.room, new DeliveredSeqs());
    const delivered = this.releaseHeld();
    this.delivered.get(frame.room)!.advanceTo(frame.seq);
    this.ownClientId ??= frame.clientId;
    this.assignedClientId = frame.clientId;
    this.wantedRoom = frame.room;
    this.resumeToken = frame.resumeToken;
    this.attempt = 0;
    this.emit('frame', frame);
    this.emit('resume', { resumed: true, clientId: frame.clientId, room: frame.room, replayed: frame.replayed, delivered });
  }

  private resumeFailed(frame: ResumeFailedFrame): void {
    this.resuming = false;
    // The welcome that follows names who this client is from now on (a numbered variant, when the name was taken meanwhile).
    this.ownClientId = undefined;
    this.emit('frame', frame);
    this.emit('resume', { resumed: false, code: frame.code, message: frame.message });
    this.startSession();
  }

  /** Forgets the old session's seqs (the server starts this connection afresh) and hands over what was held for it. */
  private startSession(): void {
    this.resuming = false;
    this.delivered = new Map([[this.currentRoom, new DeliveredSeqs()]]);
    this.releaseHeld();
  }

  /** Delivers the held frames in seq order, each once; returns how many were new. */
  private releaseHeld(): number {
    const held = this.held.sort((a, b) => a.seq - b.seq);
    this.held = [];
    let delivered = 0;
    for (const { frame, seq } of held) if (this.deliver(frame, seq)) delivered += 1;
    return delivered;
  }

  /** Emits a seq'd frame unless it was delivered already; true when it was emitted. */
  private deliver(frame: ChatFrame, seq: number): boolean {
    const room = 'room' in frame && typeof frame.room === 'string' ? frame.room : this.currentRoom;
    // A frame of a room this client has no record of (one it is only joining) cannot be checked; it is new.
    const seqs = this.delivered.get(room);
    if (seqs?.add(seq, frameKey(frame)) === 'repeat') return false;
    this.emit('frame', frame);
    return true;
  }

  private startHeartbeat(): void {
    const interval = this.settings.heartbeatIntervalMs;
    if (interval <= 0) return;
    this.heartbeat = setInterval(() => {
      const oldest = this.pendingPings[0];
      if (oldest && now() - oldest.sentAt >= interval) {
        // No close frame will come from a peer that vanished; stop waiting for one.
        this.abandon(HEARTBEAT_LOST_CLOSE_CODE, 'no answer to heartbeat');
        return;
      }
      this.ping().catch(() => {});
    }, interval);
  }

  private awaitWelcome(): void {
    const timeoutMs = this.settings.welcomeTimeoutMs;
    if (timeoutMs <= 0) return;
    clearTimeout(this.welcomeDeadline);
    this.welcomeDeadline = setTimeout(() => this.abandon(NO_WELCOME_CLOSE_CODE, 'no welcome from the server'), timeoutMs);
  }

  /** Gives up on a socket that is open but useless, closing it without waiting for the peer. */
  private abandon(code: number, reason: string): void {
    const socket = this.socket;
    this.dropSocket();
    if (socket?.terminate) socket.terminate();
    else socket?.close(code, reason);
    this.lost(code, reason);
  }

  /** Forgets the current socket: its late events must not touch the state any more. */
  private dropSocket(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    clearTimeout(this.welcomeDeadline);
    this.welcomeDeadline = undefined;
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      // No-ops rather than null: ws throws on an 'error' event nobody listens to.
      socket.onopen = () => {};
      socket.onmessage = () => {};
      socket.onclose = () => {};
      socket.onerror = () => {};
    }
    const pings = this.pendingPings;
    this.pendingPings = [];
    for (const ping of pings) ping.reject(new Error('connection closed'));
  }

  private lost(code: number, reason: string): void {
    this.dropSocket();
    if (this.finalClose) return this.end({ status: 'closed', ...this.finalClose, gaveUp: false });
    if (FINAL_CLOSE_CODES.has(code)) return this.end({ status: 'closed', code, reason, gaveUp: false });
    const { reconnectAttempts, reconnectDelayMs, maxReconnectDelayMs, jitter, random } = this.settings;
    if (this.attempt >= reconnectAttempts) return this.end({ status: 'closed', code, reason, gaveUp: reconnectAttempts > 0 });
    this.attempt += 1;
    const delayMs = backoffDelay(this.attempt, reconnectDelayMs, maxReconnectDelayMs, jitter, random);
    this.retryTimer = setTimeout(() => this.openSocket(), delayMs);
    this.setState({ status: 'reconnecting', attempt: this.attempt, maxAttempts: reconnectAttempts, delayMs, retryAt: Date.now() + delayMs, code, reason });
  }

  /** Closes for good: frames held for a resume that will not come are delivered first, in order. */
  private end(state: Extract<ConnectionState, { status: 'closed' }>): void {
    this.resuming = false;
    this.releaseHeld();
    this.setState(state);
  }

  private setState(state: ConnectionState): void {
    this.currentState = state;
    this.emit('state', state);
  }

  private emit<K extends keyof ClientEvents>(event: K, value: ClientEvents[K]): void {
    for (const listener of [...this.listeners[event]]) listener(value);
  }
}

function parseServerUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new InvalidServerUrlError(url);
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') throw new InvalidServerUrlError(url);
  return parsed;
}

/** A server frame, or undefined for anything that is not a JSON object with a string `type`. */
export function parseServerFrame(data: unknown): ChatFrame | undefined {
  if (typeof data !== 'string') return undefined;
  try {
    const value: unknown = JSON.parse(data);
    if (value && typeof value === 'object' && !Array.isArray(value) && typeof (value as { type?: unknown }).type === 'string') {
      return value as ChatFrame;
    }
  } catch {
    // Not JSON: nothing in protocol v1 sends that.
  }
  return undefined;
}

/** The seq that numbers a frame of a room's stream; undefined for frames outside it (replies, and the welcome and `resumed` reports). */
function frameSeq(frame: ChatFrame): number | undefined {
  if (SEQ_REPORTING_TYPES.has(frame.type)) return undefined;
  const seq = (frame as { seq?: unknown }).seq;
  return typeof seq === 'number' && Number.isSafeInteger(seq) ? seq : undefined;
}

/** What tells one frame from another under the same seq: a replay keeps the type, the id or sender, and the original timestamp. */
function frameKey(frame: ChatFrame): string {
  const fields = frame as { id?: unknown; clientId?: unknown; timestamp?: unknown };
  const who = typeof fields.id === 'string' ? fields.id : typeof fields.clientId === 'string' ? fields.clientId : '';
  return `${frame.type}\u0000${who}\u0000${String(fields.timestamp)}`;
}

/** Monotonic milliseconds where available, so a clock change cannot bend a round-trip time. */
function now(): number {
  return typeof performance === 'undefined' ? Date.now() : performance.now();
}
