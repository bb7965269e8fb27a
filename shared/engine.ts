/**
 * The protocol core: turns platform events (a handshake, a greeting, a text
 * frame, a disconnect) into registry updates and frames for the transport.
 * Both targets drive this one class; they differ only in the registry and
 * transport they hand it and in when they call `greet` (at once on CloudBase,
 * from an asynchronous invocation on AWS, where `$connect` cannot send).
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
  InvalidMessageError,
  InvalidRoomError,
  InvalidRoomHandshakeError,
  ProtocolError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
  UnknownTypeError,
} from './errors.js';
import { silentLogger, type Logger } from './log.js';
import { nameKey, normalizeName } from './names.js';
import { DEFAULT_ROOM, encodeFrame, isValidName, parseFrame, type JsonObject, type ServerFrame } from './protocol.js';
import { freshRateState } from './rate-limit.js';
import type { ConnectionRecord, ConnectionRegistry } from './registry.js';
import { MemoryStateStore } from './memory-state.js';
import { roomStateOf, type StateStore } from './room-state.js';
import { resolveRoutes } from './routes.js';
import { DEFAULT_CORE_SETTINGS, normalizeOrigin, type CoreSettings } from './settings.js';
import type { Transport } from './transport.js';

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
  /** Where `ctx.state` lives; default this process's memory, which only a single process may use. */
  state?: StateStore;
}

export type Admission = { ok: true; record: ConnectionRecord } | { ok: false; error: HandshakeError };

/** How many suffixed names (alice-2 … alice-9) are tried before a random suffix. */
const NUMBERED_CANDIDATES = 8;

/**
 * How long after its admission a connection may still be opening. API Gateway
 * answers PostToConnection with 410 for a connection whose `$connect` has not
 * returned yet just as for one that is gone, and `$connect` runs for at most
 * its 29 s integration timeout; only after that does 'gone' mean gone.
 */
const OPENING_WINDOW_MS = 30_000;

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
  private readonly state: StateStore;

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
    this.state = options.state ?? new MemoryStateStore();
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
   * under a clientId nobody else holds. Nothing is sent: on AWS the socket
   * cannot receive until this has returned.
   */
  async admit(request: HandshakeRequest): Promise<Admission> {
    try {
      this.checkOrigin(request.headers.origin);
      const requestedId = nameFrom(request.query.clientId);
      if (requestedId !== undefined && !isValidName(requestedId)) throw new InvalidClientIdError();
      const room = nameFrom(request.query.room) ?? DEFAULT_ROOM;
      if (!isValidName(room)) throw new InvalidRoomHandshakeError();

      let identity: JsonObject = {};
      let clientId = requestedId;
      if (this.app.authenticate) {
        const decision = await this.app.authenticate(request);
        if (!decision.allow) throw new UnauthorizedError(decision.reason);
        identity = decision.identity ?? {};
        if (decision.clientId !== undefined) {
          clientId = normalizeName(decision.clientId);
          if (!isValidName(clientId)) throw new InvalidClientIdError();
        }
      }

      const now = this.clock();
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
      };
      for (const candidate of clientIdCandidates(clientId)) {
        // A taken key (the same name, or one that looks like it) moves on to the next variant.
        const record = { ...base, clientId: candidate, nameKey: nameKey(candidate) };
        if (await this.registry.add(record)) {
          this.logger.info('connect', { connectionId: record.connectionId, clientId: candidate, room });
          return { ok: true, record };
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

  /** Sends `welcome` to a freshly admitted connection and `user_joined` to its room. */
  async greet(connectionId: string): Promise<void> {
    const record = await this.registry.get(connectionId);
    if (!record) return;
    const ctx = this.context(record);
    await this.announceArrival(record);
    await this.app.onConnect?.(ctx);
  }

  /**
   * Handles one text frame. Protocol errors go back to the sender as `error`
   * frames. Anything else (the registry unreachable, a handler's bug) is
   * logged, answered to the sender with `unavailable`, and rethrown for the
   * adapter (a Lambda answers 500; the CloudBase target keeps the connection).
   */
  async receive(connectionId: string, text: string): Promise<void> {
    // Set once the frame reaches the app, so the log says whose code failed.
    let handlerOf: string | undefined;
    try {
      const touched = await this.registry.touch(connectionId, this.clock(), this.settings.rateLimit);
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
    await this.announceDeparture(record.clientId, record.room);
    await this.app.onDisconnect?.(ctx);
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
   * The welcome first, then `user_joined` to the others. Presence costs one
   * send per member per arrival, so a room filling up costs the square of its
   * size (500,000 PostToConnection calls for 1,000 joins, fifty seconds of an
   * AWS account's whole @connections throughput); past presenceLimit members
   * a room is only counted, and its members learn the count from every frame.
   */
  private async announceArrival(record: ConnectionRecord): Promise<void> {
    const { onlineCount, others } = await this.presence(record.room, record.connectionId);
    // A store's index may not show the newcomer yet; count it exactly once either way.
    const counted = others ? others.length + 1 : Math.max(onlineCount, 1);
    await this.send(record, this.presenceFrame('welcome', 'welcome', record.clientId, record.room, counted));
    if (others) await this.deliverToMembers(others, this.presenceFrame('user_joined', 'joined', record.clientId, record.room, counted));
  }

  private async announceDeparture(clientId: string, room: string): Promise<void> {
    const { onlineCount, others } = await this.presence(room);
    if (others) await this.deliverToMembers(others, this.presenceFrame('user_left', 'left', clientId, room, onlineCount));
  }

  /** The room's count, and its members but `except` when the room is small enough to be told of arrivals and departures. */
  private async presence(room: string, except?: string): Promise<{ onlineCount: number; others: RoomMember[] | undefined }> {
    const onlineCount = await this.registry.countRoom(room);
    if (onlineCount > this.settings.presenceLimit + (except ? 1 : 0)) return { onlineCount, others: undefined };
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
      broadcast: (room, frame, options) => engine.broadcast(room, frame, options),
      sendToClient: async (clientId, frame) => {
        const target = await engine.registry.findByClientId(normalizeName(clientId));
        if (!target) return false;
        return (await engine.send(target, frame)) === 'sent';
      },
      joinRoom: (room) => engine.joinRoom(record, room),
      listRoom: (room) => engine.registry.listRoom(room),
      close: (code, reason) => engine.close(record, code, reason),
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
      await this.announceArrival(moved);
    } else {
      const onlineCount = await this.registry.countRoom(room);
      await this.send(record, this.presenceFrame('welcome', 'alreadyInRoom', record.clientId, room, onlineCount));
    }
  }

  private async broadcast(room: string, source: FrameSource, options: BroadcastOptions = {}): Promise<number> {
    if (this.backplane) return this.broadcastAcross(room, source, options);
    const members = await this.roomConnectionIds(room);
    const frame = typeof source === 'function' ? source({ onlineCount: members.length }) : source;
    const recipients = options.except ? members.filter((id) => id !== options.except) : members;
    await this.deliver(recipients, frame);
    return members.length;
  }

  private async broadcastAcross(room: string, source: FrameSource, options: BroadcastOptions): Promise<number> {
    if (this.registry.ownRoomIds) return this.broadcastToAll(room, source, options, this.registry.ownRoomIds(room));
    const members = this.registry.listRoomMembers ? await this.registry.listRoomMembers(room) : await this.registry.listRoom(room);
    const frame = typeof source === 'function' ? source({ onlineCount: members.length }) : source;
    const recipients = options.except ? members.filter((member) => member.connectionId !== options.except) : members;
    await this.deliverToMembers(recipients, frame);
    return members.length;
  }

  /**
   * One message to every instance, which delivers to its own members: no
   * room listing, and the same cost however many instances share the room.
   */
  private async broadcastToAll(room: string, source: FrameSource, options: BroadcastOptions, own: readonly string[]): Promise<number> {
    const onlineCount = await this.registry.countRoom(room);
    const frame = typeof source === 'function' ? source({ onlineCount }) : source;
    const data = encodeFrame(frame, new Date(this.clock()));
    await this.backplane!.publishToAll({ kind: 'room', room, data, ...(options.except ? { except: options.except } : {}) });
    await this.deliverEncoded(options.except ? own.filter((id) => id !== options.except) : own, data);
    return onlineCount;
  }

  /** Fan-out over instances: this instance's members directly, one backplane message per other owner. */
  private async deliverToMembers(members: readonly RoomMember[], frame: ServerFrame): Promise<void> {
    if (members.length === 0) return;
    if (!this.backplane) return this.deliver(members.map((member) => member.connectionId), frame);
    const local: string[] = [];
    const remote = new Map<string, string[]>();
    for (const { connectionId, owner } of members) {
      if (!this.ownedElsewhere(owner)) local.push(connectionId);
      else remote.get(owner)?.push(connectionId) ?? remote.set(owner, [connectionId]);
    }
    const data = encodeFrame(frame, new Date(this.clock()));
    for (const [owner, connectionIds] of remote) await this.backplane.publish(owner, { kind: 'deliver', connectionIds, data });
    await this.deliverEncoded(local, data);
  }

  private async roomConnectionIds(room: string): Promise<string[]> {
    if (this.registry.listRoomIds) return this.registry.listRoomIds(room);
    return (await this.registry.listRoom(room)).map((member) => member.connectionId);
  }

  /** Fan-out: one encoding, one batch send where the transport has one, and gone connections forgotten afterwards. */
  private async deliver(recipients: readonly string[], frame: ServerFrame): Promise<void> {
    if (recipients.length === 0) return;
    await this.deliverEncoded(recipients, encodeFrame(frame, new Date(this.clock())));
  }

  private async deliverEncoded(recipients: readonly string[], data: string): Promise<void> {
    if (recipients.length === 0) return;
    const gone = this.transport.sendMany ? await this.transport.sendMany(recipients, data) : await this.sendEach(recipients, data);
    // After the fan-out, so one stale entry never holds up the others' messages.
    for (const connectionId of gone) await this.forgetGone(connectionId);
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

  /** A connection owned elsewhere counts as sent once its owner has the frame; its owner tells whether it is gone. */
  private async send(record: ConnectionRecord, frame: ServerFrame): Promise<'sent' | 'gone'> {
    const data = encodeFrame(frame, new Date(this.clock()));
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
    const record = await this.registry.get(connectionId);
    if (!record) return;
    if (this.clock() - record.connectedAt < OPENING_WINDOW_MS) {
      this.logger.debug('unreachable_while_opening', { connectionId, clientId: record.clientId });
      return;
    }
    await this.disconnect(connectionId);
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
