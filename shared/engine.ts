/**
 * The protocol core: turns platform events (a handshake, a greeting, a text
 * frame, a disconnect) into registry updates and frames for the transport.
 * Both targets drive this one class; they differ only in the registry and
 * transport they hand it and in when they call `greet` (at once on CloudBase,
 * from an asynchronous invocation on AWS, where `$connect` cannot send).
 *
 * Every frame delivered to a room's members is numbered by the room's log
 * (`seq`) and kept there, so a client that lost its connection can resume:
 * take its clientId back with its token and be replayed what it missed
 * (protocol.md, "Sequence numbers and resuming").
 */
import { randomBytes } from 'node:crypto';
import type { Backplane, BackplaneMessage, RoomMember } from './backplane.js';
import type { App, BroadcastOptions, Context, FrameSource, HandshakeRequest, PresenceEvent, Route } from './app.js';
import { forEachLimited } from './concurrency.js';
import {
  ClosedForAbuseError,
  CloseCode,
  ForbiddenOriginError,
  HandshakeError,
  InvalidClientIdError,
  InvalidCloseError,
  InvalidIdentityError,
  InvalidMessageError,
  InvalidRoomError,
  InvalidRoomHandshakeError,
  InvalidSinceError,
  ProtocolError,
  RateLimitedError,
  ResumeError,
  ResumeGapError,
  ResumeNameTakenError,
  ResumeTokenExpiredError,
  ResumeTokenInvalidError,
  ResumeUnsupportedError,
  ResumeWrongRoomError,
  SessionReplacedError,
  UnauthorizedError,
  UnavailableError,
  UnknownTypeError,
} from './errors.js';
import { silentLogger, type Logger } from './log.js';
import { MemoryRoomLog } from './memory-room-log.js';
import { nameKey, normalizeName } from './names.js';
import { DEFAULT_ROOM, encodeFrame, isValidName, parseFrame, type JsonObject, type ServerFrame } from './protocol.js';
import { freshRateState } from './rate-limit.js';
import type { ConnectionRecord, ConnectionRegistry } from './registry.js';
import { BUILT_RESUME_SECRET, ResumeTokens, type ResumeClaims } from './resume-token.js';
import { withSeq, type LogEntryInput, type RoomLog } from './room-log.js';
import { MemoryStateStore } from './memory-state.js';
import { roomStateOf, type StateStore } from './room-state.js';
import { resolveRoutes } from './routes.js';
import { DEFAULT_CORE_SETTINGS, normalizeOrigin, type CoreSettings } from './settings.js';
import type { SendOutcome, Transport } from './transport.js';

export interface EngineOptions {
  app: App;
  registry: ConnectionRegistry;
  transport: Transport;
  settings?: Partial<CoreSettings>;
  logger?: Logger;
  /** Epoch ms; injectable so liveness can be reasoned about in tests. */
  clock?: () => number;
  /** Names this instance in the records it admits; default a random id. */
  instanceId?: string;
  /**
   * Reaches connections other instances own. Absent, every connection is
   * this instance's (one CloudBase instance, or AWS where the management API
   * reaches any connection from anywhere).
   */
  backplane?: Backplane;
  /**
   * Numbers and keeps the frames of every room. Default: one in this
   * process's memory, bounded by `settings.roomLog`; instances that share
   * rooms must share a log too.
   */
  log?: RoomLog;
  /**
   * Signs resume tokens; every instance that may see a client's resume must
   * have the same. Default `settings.resumeSecret`, else the secret
   * `cloudsocket build` wrote into the bundle, else one made for this process.
   */
  resumeSecret?: string;
  /** Where `ctx.state` lives; default this process's memory, which only a single process may use. */
  state?: StateStore;
}

/**
 * What the greeting of a connection must know of its admission. Plain data,
 * so it can travel with the connection to where it is greeted (the welcome
 * function on AWS).
 */
export interface Greeting {
  /** The connection resumed its session: the room's log after this seq is replayed to it before `resumed`. */
  since?: number;
  /**
   * It took its clientId from its own stale connection, which the room never
   * saw leave: no `user_joined` for it, and no `onConnect`.
   */
  continued?: boolean;
  /** Why the resume it asked for was not honoured; told in `resume_failed` before its welcome. */
  resumeFailed?: { code: string; message: string };
}

export type Admission = { ok: true; record: ConnectionRecord; greeting: Greeting } | { ok: false; error: HandshakeError };

/** How many suffixed names (alice-2 … alice-9) are tried before a random suffix. */
const NUMBERED_CANDIDATES = 8;

/**
 * How long after its admission a connection may still be opening. API Gateway
 * answers PostToConnection with 410 for a connection whose `$connect` has not
 * returned yet just as for one that is gone, and `$connect` runs for at most
 * its 29 s integration timeout; only after that does 'gone' mean gone.
 */
const OPENING_WINDOW_MS = 30_000;

/**
 * How long a frame waits for the one its connection sent before it. Frames
 * of a connection are handled in order (a chat after a `join` goes to the new
 * room), but a handler that hangs must not hold back the rest of its
 * connection's frames forever: past this, the next one goes ahead.
 */
export const FRAME_ORDER_WAIT_MS = 10_000;

/**
 * An identity is stored with its connection on every target, and on AWS
 * its bytes are part of every write of the connection's item (one write unit per KiB).
 */
export const MAX_IDENTITY_BYTES = 4096;

/**
 * `identity` as every registry holds it: its JSON, read back, so a Date is a
 * string and an undefined field absent on CloudBase as on AWS.
 */
function storableIdentity(identity: unknown): JsonObject {
  if (identity === undefined) return {};
  if (identity === null || typeof identity !== 'object' || Array.isArray(identity)) throw new InvalidIdentityError('that is not an object');
  let json: string;
  try {
    json = JSON.stringify(identity);
  } catch (error) {
    throw new InvalidIdentityError(`that is not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > MAX_IDENTITY_BYTES) throw new InvalidIdentityError(`of ${bytes} bytes of JSON (at most ${MAX_IDENTITY_BYTES})`);
  return JSON.parse(json) as JsonObject;
}

/** A close frame's reason is at most 123 bytes (RFC 6455 5.5: 125 of payload, 2 of them the code). */
const MAX_CLOSE_REASON_BYTES = 123;

/**
 * The codes a server may close with (RFC 6455 7.4: 1000-1003 and 1007-1014
 * defined, 1004-1006 never sent; 3000-4999 for libraries and apps), and a
 * reason that fits the frame: checked alike on every target, since CloudBase's
 * socket would refuse what API Gateway's DeleteConnection never sees.
 */
function checkClose(code: unknown, reason: unknown): void {
  const defined = typeof code === 'number' && Number.isInteger(code) && ((code >= 1000 && code <= 1014 && ![1004, 1005, 1006].includes(code)) || (code >= 3000 && code <= 4999));
  if (!defined) throw new InvalidCloseError(`${String(code)} is not a close code a server may send (1000-1003, 1007-1014, 3000-4999)`);
  if (typeof reason !== 'string') throw new InvalidCloseError('the reason must be a string');
  const bytes = Buffer.byteLength(reason, 'utf8');
  if (bytes > MAX_CLOSE_REASON_BYTES) throw new InvalidCloseError(`the reason is ${bytes} bytes of UTF-8 (at most ${MAX_CLOSE_REASON_BYTES})`);
}

/** `since` as a client may send it: a seq, digits only, within what a number holds exactly. */
const SINCE_PATTERN = /^\d{1,16}$/;

/** A frame numbered by its room's log: its seq, and the text every recipient gets. */
interface Logged {
  seq: number;
  data: string;
}

/** Whom a logged frame is for: the log's `to` and `except`, both nameKeys. */
type LogAudience = Pick<LogEntryInput, 'to' | 'except'>;

/** Who is in the room a connection arrives in, and the `user_joined` for them when they are to be told. */
interface Arrival {
  onlineCount: number;
  others: RoomMember[] | undefined;
  /** Whether the arrival is news: false for a connection that continues its session. */
  announced: boolean;
  /** Numbered before the newcomer is greeted, so the seq it is given is past its own user_joined. */
  joined: Logged | undefined;
}

export class Engine {
  readonly settings: CoreSettings;
  readonly instanceId: string;
  private readonly backplane: Backplane | undefined;
  private readonly app: App;
  private readonly routes: Readonly<Record<string, Route<any>>>;
  private readonly registry: ConnectionRegistry;
  private readonly transport: Transport;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly log: RoomLog;
  private readonly tokens: ResumeTokens;
  /**
   * Live frames for connections whose replay is under way, held back so
   * they follow the replay instead of overtaking it. Only this engine's
   * deliveries pass through here, so it is whole where this engine owns the
   * socket; empty nearly always, which is all a broadcast checks.
   */
  private readonly held = new Map<string, string[]>();
  private readonly state: StateStore;
  /** Connections that could not be reached within their opening window, with their admission time. */
  private readonly opening = new Map<string, number>();
  /** Per connection with a frame under way, the end of its latest one: the next frame starts after it. */
  private readonly inbox = new Map<string, Promise<void>>();

  constructor(options: EngineOptions) {
    this.app = options.app;
    this.routes = resolveRoutes(options.app);
    this.registry = options.registry;
    this.transport = options.transport;
    this.settings = { ...DEFAULT_CORE_SETTINGS, ...options.settings };
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? Date.now;
    this.instanceId = options.instanceId ?? randomBytes(8).toString('hex');
    this.backplane = options.backplane;
    this.log =
      options.log ?? new MemoryRoomLog({ ...this.settings.roomLog, numberingKeptMs: this.settings.resumeTokenTtlMs, clock: this.clock });
    this.tokens = new ResumeTokens(options.resumeSecret ?? this.settings.resumeSecret ?? BUILT_RESUME_SECRET ?? randomBytes(32).toString('base64url'));
    this.state = options.state ?? new MemoryStateStore({ ttlMs: this.settings.roomStateTtlMs, clock: this.clock });
  }

  /** Whether a record's socket is another instance's; checked before every send, so it is one comparison. */
  private ownedElsewhere(owner: string | undefined): owner is string {
    return this.backplane !== undefined && owner !== undefined && owner !== this.instanceId;
  }

  /**
   * What another instance asked of this one's sockets. Sockets that turn out
   * gone are forgotten here, by their owner: only it can tell.
   */
  async handleBackplaneMessage(message: BackplaneMessage): Promise<void> {
    if (message.kind === 'deliver') {
      await this.deliverEncoded(message.connectionIds, message.data);
    } else if (message.kind === 'room') {
      const own = this.registry.ownRoomIds?.(message.room) ?? [];
      await this.deliverEncoded(message.except ? own.filter((id) => id !== message.except) : own, message.data);
    } else {
      await this.transport.close(message.connectionId, message.code, message.reason);
    }
  }

  /**
   * Decides a handshake and, when it is accepted, registers the connection
   * under a clientId nobody else holds: the one its resume token names, when
   * it resumes and that name is its session's. Nothing is sent: on AWS the
   * socket cannot receive until this has returned. The greeting goes to
   * `greet`.
   */
  async admit(request: HandshakeRequest): Promise<Admission> {
    try {
      this.checkOrigin(request.headers.origin);
      const requestedId = nameFrom(request.query.clientId);
      if (requestedId !== undefined && !isValidName(requestedId)) throw new InvalidClientIdError();
      const requestedRoom = nameFrom(request.query.room);
      if (requestedRoom !== undefined && !isValidName(requestedRoom)) throw new InvalidRoomHandshakeError();
      const resume = resumeRequestFrom(request.query);

      let identity: JsonObject = {};
      let clientId = requestedId;
      let authenticatedId: string | undefined;
      if (this.app.authenticate) {
        const decision = await this.app.authenticate(request);
        if (!decision.allow) throw new UnauthorizedError(decision.reason);
        identity = storableIdentity(decision.identity);
        if (decision.clientId !== undefined) {
          clientId = authenticatedId = normalizeName(decision.clientId);
          if (!isValidName(clientId)) throw new InvalidClientIdError();
        }
      }

      const now = this.clock();
      const claimed = resume && this.checkResumeToken(resume.token, requestedRoom, authenticatedId, now);
      const claims = claimed instanceof ResumeError ? undefined : claimed;
      const room = claims?.room ?? requestedRoom ?? DEFAULT_ROOM;
      const base: ConnectionRecord = {
        connectionId: request.connectionId,
        clientId: '',
        nameKey: '',
        room,
        connectedAt: now,
        lastActiveAt: now,
        sourceIp: request.sourceIp,
        identity,
        rate: freshRateState(now),
        owner: this.instanceId,
        // A first connection's session is named after it: unique, and a string its record holds already.
        session: request.connectionId,
      };
      let failure = claimed instanceof ResumeError ? claimed : undefined;
      if (claims && resume) {
        const record = { ...base, clientId: claims.clientId, nameKey: nameKey(claims.clientId), session: claims.session };
        const taken = await this.takeSessionBack(record);
        if (!(taken instanceof ResumeError)) {
          this.logger.info('resume', { connectionId: record.connectionId, clientId: record.clientId, room, since: resume.since, continued: taken });
          // A log that started over since the token was made cannot say what came after `since`.
          const greeting: Greeting = claims.logEpoch === this.log.epoch ? { since: resume.since } : { resumeFailed: describe(new ResumeGapError()) };
          if (taken) greeting.continued = true;
          return { ok: true, record, greeting };
        }
        failure = taken;
        // Its session's name is held by someone else: it asks for that name as anyone would, and gets a variant.
        clientId = claims.clientId;
      }
      if (failure) this.logger.info('resume_failed', { connectionId: request.connectionId, code: failure.code });
      for (const candidate of clientIdCandidates(clientId)) {
        // A taken key (the same name, or one that looks like it) moves on to the next variant.
        const record = { ...base, clientId: candidate, nameKey: nameKey(candidate) };
        if (await this.registry.add(record)) {
          this.logger.info('connect', { connectionId: record.connectionId, clientId: candidate, room });
          return { ok: true, record, greeting: failure ? { resumeFailed: describe(failure) } : {} };
        }
      }
      throw new HandshakeError(503, 'client_id_unavailable', 'could not assign a clientId, try again');
    } catch (error) {
      if (error instanceof HandshakeError) {
        this.logger.info('handshake_refused', { connectionId: request.connectionId, status: error.status, code: error.code });
        return { ok: false, error };
      }
      throw error;
    }
  }

  /** The token's claims when it may resume here; else why not. */
  private checkResumeToken(token: string, requestedRoom: string | undefined, authenticatedId: string | undefined, now: number): ResumeClaims | ResumeError {
    const checked = this.tokens.verify(token, now);
    if (!checked.ok) return checked.reason === 'expired' ? new ResumeTokenExpiredError() : new ResumeTokenInvalidError();
    const { claims } = checked;
    if (requestedRoom !== undefined && requestedRoom !== claims.room) return new ResumeWrongRoomError();
    if (authenticatedId !== undefined && authenticatedId !== claims.clientId) {
      return new ResumeTokenInvalidError('the resume token names another clientId than authentication gives');
    }
    return claims;
  }

  /**
   * Registers `record` under its session's clientId: free, it is added; held
   * by a stale connection of the same session, that one is replaced (true)
   * and told so. Held by anyone else, the name is not this connection's.
   */
  private async takeSessionBack(record: ConnectionRecord): Promise<boolean | ResumeError> {
    // Each round loses only to a change made meanwhile (the holder left, or another resume won); three are plenty.
    for (let attempt = 0; attempt < 3; attempt++) {
      const holder = await this.registry.findByClientId(record.clientId);
      if (!holder) {
        if (await this.registry.add(record)) return false;
        continue;
      }
      if (holder.session !== record.session) return new ResumeNameTakenError();
      if (!this.registry.replace) return new ResumeUnsupportedError();
      // The room was told of this session when its stale connection was greeted; it is to hear when the session ends.
      const stale = await this.registry.replace(holder.greeted ? { ...record, greeted: true } : record, holder.connectionId);
      if (stale) {
        await this.retire(stale);
        return true;
      }
    }
    return new ResumeNameTakenError();
  }

  /**
   * Tells a connection replaced by a resume of its session why it is being
   * closed, and closes it (4001). Straight to its socket, past any replay it
   * is itself being given. Its later disconnect finds no record, so the room
   * hears nothing of it.
   */
  private async retire(stale: ConnectionRecord): Promise<void> {
    this.logger.info('session_replaced', { connectionId: stale.connectionId, clientId: stale.clientId });
    const { code, message } = new SessionReplacedError();
    await this.sendNow(stale, encodeFrame({ type: 'error', code, message }, new Date(this.clock())));
    await this.close(stale, CloseCode.sessionReplaced, 'session replaced');
  }

  /**
   * Greets an admitted connection: its welcome and `user_joined` to its
   * room, or, when it resumed, the frames it missed and `resumed`. Frames
   * other events send it meanwhile are held back until the greeting is out.
   */
  async greet(connectionId: string, greeting: Greeting = {}): Promise<void> {
    const { since, continued = false } = greeting;
    if (since !== undefined) this.held.set(connectionId, []);
    try {
      const record = this.registry.markGreeted ? await this.registry.markGreeted(connectionId) : await this.registry.get(connectionId);
      // Admitted, then gone from the registry before it opened: a resume of its session took its name, or it left.
      if (!record) return await this.retire(orphan(connectionId, this.instanceId));
      const arrival = await this.arrive(record, !continued);
      const replayed = since !== undefined && (await this.replay(record, since, arrival));
      if (!replayed) {
        const failure = since !== undefined ? describe(new ResumeGapError()) : greeting.resumeFailed;
        if (failure) await this.sendNow(record, encodeFrame({ type: 'resume_failed', ...failure }, new Date(this.clock())));
        await this.sendNow(record, await this.welcome(record, arrival.onlineCount, arrival.joined));
        await this.flushHeld(record, 0);
      }
      if (arrival.joined) await this.deliverToMembers(arrival.others!, arrival.joined.data);
      // A connection that continues its session was never gone for the app either: it saw no onDisconnect.
      if (arrival.announced) await this.app.onConnect?.(this.context(record));
    } finally {
      this.held.delete(connectionId);
    }
  }

  /**
   * Sends the frames of the room's log after `since` meant for this
   * connection, then `resumed`, then what was held back meanwhile and is
   * newer. False, with nothing sent, when the log no longer reaches `since`.
   */
  private async replay(record: ConnectionRecord, since: number, arrival: Arrival): Promise<boolean> {
    const read = await this.log.read(record.room, since, this.clock());
    // A seq past the log's latest came from a log that was lost: what followed it is unknown.
    if (!read.ok || since > read.latest) return false;
    let replayed = 0;
    for (const entry of read.entries) {
      // As live: a private frame only to its member, and none to the member a frame excepted (its own user_joined, for one).
      if ((entry.to !== undefined && entry.to !== record.nameKey) || entry.except === record.nameKey) continue;
      if ((await this.sendNow(record, withSeq(entry.data, entry.seq))) === 'gone') return true;
      replayed++;
    }
    const resumed: ServerFrame = {
      type: 'resumed',
      clientId: record.clientId,
      room: record.room,
      seq: read.latest,
      resumeToken: this.tokenFor(record),
      onlineCount: arrival.onlineCount,
      replayed,
    };
    if ((await this.sendNow(record, encodeFrame(resumed, new Date(this.clock())))) === 'gone') return true;
    await this.flushHeld(record, read.latest);
    return true;
  }

  /**
   * Sends the frames held back for a connection, in the order they came,
   * skipping those with a seq it has already been sent; frames that arrive
   * while this runs join the end. The hold ends with the last one.
   */
  private async flushHeld(record: ConnectionRecord, sentUpTo: number): Promise<void> {
    const held = this.held.get(record.connectionId);
    if (!held) return;
    for (let index = 0; index < held.length; index++) {
      const data = held[index]!;
      if ((seqOf(data) ?? Infinity) <= sentUpTo) continue;
      if ((await this.sendNow(record, data)) === 'gone') break;
    }
    this.held.delete(record.connectionId);
  }

  /**
   * Handles one text frame, after the frames its connection sent before it
   * (each waited for at most FRAME_ORDER_WAIT_MS). Protocol errors go back to the sender as `error`
   * frames. Anything else (the registry unreachable, a handler's bug) is
   * logged, answered to the sender with `unavailable`, and rethrown for the
   * adapter (a Lambda answers 500; the CloudBase target keeps the connection).
   * `receivedAt` (epoch ms, default now): when the platform got the frame. The
   * rate limit counts the frame from then (see consumeToken), so frames that
   * waited for the server (a queued or cold-started Lambda) are not taken for
   * a burst.
   */
  async receive(connectionId: string, text: string, receivedAt?: number): Promise<void> {
    const before = this.inbox.get(connectionId);
    // A frame that waits for the one before still counts for the rate limit from when it came.
    const arrivedAt = before ? (receivedAt ?? this.clock()) : receivedAt;
    const handled = before ? this.after(before, connectionId).then(() => this.handleFrame(connectionId, text, arrivedAt)) : this.handleFrame(connectionId, text, receivedAt);
    const done = handled.then(ignore, ignore);
    this.inbox.set(connectionId, done);
    try {
      await handled;
    } finally {
      if (this.inbox.get(connectionId) === done) this.inbox.delete(connectionId);
    }
  }

  /** Resolves when `before` has, or after FRAME_ORDER_WAIT_MS if it has not by then. */
  private after(before: Promise<void>, connectionId: string): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.logger.warn('frame_order_wait_exceeded', { connectionId, waitedMs: FRAME_ORDER_WAIT_MS });
        resolve();
      }, FRAME_ORDER_WAIT_MS);
      timer.unref?.();
    });
    return Promise.race([before, waited]).finally(() => clearTimeout(timer));
  }

  private async handleFrame(connectionId: string, text: string, receivedAt?: number): Promise<void> {
    // Set once the frame reaches the app, so the log says whose code failed.
    let handlerOf: string | undefined;
    try {
      const now = this.clock();
      const at = receivedAt !== undefined && Number.isFinite(receivedAt) ? Math.min(receivedAt, now) : now;
      const touched = await this.registry.touch(connectionId, now, this.settings.rateLimit, at);
      if (!touched) {
        this.logger.warn('frame_from_unknown_connection', { connectionId });
        return;
      }
      const { record, admitted } = touched;
      const ctx = this.context(record);
      if (!admitted) {
        const { closeAfter } = this.settings.rateLimit;
        if (record.rate.strikes >= closeAfter) {
          if (record.rate.strikes === closeAfter) this.logger.warn('rate_limit_close', { connectionId, clientId: record.clientId });
          // Every frame over the threshold says why before it closes: frames are handled
          // concurrently (one Lambda invocation each), and whichever closes first must have said it.
          await this.sendError(record, new ClosedForAbuseError());
          await ctx.close(CloseCode.policyViolation, 'rate limit exceeded');
        } else {
          await this.sendError(record, new RateLimitedError());
        }
        return;
      }
      try {
        handlerOf = record.clientId;
        await this.dispatch(ctx, text);
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        this.logger.debug('protocol_error', { connectionId, code: error.code });
        await this.sendError(record, error);
      }
    } catch (error) {
      if (handlerOf === undefined) this.logger.error('frame_failed', { connectionId, error });
      else this.logger.error('handler_failed', { connectionId, clientId: handlerOf, error });
      await this.tellUnavailable(connectionId);
      throw error;
    }
  }

  /** Forgets a connection and tells its room. Safe to call twice; the second call does nothing. */
  async disconnect(connectionId: string): Promise<void> {
    const record = await this.registry.remove(connectionId);
    if (!record) return;
    this.logger.info('disconnect', { connectionId, clientId: record.clientId, room: record.room });
    const ctx = this.context(record);
    // Never greeted: its room was not told it came (and the app saw no onConnect), so neither hears it went.
    if (this.registry.markGreeted && !record.greeted) return;
    await this.announceDeparture(record.clientId, record.room);
    await this.app.onDisconnect?.(ctx);
  }

  /**
   * Tells the members of `room` on other instances that one of this
   * instance's clients left it or came into it, when they could not be told
   * at the time (the backplane was away); this instance's own members were.
   * A change undone since (the client is no longer in the room it came into,
   * or back in the one it left) is not told.
   */
  async announceToOtherInstances(change: { type: 'user_left' | 'user_joined'; connectionId: string; clientId: string; room: string }): Promise<void> {
    if (!this.backplane) return;
    const { type, connectionId, clientId, room } = change;
    const inRoomNow = (await this.registry.get(connectionId))?.room === room;
    if (inRoomNow !== (type === 'user_joined')) return;
    const { onlineCount, others } = await this.presence(room, connectionId);
    const elsewhere = others?.filter((member) => this.ownedElsewhere(member.owner)) ?? [];
    if (elsewhere.length === 0) return;
    const frame = this.presenceFrame(type, type === 'user_left' ? 'left' : 'joined', clientId, room, onlineCount);
    const { data } = await this.logged(room, frame, { except: nameKey(clientId) });
    await this.deliverToMembers(elsewhere, data);
  }

  /**
   * Closes (1001) and forgets every connection of this instance idle for
   * longer than heartbeatTimeout. A shared registry lists every instance's;
   * each owner sweeps its own, as only it can close them and tell they are gone.
   */
  async sweepIdle(): Promise<number> {
    const listed = await this.registry.listIdle(this.clock() - this.settings.heartbeatTimeoutMs);
    const idle = listed.filter((record) => !this.ownedElsewhere(record.owner));
    for (const record of idle) {
      this.logger.info('idle_timeout', { connectionId: record.connectionId, clientId: record.clientId });
      await this.transport.close(record.connectionId, CloseCode.goingAway, 'idle timeout');
      await this.disconnect(record.connectionId);
    }
    return idle.length;
  }

  private async dispatch(ctx: Context, text: string): Promise<void> {
    const frame = parseFrame(text);
    if (frame.kind === 'command' && Object.hasOwn(this.routes, frame.name)) {
      const route = this.routes[frame.name]!;
      await route.handle(ctx, route.parse(frame.fields));
      return;
    }
    if (this.app.onMessage) {
      await this.app.onMessage(ctx, frame);
      return;
    }
    if (frame.kind === 'command') throw new UnknownTypeError(frame.name);
    throw new InvalidMessageError('this app takes JSON commands only');
  }

  private checkOrigin(origin: string | undefined): void {
    const allowed = this.settings.allowedOrigins;
    // Non-browser clients send no Origin; the rule exists to stop other sites' pages.
    if (!allowed || origin === undefined) return;
    if (!allowed.has(normalizeOrigin(origin))) throw new ForbiddenOriginError(origin);
  }

  /**
   * Who is in the room for a newcomer, with the `user_joined` they are to
   * get. Presence costs one send per member per arrival, so a room filling
   * up costs the square of its size (500,000 PostToConnection calls for
   * 1,000 joins, fifty seconds of an AWS account's whole @connections
   * throughput); past presenceLimit members a room is only counted, and its
   * members learn the count from every frame.
   */
  private async arrive(record: ConnectionRecord, announced: boolean): Promise<Arrival> {
    const { onlineCount, others } = await this.presence(record.room, record.connectionId);
    // A store's index may not show the newcomer yet; count it exactly once either way.
    const counted = others ? others.length + 1 : Math.max(onlineCount, 1);
    const joined =
      announced && others && others.length > 0
        ? await this.logged(record.room, this.presenceFrame('user_joined', 'joined', record.clientId, record.room, counted), { except: record.nameKey })
        : undefined;
    return { onlineCount: counted, others, announced, joined };
  }

  /** The `welcome` text, with the seq to resume from (past the newcomer's own `user_joined`) and a token to resume with. */
  private async welcome(record: ConnectionRecord, onlineCount: number, joined: Logged | undefined, text: 'welcome' | 'alreadyInRoom' = 'welcome'): Promise<string> {
    const seq = joined?.seq ?? (await this.log.latest(record.room));
    const frame = { ...this.presenceFrame('welcome', text, record.clientId, record.room, onlineCount), seq, resumeToken: this.tokenFor(record) };
    return encodeFrame(frame, new Date(this.clock()));
  }

  private tokenFor(record: ConnectionRecord): string {
    const { clientId, room, connectionId, session = connectionId } = record;
    const { epoch } = this.log;
    const expiresAt = this.clock() + this.settings.resumeTokenTtlMs;
    return this.tokens.sign(epoch === undefined ? { clientId, room, session, expiresAt } : { clientId, room, session, expiresAt, logEpoch: epoch });
  }

  private async announceDeparture(clientId: string, room: string): Promise<void> {
    const { onlineCount, others } = await this.presence(room);
    if (!others || others.length === 0) return;
    // Not for the one who left: a resume of its session must not tell it that it left.
    const left = await this.logged(room, this.presenceFrame('user_left', 'left', clientId, room, onlineCount), { except: nameKey(clientId) });
    await this.deliverToMembers(others, left.data);
  }

  /** The room's count, and its members but `except` when the room is small enough to be told of arrivals and departures. */
  private async presence(room: string, except?: string): Promise<{ onlineCount: number; others: RoomMember[] | undefined }> {
    const listUpTo = this.settings.presenceLimit + (except ? 1 : 0);
    if (!this.backplane && this.registry.countRoomAndList) {
      const { count, connectionIds } = await this.registry.countRoomAndList(room, listUpTo);
      const others = connectionIds?.filter((connectionId) => connectionId !== except).map((connectionId) => ({ connectionId }));
      return { onlineCount: connectionIds?.length ?? count, others };
    }
    const onlineCount = await this.registry.countRoom(room);
    if (onlineCount > listUpTo) return { onlineCount, others: undefined };
    const members = await this.roomMembers(room);
    const others = members.filter((member) => member.connectionId !== except);
    return { onlineCount: members.length, others };
  }

  /** The room's members with their owners where instances share it; only the ids where one process owns everything. */
  private async roomMembers(room: string): Promise<RoomMember[]> {
    if (!this.backplane) return (await this.roomConnectionIds(room)).map((connectionId) => ({ connectionId }));
    return this.registry.listRoomMembers ? this.registry.listRoomMembers(room) : this.registry.listRoom(room);
  }

  /** A presence frame, with the app's words for it as `message` when the app has any. */
  private presenceFrame(
    type: 'welcome' | 'user_joined' | 'user_left',
    text: 'welcome' | 'alreadyInRoom' | 'joined' | 'left',
    clientId: string,
    room: string,
    onlineCount: number,
  ): ServerFrame {
    const event: PresenceEvent = { clientId, room, onlineCount };
    const message = this.app.presenceText?.[text]?.(event);
    return message === undefined ? { type, clientId, room, onlineCount } : { type, clientId, room, message, onlineCount };
  }

  private context(record: ConnectionRecord): Context {
    const engine = this;
    return {
      connection: record,
      now: new Date(this.clock()),
      reply: (frame) => engine.send(record, frame).then(() => undefined),
      broadcast: async (room, frame, options) => {
        // As for ctx.joinRoom and ctx.roomState: a room no client could be in is the app's mistake, not an empty room.
        if (!isValidName(room)) throw new InvalidRoomError();
        return engine.broadcast(room, frame, options, options?.except === record.connectionId ? record.nameKey : undefined);
      },
      sendToClient: async (clientId, frame) => {
        const target = await engine.registry.findByClientId(normalizeName(clientId));
        if (!target) return false;
        // Numbered in the recipient's room, for the recipient alone: a resume there replays it to it and to no one else.
        const { data } = await engine.logged(target.room, frame, { to: target.nameKey });
        return (await engine.sendEncoded(target, data)) === 'sent';
      },
      joinRoom: (room) => engine.joinRoom(record, room),
      listRoom: (room) => engine.registry.listRoom(room),
      close: async (code, reason) => {
        checkClose(code, reason);
        await engine.close(record, code, reason);
      },
      get state() {
        return roomStateOf(engine.state, record.room);
      },
      roomState: (room) => roomStateOf(engine.state, room),
    };
  }

  private async joinRoom(record: ConnectionRecord, room: string): Promise<void> {
    // Apps call ctx.joinRoom with names of their own; the room alphabet holds for them as for the core's join route.
    if (!isValidName(room)) throw new InvalidRoomError();
    const previousRoom = record.room;
    const moved = previousRoom === room ? record : await this.registry.moveToRoom(record.connectionId, room);
    if (!moved) return;
    if (previousRoom !== room) {
      await this.announceDeparture(record.clientId, previousRoom);
      const arrival = await this.arrive(moved, true);
      await this.sendEncoded(moved, await this.welcome(moved, arrival.onlineCount, arrival.joined));
      if (arrival.joined) await this.deliverToMembers(arrival.others!, arrival.joined.data);
    } else {
      await this.sendEncoded(record, await this.welcome(record, await this.registry.countRoom(room), undefined, 'alreadyInRoom'));
    }
  }

  /** `exceptKey`: the nameKey of `options.except` when the caller knows it (the sender's own connection). */
  private async broadcast(room: string, source: FrameSource, options: BroadcastOptions = {}, exceptKey?: string): Promise<number> {
    const logging: LogAudience = {};
    if (options.except !== undefined) {
      const except = exceptKey ?? (await this.registry.get(options.except))?.nameKey;
      if (except !== undefined) logging.except = except;
    }
    if (this.backplane) return this.broadcastAcross(room, source, options, logging);
    const members = await this.roomConnectionIds(room);
    const frame = typeof source === 'function' ? source({ onlineCount: members.length }) : source;
    const recipients = options.except ? members.filter((id) => id !== options.except) : members;
    if (recipients.length > 0) await this.deliverEncoded(recipients, (await this.logged(room, frame, logging)).data);
    return members.length;
  }

  private async broadcastAcross(room: string, source: FrameSource, options: BroadcastOptions, logging: LogAudience): Promise<number> {
    if (this.registry.ownRoomIds) return this.broadcastToAll(room, source, options, logging, this.registry.ownRoomIds(room));
    const members = this.registry.listRoomMembers ? await this.registry.listRoomMembers(room) : await this.registry.listRoom(room);
    const frame = typeof source === 'function' ? source({ onlineCount: members.length }) : source;
    const recipients = options.except ? members.filter((member) => member.connectionId !== options.except) : members;
    if (recipients.length > 0) await this.deliverToMembers(recipients, (await this.logged(room, frame, logging)).data);
    return members.length;
  }

  /**
   * One message to every instance, which delivers to its own members: no
   * room listing, and the same cost however many instances share the room.
   */
  private async broadcastToAll(room: string, source: FrameSource, options: BroadcastOptions, logging: LogAudience, own: readonly string[]): Promise<number> {
    const { except } = options;
    const { onlineCount, data } = this.log.appendToAll
      ? await this.appendToAll(room, source, except, logging, own.length)
      : await this.countLogAndPublish(room, source, except, logging);
    await this.deliverEncoded(except ? own.filter((id) => id !== except) : own, data);
    return onlineCount;
  }

  /** Count, number and publish in one step of the log's store: the frame is encoded for whatever count the store finds. */
  private appendToAll(
    room: string,
    source: FrameSource,
    exceptConnection: string | undefined,
    logging: LogAudience,
    ownCount: number,
  ): Promise<{ onlineCount: number; data: string }> {
    const at = this.clock();
    const timestamp = new Date(at);
    const frame = typeof source === 'function' ? (onlineCount: number) => encodeFrame(source({ onlineCount }), timestamp) : encodeFrame(source, timestamp);
    return this.log.appendToAll!(room, frame, at, {
      ownCount,
      ...(exceptConnection === undefined ? {} : { exceptConnection }),
      ...(logging.except === undefined ? {} : { except: logging.except }),
    });
  }

  private async countLogAndPublish(room: string, source: FrameSource, except: string | undefined, logging: LogAudience): Promise<{ onlineCount: number; data: string }> {
    const onlineCount = await this.registry.countRoom(room);
    const { data } = await this.logged(room, typeof source === 'function' ? source({ onlineCount }) : source, logging);
    await this.backplane!.publishToAll({ kind: 'room', room, data, ...(except ? { except } : {}) });
    return { onlineCount, data };
  }

  /**
   * Numbers a frame of `room` in its log, with whom a replay may give it to:
   * one append per frame, however many receive it. The log keeps the frame
   * without its seq; every recipient gets it with.
   */
  private async logged(room: string, frame: ServerFrame, audience: LogAudience = {}): Promise<Logged> {
    const at = this.clock();
    const data = encodeFrame(frame, new Date(at));
    const seq = await this.log.append(room, { data, at, ...audience });
    return { seq, data: withSeq(data, seq) };
  }

  /** Fan-out over instances: this instance's members directly, one backplane message per other owner. */
  private async deliverToMembers(members: readonly RoomMember[], data: string): Promise<void> {
    if (members.length === 0) return;
    if (!this.backplane) return this.deliverEncoded(members.map((member) => member.connectionId), data);
    const local: string[] = [];
    const remote = new Map<string, string[]>();
    for (const { connectionId, owner } of members) {
      if (!this.ownedElsewhere(owner)) local.push(connectionId);
      else remote.get(owner)?.push(connectionId) ?? remote.set(owner, [connectionId]);
    }
    for (const [owner, connectionIds] of remote) await this.backplane.publish(owner, { kind: 'deliver', connectionIds, data });
    await this.deliverEncoded(local, data);
  }

  private async roomConnectionIds(room: string): Promise<string[]> {
    if (this.registry.listRoomIds) return this.registry.listRoomIds(room);
    return (await this.registry.listRoom(room)).map((member) => member.connectionId);
  }

  /** Fan-out: one batch send where the transport has one, and gone connections forgotten afterwards. */
  private async deliverEncoded(recipients: readonly string[], data: string): Promise<void> {
    if (this.held.size > 0) recipients = this.holdBack(recipients, data);
    if (recipients.length === 0) return;
    const gone = this.transport.sendMany ? await this.transport.sendMany(recipients, data) : await this.sendEach(recipients, data);
    // After the fan-out, so one stale entry never holds up the others' messages.
    await forEachLimited(gone, this.settings.fanoutConcurrency, (connectionId) => this.forgetGone(connectionId), (error, connectionId) =>
      this.logger.warn('forget_failed', { connectionId, error }),
    );
  }

  /** Fan-out for a transport with no batch send (a remote API): bounded concurrency, failures logged. */
  private async sendEach(recipients: readonly string[], data: string): Promise<string[]> {
    const gone: string[] = [];
    await forEachLimited(
      recipients,
      this.settings.fanoutConcurrency,
      async (connectionId) => {
        if ((await this.transport.send(connectionId, data)) === 'gone') gone.push(connectionId);
      },
      (error, connectionId) => this.logger.warn('send_failed', { connectionId, error }),
    );
    return gone;
  }

  /** The recipients whose frames are not held back; the frame is kept for those that are. */
  private holdBack(recipients: readonly string[], data: string): readonly string[] {
    let live: string[] | undefined;
    for (let index = 0; index < recipients.length; index++) {
      const held = this.held.get(recipients[index]!);
      if (held) {
        held.push(data);
        live ??= recipients.slice(0, index);
      } else {
        live?.push(recipients[index]!);
      }
    }
    return live ?? recipients;
  }

  private send(record: ConnectionRecord, frame: ServerFrame): Promise<SendOutcome> {
    return this.sendEncoded(record, encodeFrame(frame, new Date(this.clock())));
  }

  private async sendEncoded(record: ConnectionRecord, data: string): Promise<SendOutcome> {
    const held = this.held.get(record.connectionId);
    if (held) {
      held.push(data);
      return 'sent';
    }
    return this.sendNow(record, data);
  }

  /** Past any hold. A connection owned elsewhere counts as sent once its owner has the frame; its owner tells whether it is gone. */
  private async sendNow(record: ConnectionRecord, data: string): Promise<SendOutcome> {
    const { connectionId, owner } = record;
    if (this.ownedElsewhere(owner)) {
      await this.backplane!.publish(owner, { kind: 'deliver', connectionIds: [connectionId], data });
      return 'sent';
    }
    const outcome = await this.transport.send(connectionId, data);
    if (outcome === 'gone') await this.forgetGone(connectionId);
    return outcome;
  }

  private async close(record: ConnectionRecord, code: number, reason: string): Promise<void> {
    const { connectionId, owner } = record;
    if (this.ownedElsewhere(owner)) return this.backplane!.publish(owner, { kind: 'close', connectionId, code, reason });
    await this.transport.close(connectionId, code, reason);
  }

  /**
   * Forgets a connection the transport could not reach, unless it was admitted
   * so recently that it may not be open yet: it is then kept for its own
   * welcome, and if it never opens, its disconnect or the registry's expiry
   * forgets it. Forgetting it would leave it open but unknown, never welcomed.
   */
  private async forgetGone(connectionId: string): Promise<void> {
    const admittedAt = this.opening.get(connectionId);
    if (admittedAt !== undefined && this.clock() - admittedAt < OPENING_WINDOW_MS) return;
    this.opening.delete(connectionId);
    const record = await this.registry.get(connectionId);
    if (!record) return;
    if (this.clock() - record.connectedAt < OPENING_WINDOW_MS) {
      this.logger.debug('unreachable_while_opening', { connectionId, clientId: record.clientId });
      this.rememberOpening(connectionId, record.connectedAt);
      return;
    }
    await this.disconnect(connectionId);
  }

  /**
   * A room's every frame meets the same unreachable members until their
   * disconnects come; their admission time is known after the first, so the
   * registry is asked once per window, not once per frame and member.
   */
  private rememberOpening(connectionId: string, connectedAt: number): void {
    const now = this.clock();
    // Oldest first (mostly), so the expired ones are at the front.
    for (const [id, at] of this.opening) {
      if (now - at < OPENING_WINDOW_MS) break;
      this.opening.delete(id);
    }
    this.opening.set(connectionId, connectedAt);
  }

  private async sendError(record: ConnectionRecord, error: ProtocolError): Promise<void> {
    await this.send(record, { type: 'error', code: error.code, message: error.message });
  }

  /**
   * Best effort, straight to the transport: the registry may be what failed,
   * so a 'gone' answer is not followed up. On AWS nothing else would tell the
   * sender: API Gateway passes a route's answer on only when the route has a
   * route response, and ours have none.
   */
  private async tellUnavailable(connectionId: string): Promise<void> {
    const { code, message } = new UnavailableError();
    try {
      await this.transport.send(connectionId, encodeFrame({ type: 'error', code, message }, new Date(this.clock())));
    } catch (error) {
      this.logger.warn('unavailable_not_sent', { connectionId, error });
    }
  }
}

/** A query name in the form names are kept in; absent or empty is undefined. */
function nameFrom(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : normalizeName(value);
}

function* clientIdCandidates(requested: string | undefined): Generator<string> {
  if (requested === undefined) {
    for (let attempt = 0; attempt < 3; attempt++) yield `client_${randomBytes(4).toString('hex')}`;
    return;
  }
  yield requested;
  for (let n = 2; n < 2 + NUMBERED_CANDIDATES; n++) yield withSuffix(requested, `-${n}`);
  for (let attempt = 0; attempt < 3; attempt++) yield withSuffix(requested, `-${randomBytes(3).toString('hex')}`);
}

/** Keeps the result within 32 characters (code points) by shortening the base. */
function withSuffix(base: string, suffix: string): string {
  return Array.from(base).slice(0, 32 - suffix.length).join('') + suffix;
}

/** The resume a handshake asks for: `resume` (the token) and `since`; a `since` that is not a seq refuses the handshake. */
function resumeRequestFrom(query: Readonly<Record<string, string>>): { token: string; since: number } | undefined {
  const token = query.resume;
  if (token === undefined || token === '') return undefined;
  const since = query.since ?? '';
  // Sixteen digits: a Redis log numbers frames from the clock (ms × 1000) while Redis is away, and those are sixteen.
  if (!SINCE_PATTERN.test(since) || !Number.isSafeInteger(Number(since))) throw new InvalidSinceError();
  return { token, since: Number(since) };
}

function describe(error: ResumeError): { code: string; message: string } {
  return { code: error.code, message: error.message };
}

/** What is known of a connection whose record is gone: enough to reach it (on this instance) and close it. */
function orphan(connectionId: string, owner: string): ConnectionRecord {
  return { connectionId, clientId: '', nameKey: '', room: '', connectedAt: 0, lastActiveAt: 0, sourceIp: '', identity: {}, rate: freshRateState(0), owner };
}

const SEQ_SUFFIX = /,"seq":(\d+)\}$/;

/** The seq `withSeq` put at the end of a frame's text; undefined for a frame without one. */
function seqOf(data: string): number | undefined {
  const match = SEQ_SUFFIX.exec(data);
  return match ? Number(match[1]) : undefined;
}

function ignore(): void {}
