/**
 * A ConnectionRegistry in Redis, shared by every instance of a CloudBase
 * function. Each operation is one round trip: a Lua script wherever it reads
 * and writes (admission, touch with the rate limit, room moves, removal, a
 * resumed connection taking over its stale one's clientId), so it is atomic
 * across instances; touching a connection this instance owns costs none
 * (see touch). No KEYS or SCAN anywhere: every listing is
 * an index kept by the scripts.
 *
 *   {p}conn:{connectionId}   hash: the record's fields (identity as JSON)
 *   {p}client:{nameKey}      string: the connectionId holding the name (look-alikes share a key: shared/names.ts)
 *   {p}room:{room}           hash: connectionId -> owning instance
 *   {p}idle                  sorted set: connectionId by lastActiveAt
 *   {p}owner:{instanceId}    set: the connections an instance owns (for reaping a dead one)
 *
 * The scripts name keys they build themselves, so this fits a standalone or
 * master-replica Redis, not Redis Cluster.
 *
 * The records this instance owns are also kept in memory. While Redis is
 * away those answer instead, so the instance's own clients keep talking to
 * each other; when it is back they are written again (a Redis without
 * persistence comes back empty) and cross-instance delivery resumes.
 */
import type { Redis } from 'ioredis';
import { silentLogger, type Logger } from '../shared/log.js';
import type { RoomMember } from '../shared/backplane.js';
import { consumeToken, type RateLimit } from '../shared/rate-limit.js';
import { nameKey } from '../shared/names.js';
import type { ConnectionRecord, ConnectionRegistry, TouchResult } from '../shared/registry.js';
import { isOutage, RECONNECT_DELAY_CAP_MS, RegistryUnavailableError } from './redis-connection.js';

/** Reads a hash's flat [field, value, ...] reply into a table. */
const READ_HASH = `
local function fields(h)
  local f = {}
  for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
  return f
end
`;

/** Writes a record and its index entries from the add arguments (see csAdd). */
const STORE_RECORD = `
local function store(p, id, cid, room, owner)
  redis.call('HSET', p .. 'conn:' .. id, 'connectionId', id, 'clientId', cid, 'room', room, 'owner', owner, 'connectedAt', ARGV[6],
    'lastActiveAt', ARGV[7], 'sourceIp', ARGV[8], 'identity', ARGV[9], 'tat', ARGV[10], 'strikes', ARGV[11], 'nameKey', ARGV[13], 'session', ARGV[14])
  redis.call('HSET', p .. 'room:' .. room, id, owner)
  redis.call('ZADD', p .. 'idle', ARGV[7], id)
  if owner ~= '' then redis.call('SADD', p .. 'owner:' .. owner, id) end
end
`;

/** Deletes a record (its fields `f` as read) and its index entries; the clientId claim is the caller's. */
const DROP_RECORD = `
local function drop(p, id, f)
  redis.call('DEL', p .. 'conn:' .. id)
  redis.call('HDEL', p .. 'room:' .. f.room, id)
  redis.call('ZREM', p .. 'idle', id)
  if f.owner ~= '' then redis.call('SREM', p .. 'owner:' .. f.owner, id) end
end
`;

const SCRIPTS = {
  // ARGV: prefix, connectionId, clientId, room, owner, connectedAt, lastActiveAt, sourceIp, identity, tat, strikes, mode, nameKey, session.
  // mode "add" refuses a stored connection or a held clientId; "restore" rewrites this instance's own record after an outage.
  csAdd: `${STORE_RECORD}
local p, id, cid, room, owner = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ck = p .. 'conn:' .. id
local claim = p .. 'client:' .. ARGV[13]
if ARGV[12] == 'restore' then
  local old = redis.call('HGET', ck, 'room')
  if old then redis.call('HDEL', p .. 'room:' .. old, id) end
  local holder = redis.call('GET', claim)
  if holder and holder ~= id then return -1 end
  redis.call('SET', claim, id)
else
  if redis.call('EXISTS', ck) == 1 then return 0 end
  if not redis.call('SET', claim, id, 'NX') then return 0 end
end
store(p, id, cid, room, owner)
return 1`,
  // ARGV: as csAdd's, then the stale connectionId. The stale record as it was, or nil when it is gone,
  // no longer holds the nameKey, or the new connectionId is taken.
  csReplace: `${READ_HASH}${STORE_RECORD}${DROP_RECORD}
local p, id, cid, room, owner = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local stale = ARGV[15]
local claim = p .. 'client:' .. ARGV[13]
if redis.call('GET', claim) ~= stale or redis.call('EXISTS', p .. 'conn:' .. id) == 1 then return false end
local h = redis.call('HGETALL', p .. 'conn:' .. stale)
if #h == 0 then return false end
drop(p, stale, fields(h))
redis.call('SET', claim, id)
store(p, id, cid, room, owner)
return h`,
  // ARGV: prefix, connectionId. The record as it was, or nil.
  csRemove: `${READ_HASH}${DROP_RECORD}
local p, id = ARGV[1], ARGV[2]
local h = redis.call('HGETALL', p .. 'conn:' .. id)
if #h == 0 then return false end
local f = fields(h)
local claim = p .. 'client:' .. (f.nameKey or f.clientId)
if redis.call('GET', claim) == id then redis.call('DEL', claim) end
drop(p, id, f)
return h`,
  // ARGV: prefix, connectionId, room.
  csMove: `
local p, id, room = ARGV[1], ARGV[2], ARGV[3]
local ck = p .. 'conn:' .. id
local old = redis.call('HGET', ck, 'room')
if not old then return false end
local owner = redis.call('HGET', ck, 'owner')
redis.call('HDEL', p .. 'room:' .. old, id)
redis.call('HSET', p .. 'room:' .. room, id, owner)
redis.call('HSET', ck, 'room', room)
return redis.call('HGETALL', ck)`,
  // ARGV: prefix, connectionId, now, perSecond, burst. The same GCRA as shared/rate-limit.ts consumeToken.
  csTouch: `
local p, id = ARGV[1], ARGV[2]
local ck = p .. 'conn:' .. id
local s = redis.call('HMGET', ck, 'tat', 'strikes')
if not s[1] then return false end
local now, per, burst = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local tat, strikes, admitted = tonumber(s[1]), tonumber(s[2]), 1
if per <= 0 then
  tat = now
  strikes = 0
else
  local interval = 1000 / per
  local t = math.max(tat, now)
  if t - now > interval * (burst - 1) then
    strikes = strikes + 1
    admitted = 0
  else
    tat = t + interval
    strikes = 0
  end
end
redis.call('HSET', ck, 'tat', string.format('%.17g', tat), 'strikes', strikes, 'lastActiveAt', ARGV[3])
redis.call('ZADD', p .. 'idle', ARGV[3], id)
return { admitted, redis.call('HGETALL', ck) }`,
  // ARGV: prefix, nameKey.
  csFindClient: `
local id = redis.call('GET', ARGV[1] .. 'client:' .. ARGV[2])
if not id then return false end
return redis.call('HGETALL', ARGV[1] .. 'conn:' .. id)`,
  // ARGV: prefix, room. Every member's hash.
  csListRoom: `
local out = {}
for _, id in ipairs(redis.call('HKEYS', ARGV[1] .. 'room:' .. ARGV[2])) do
  local h = redis.call('HGETALL', ARGV[1] .. 'conn:' .. id)
  if #h > 0 then out[#out + 1] = h end
end
return out`,
  // ARGV: prefix, before (exclusive).
  csListIdle: `
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', ARGV[1] .. 'idle', '-inf', '(' .. ARGV[2])) do
  local h = redis.call('HGETALL', ARGV[1] .. 'conn:' .. id)
  if #h > 0 then out[#out + 1] = h end
end
return out`,
} as const;

type ScriptName = keyof typeof SCRIPTS;
type Scripted = Record<ScriptName, (...args: Array<string | number>) => Promise<unknown>>;

/** A presence change of one of this instance's clients that happened while Redis was away: see onMissedPresence. */
export interface MissedPresence {
  type: 'user_left' | 'user_joined';
  connectionId: string;
  clientId: string;
  room: string;
}

export interface RedisRegistryOptions {
  client: Redis;
  /** Prepended to every key, so several apps (or tests) can share one Redis. Default "cloudsocket:". */
  prefix?: string;
  /** The records this instance owns are kept in memory too, to answer while Redis is away. */
  instanceId?: string;
  logger?: Logger;
}

export class RedisRegistry implements ConnectionRegistry {
  readonly prefix: string;
  private readonly client: Redis;
  private readonly scripts: Scripted;
  private readonly instanceId: string | undefined;
  private readonly logger: Logger;
  /** This instance's own records, as Redis holds them (or would, after an outage). */
  private readonly own = new Map<string, ConnectionRecord>();
  /** The same records by room: what a room broadcast from another instance is delivered to here. */
  private readonly ownByRoom = new Map<string, Set<string>>();
  /** Own connections that left while Redis was away, to be removed there when it is back, with the room Redis had them in. */
  private readonly leftWhileAway = new Map<string, { clientId: string; room: string }>();
  /** Own connections that changed rooms while Redis was away, with the room Redis still has them in. */
  private readonly movedWhileAway = new Map<string, string>();
  /**
   * Told, once Redis is back and this instance's records are written again,
   * what the other instances' clients missed of this instance's own: who
   * left a room and who went from one room to another meanwhile. (No one is
   * admitted while Redis is away.)
   */
  onMissedPresence: ((missed: MissedPresence[]) => void) | undefined;
  /** What onMissedPresence is to be told once a restore has gone through. */
  private readonly missed: MissedPresence[] = [];
  private away = false;
  /**
   * Until then, after an outage, no handshake is admitted: a Redis that came
   * back empty holds none of the names live connections have, and the other
   * instances write theirs back only when they too have reconnected.
   */
  private settlingUntil = 0;

  constructor(options: RedisRegistryOptions) {
    this.client = options.client;
    this.prefix = options.prefix ?? 'cloudsocket:';
    this.instanceId = options.instanceId;
    this.logger = options.logger ?? silentLogger;
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      if (!(name in this.client)) this.client.defineCommand(name, { numberOfKeys: 0, lua });
    }
    this.scripts = this.client as unknown as Scripted;
    // A connection lost is an outage even if no command of this instance noticed: Redis may come back empty.
    this.client.on('close', () => {
      if (!this.away) this.logger.warn('redis_unreachable', { error: 'connection to Redis closed' });
      this.away = true;
    });
    this.client.on('ready', () => {
      if (this.away) void this.restore();
    });
  }

  /** Whether the last attempt to reach Redis failed. */
  get isAway(): boolean {
    return this.away;
  }

  async add(record: ConnectionRecord): Promise<boolean> {
    this.refuseWhileSettling();
    let added: unknown;
    try {
      added = await this.scripts.csAdd(...this.addArguments(record, 'add'));
    } catch (error) {
      this.noteOutage(error);
      throw new RegistryUnavailableError();
    }
    this.reachable();
    if (added !== 1) return false;
    if (this.owns(record)) this.keepOwn(record);
    return true;
  }

  async replace(record: ConnectionRecord, staleConnectionId: string): Promise<ConnectionRecord | undefined> {
    this.refuseWhileSettling();
    let reply: unknown;
    try {
      reply = await this.scripts.csReplace(...this.addArguments(record, 'add'), staleConnectionId);
    } catch (error) {
      this.noteOutage(error);
      throw new RegistryUnavailableError();
    }
    this.reachable();
    const stale = parseFlatRecord(reply, staleConnectionId);
    if (!stale) return undefined;
    this.dropOwn(staleConnectionId);
    if (this.owns(record)) this.keepOwn(record);
    return stale;
  }

  async get(connectionId: string): Promise<ConnectionRecord | undefined> {
    const mine = this.own.get(connectionId);
    // This instance writes every change of its own records, so its copy is what Redis holds.
    if (mine) return copyOf(mine);
    return this.orLocal(async () => parseRecord(connectionId, (await this.client.hgetall(this.key('conn:', connectionId))) as Record<string, string>), () => undefined);
  }

  async findByClientId(clientId: string): Promise<ConnectionRecord | undefined> {
    return this.orLocal(
      async () => {
        // The claim is the name's key; a look-alike holding it is not the client asked for.
        const found = parseFlatRecord(await this.scripts.csFindClient(this.prefix, nameKey(clientId)));
        return found?.clientId === clientId ? found : undefined;
      },
      () => copyOf([...this.own.values()].find((record) => record.clientId === clientId)),
    );
  }

  async listRoom(room: string): Promise<ConnectionRecord[]> {
    return this.orLocal(
      async () => ((await this.scripts.csListRoom(this.prefix, room)) as string[][]).map((flat) => parseFlatRecord(flat)!),
      () => this.ownIn(room).map(copyOf),
    );
  }

  async listRoomIds(room: string): Promise<string[]> {
    return this.orLocal(
      () => this.client.hkeys(this.key('room:', room)),
      () => this.ownIn(room).map((record) => record.connectionId),
    );
  }

  async listRoomMembers(room: string): Promise<RoomMember[]> {
    return this.orLocal(
      async () => {
        const owners = await this.client.hgetall(this.key('room:', room));
        return Object.entries(owners).map(([connectionId, owner]) => (owner === '' ? { connectionId } : { connectionId, owner }));
      },
      () => this.ownIn(room).map(({ connectionId, owner }) => ({ connectionId, owner })),
    );
  }

  async countRoom(room: string): Promise<number> {
    return this.orLocal(
      () => this.client.hlen(this.key('room:', room)),
      () => this.ownIn(room).length,
    );
  }

  async moveToRoom(connectionId: string, room: string): Promise<ConnectionRecord | undefined> {
    return this.orLocal(
      async () => this.remember(parseFlatRecord(await this.scripts.csMove(this.prefix, connectionId, room), connectionId)),
      () => {
        const mine = this.own.get(connectionId);
        if (!mine) return undefined;
        if (!this.movedWhileAway.has(connectionId)) this.movedWhileAway.set(connectionId, mine.room);
        this.keepOwn({ ...mine, room });
        return copyOf(this.own.get(connectionId)!);
      },
    );
  }

  /**
   * A connection this instance owns is touched in memory alone: only its
   * owner receives its frames, so only the owner spends its tokens, and only
   * the owner sweeps it when idle (listIdle). That saves a round trip on every
   * frame; Redis keeps the activity of the admission (or of the last restore).
   */
  async touch(connectionId: string, now: number, limit: RateLimit): Promise<TouchResult | undefined> {
    const mine = this.own.get(connectionId);
    if (mine) return touchInMemory(mine, now, limit);
    return this.orLocal(
      async () => {
        const reply = (await this.scripts.csTouch(this.prefix, connectionId, now, limit.perSecond, limit.burst)) as [number, string[]] | null;
        if (!reply) return undefined;
        const record = this.remember(parseFlatRecord(reply[1], connectionId))!;
        return { record, admitted: reply[0] === 1 };
      },
      () => undefined,
    );
  }

  async remove(connectionId: string): Promise<ConnectionRecord | undefined> {
    const mine = this.own.get(connectionId);
    this.dropOwn(connectionId);
    return this.orLocal(
      async () => parseFlatRecord(await this.scripts.csRemove(this.prefix, connectionId), connectionId),
      () => {
        if (mine) this.leftWhileAway.set(connectionId, { clientId: mine.clientId, room: this.movedWhileAway.get(connectionId) ?? mine.room });
        this.movedWhileAway.delete(connectionId);
        return mine;
      },
    );
  }

  /**
   * With an instanceId, this instance's own idle connections, from memory:
   * their activity is recorded only here (touch), and each owner sweeps its
   * own. Without one, every idle connection Redis knows of.
   */
  async listIdle(before: number): Promise<ConnectionRecord[]> {
    const ownIdle = () => [...this.own.values()].filter((record) => record.lastActiveAt < before).map(copyOf);
    if (this.instanceId !== undefined) return ownIdle();
    return this.orLocal(async () => ((await this.scripts.csListIdle(this.prefix, before)) as string[][]).map((flat) => parseFlatRecord(flat)!), ownIdle);
  }

  /** The connections an instance owns, as Redis lists them: what survivors remove when it died. */
  ownedBy(instanceId: string): Promise<string[]> {
    return this.client.smembers(this.key('owner:', instanceId));
  }

  /**
   * Writes this instance's records again and removes the ones that left
   * meanwhile. Runs when Redis is back; also callable when a check finds
   * this instance's entries missing. `reannounce`: the other instances took
   * this one for dead and told their rooms its users left, so each written
   * back is announced again (see onMissedPresence).
   */
  async restore({ reannounce = false }: { reannounce?: boolean } = {}): Promise<void> {
    // Long enough for every other instance to reconnect (capped backoff) and write its own back.
    this.settlingUntil = Date.now() + 2 * RECONNECT_DELAY_CAP_MS;
    try {
      for (const [connectionId, { clientId, room }] of this.leftWhileAway) {
        await this.scripts.csRemove(this.prefix, connectionId);
        this.leftWhileAway.delete(connectionId);
        this.missed.push({ type: 'user_left', connectionId, clientId, room });
      }
      let conflicts = 0;
      for (const record of this.own.values()) {
        const restored = (await this.scripts.csAdd(...this.addArguments(record, 'restore'))) !== -1;
        if (!restored) conflicts++;
        if (restored && reannounce) this.missed.push({ type: 'user_joined', connectionId: record.connectionId, clientId: record.clientId, room: record.room });
        const before = this.movedWhileAway.get(record.connectionId);
        this.movedWhileAway.delete(record.connectionId);
        // Reaped, it was announced as gone from the room it was in, and is now announced in the one it is in.
        if (before !== undefined && before !== record.room && !reannounce) {
          const { connectionId, clientId } = record;
          this.missed.push({ type: 'user_left', connectionId, clientId, room: before }, { type: 'user_joined', connectionId, clientId, room: record.room });
        }
      }
      this.away = false;
      this.logger.info('redis_restored', { connections: this.own.size, clientIdConflicts: conflicts });
      const missed = this.missed.splice(0);
      if (missed.length > 0) this.onMissedPresence?.(missed);
    } catch (error) {
      // Still away after all; the next 'ready' tries again.
      this.noteOutage(error);
    }
  }

  private refuseWhileSettling(): void {
    if (Date.now() < this.settlingUntil) throw new RegistryUnavailableError();
  }

  private addArguments(record: ConnectionRecord, mode: 'add' | 'restore'): Array<string | number> {
    return [
      this.prefix,
      record.connectionId,
      record.clientId,
      record.room,
      record.owner ?? '',
      record.connectedAt,
      record.lastActiveAt,
      record.sourceIp,
      JSON.stringify(record.identity),
      // Seventeen digits survive the trip through a Lua double exactly.
      record.rate.tat.toPrecision(17),
      record.rate.strikes,
      mode,
      record.nameKey,
      record.session ?? '',
    ];
  }

  /** Runs `remote`; when Redis is away, answers with `local` (what this instance knows by itself) instead. */
  private async orLocal<T>(remote: () => Promise<T>, local: () => T): Promise<T> {
    try {
      const result = await remote();
      this.reachable();
      return result;
    } catch (error) {
      this.noteOutage(error);
      return local();
    }
  }

  private noteOutage(error: unknown): void {
    if (!isOutage(error)) throw error;
    if (!this.away) this.logger.warn('redis_unreachable', { error: error instanceof Error ? error.message : String(error) });
    this.away = true;
  }

  private reachable(): void {
    // A command got through before 'ready' had a chance to restore: restore now, once.
    if (this.away) void this.restore();
  }

  /** Keeps the in-memory copy of an own record in step with the one a script returned. */
  private remember(record: ConnectionRecord | undefined): ConnectionRecord | undefined {
    if (record && this.owns(record)) this.keepOwn(record);
    return record;
  }

  /** The members of `room` whose sockets this instance owns, from memory: no round trip. */
  ownRoomIds(room: string): string[] {
    const ids = this.ownByRoom.get(room);
    return ids ? [...ids] : [];
  }

  private keepOwn(record: ConnectionRecord): void {
    const previous = this.own.get(record.connectionId);
    if (previous && previous.room !== record.room) this.leaveOwnRoom(previous);
    this.own.set(record.connectionId, copyOf(record));
    let members = this.ownByRoom.get(record.room);
    if (!members) this.ownByRoom.set(record.room, (members = new Set()));
    members.add(record.connectionId);
  }

  private dropOwn(connectionId: string): void {
    const previous = this.own.get(connectionId);
    if (!previous) return;
    this.own.delete(connectionId);
    this.leaveOwnRoom(previous);
  }

  private leaveOwnRoom(record: ConnectionRecord): void {
    const members = this.ownByRoom.get(record.room);
    members?.delete(record.connectionId);
    if (members?.size === 0) this.ownByRoom.delete(record.room);
  }

  private owns(record: ConnectionRecord): boolean {
    return this.instanceId !== undefined && record.owner === this.instanceId;
  }

  private ownIn(room: string): ConnectionRecord[] {
    return this.ownRoomIds(room).map((connectionId) => this.own.get(connectionId)!);
  }

  private key(kind: string, name: string): string {
    return `${this.prefix}${kind}${name}`;
  }
}

function touchInMemory(record: ConnectionRecord, now: number, limit: RateLimit): TouchResult {
  const decision = consumeToken(record.rate, now, limit);
  record.rate = decision.state;
  record.lastActiveAt = now;
  return { record: copyOf(record), admitted: decision.admitted };
}

function copyOf<T extends ConnectionRecord | undefined>(record: T): T {
  return (record ? { ...record, rate: { ...record.rate } } : record) as T;
}

function parseFlatRecord(reply: unknown, connectionId?: string): ConnectionRecord | undefined {
  if (!Array.isArray(reply) || reply.length === 0) return undefined;
  const fields: Record<string, string> = {};
  for (let i = 0; i < reply.length; i += 2) fields[String(reply[i])] = String(reply[i + 1]);
  return parseRecord(connectionId ?? fields.connectionId, fields);
}

function parseRecord(connectionId: string | undefined, fields: Record<string, string>): ConnectionRecord | undefined {
  if (connectionId === undefined || fields.clientId === undefined) return undefined;
  const record: ConnectionRecord = {
    connectionId,
    clientId: fields.clientId,
    nameKey: fields.nameKey ?? nameKey(fields.clientId),
    room: fields.room!,
    connectedAt: Number(fields.connectedAt),
    lastActiveAt: Number(fields.lastActiveAt),
    sourceIp: fields.sourceIp!,
    identity: JSON.parse(fields.identity!),
    rate: { tat: Number(fields.tat), strikes: Number(fields.strikes) },
  };
  if (fields.owner) record.owner = fields.owner;
  if (fields.session) record.session = fields.session;
  return record;
}
