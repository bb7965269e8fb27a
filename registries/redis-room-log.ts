/**
 * The room log (shared/room-log.ts) in Redis, shared by every instance of a
 * CloudBase function, so a client can resume on another instance than the
 * one it lost. One round trip per operation, each a Lua script:
 *
 *   {p}logseq:{room}  string: the room's seq counter (INCR)
 *   {p}log:{room}     stream: one entry per seq, under the stream id `{seq}-0`
 *                     (fields d = frame, a = epoch ms, t = the one member it is for)
 *
 * Streams, not a list or a sorted set: an entry's id is its seq, so "every
 * entry after N" is XRANGE from the exclusive id `(N`, and XADD trims by
 * count in the same call. The trim is `MAXLEN ~ maxEntries`: approximate
 * trimming only drops whole internal nodes, so it keeps at least maxEntries
 * and costs next to nothing, and the stream can never hold much more. Age is
 * not trimmed with MINID, because MINID compares stream ids and these ids
 * are seqs, not times; instead a read treats an entry older than maxAgeMs as
 * gone, and the stream key expires maxAgeMs after its last append (by then
 * every entry in it is too old to replay). The counter lives a day past its
 * last append, longer than any connection or resume token, so a room's seq
 * never starts again at 1 under a client that still remembers a later one.
 * Memory is therefore bounded by maxEntries per room active in the last
 * maxAgeMs, plus one small counter per room active that day. No KEYS or
 * SCAN. Like the registry, the scripts build their key names, so this needs
 * a standalone or master-replica Redis.
 *
 * Given the backplane, a room broadcast is one round trip too
 * (appendToAll): one script counts the room in the registry's member hash,
 * appends the frame and publishes it with its seq to every instance. That
 * also makes the publish order the seq order, which separate commands from
 * several instances would not be. The frame shows the room's count, which is
 * known only in the script; it is made for the count the room had at its
 * last frame, and a script that finds another count appends nothing and
 * answers with it, so the frame is made again.
 *
 * While Redis is away the instance numbers the frames of its own rooms by
 * itself, so its clients keep talking to each other in order (the registry
 * answers for its own connections the same way). Those seqs come from the
 * clock, `epoch ms × 1000` and up, because what this instance last saw of a
 * room's counter may be behind what its clients saw: frames appended on
 * other instances reach them without passing through this log. An append
 * that finds the counter below the highest seq this instance knows (it
 * numbered frames while away, or a Redis without persistence restarted
 * empty) first lifts it to `(now + CLOCK_SKEW_MS) × 1000` (or that highest
 * seq, if more): past whatever any instance numbered meanwhile. So no client sees a seq twice, only a jump,
 * which is a gap; frames numbered while away are not in the stream, and a
 * resume across them is a gap too. This holds while the instances' clocks
 * agree within CLOCK_SKEW_MS.
 */
import type { Redis } from 'ioredis';
import { silentLogger, type Logger } from '../shared/log.js';
import { withSeq, type AppendToAllOptions, type LogEntry, type LogEntryInput, type LogRead, type RoomAppend, type RoomLog, type RoomLogLimits } from '../shared/room-log.js';
import type { RedisBackplane } from './redis-backplane.js';
import { batchWritesThisTurn, isOutage } from './redis-connection.js';

/** How long a room's counter outlives its last append. */
export const COUNTER_TTL_MS = 24 * 60 * 60 * 1000;

/** How far apart the instances' clocks may be for seqs numbered from the clock to stay in order. */
export const CLOCK_SKEW_MS = 60_000;

/** Rooms whose latest seq is remembered; the one seen longest ago is forgotten first. */
const REMEMBERED_ROOMS = 10_000;

/** Seqs numbered from the clock leave room for a thousand frames per millisecond. */
const clockSeq = (ms: number) => Math.floor(ms) * 1000;

/**
 * Numbers an entry and stores it, as the first lines of a script. ARGV: prefix, room, data, at, to ('' for the
 * whole room), maxEntries, streamTtlMs, counterTtlMs, known, lift, except ('' for none). A counter below `known`
 * (what this instance saw) is raised to `lift` first; string.format keeps big seqs out of Lua's %.14g. Leaves `seq`
 * and `id` (its digits).
 */
const APPEND = `
local p, room = ARGV[1], ARGV[2]
local counter, stream = p .. 'logseq:' .. room, p .. 'log:' .. room
if tonumber(redis.call('GET', counter) or '0') < tonumber(ARGV[9]) then redis.call('SET', counter, ARGV[10]) end
local seq = redis.call('INCR', counter)
redis.call('PEXPIRE', counter, ARGV[8])
local id = string.format('%d', seq)
local fields = { 'd', ARGV[3], 'a', ARGV[4] }
if ARGV[5] ~= '' then table.insert(fields, 't'); table.insert(fields, ARGV[5]) end
if ARGV[11] ~= '' then table.insert(fields, 'x'); table.insert(fields, ARGV[11]) end
redis.call('XADD', stream, 'MAXLEN', '~', ARGV[6], id .. '-0', unpack(fields))
redis.call('PEXPIRE', stream, ARGV[7])
`;

const SCRIPTS = {
  csLogAppend: `${APPEND}
return seq`,
  // ARGV: those of APPEND ('' for \`to\`), then the count the frame was made for ('' for any), channel ('' for none), payload head.
  // The room's member hash is the registry's (registries/redis-registry.ts). A count that differs appends nothing and says what it is.
  // The payload is the backplane's message to all, the frame last with its seq (shared/room-log.ts withSeq).
  csLogAppendToAll: `
local count = redis.call('HLEN', ARGV[1] .. 'room:' .. ARGV[2])
if ARGV[12] ~= '' and tonumber(ARGV[12]) ~= count then return { 0, count } end
${APPEND}
if ARGV[13] ~= '' then redis.call('PUBLISH', ARGV[13], ARGV[14] .. string.sub(ARGV[3], 1, -2) .. ',"seq":' .. id .. '}') end
return { seq, count }`,
  // ARGV: prefix, room, after. { latest, the entries after \`after\` }, as of one moment.
  csLogRead: `
local p, room, after = ARGV[1], ARGV[2], ARGV[3]
local latest = redis.call('GET', p .. 'logseq:' .. room) or '0'
if tonumber(after) >= tonumber(latest) then return { latest, {} } end
return { latest, redis.call('XRANGE', p .. 'log:' .. room, '(' .. after, '+') }`,
} as const;

/** Tries at a head count that may have moved since it was last seen; the last one takes whatever count it finds. */
const COUNT_ATTEMPTS = 3;

type ScriptName = keyof typeof SCRIPTS;
type Scripted = Record<ScriptName, (...args: Array<string | number>) => Promise<unknown>>;
type StreamEntry = [id: string, fields: string[]];

export interface RedisRoomLogOptions {
  /** May be the registry's connection. */
  client: Redis;
  /** The registry's prefix; default "cloudsocket:". */
  prefix?: string;
  limits: RoomLogLimits;
  logger?: Logger;
  /** Epoch ms; what seqs numbered while Redis is away are made from. */
  clock?: () => number;
  /**
   * The backplane of the same Redis and prefix: with it the log has
   * appendToAll, which counts the room in the registry's member hash, numbers
   * the frame and publishes it to all in one script.
   */
  backplane?: RedisBackplane;
}

export class RedisRoomLog implements RoomLog {
  private readonly client: Redis;
  private readonly scripts: Scripted;
  private readonly prefix: string;
  private readonly limits: RoomLogLimits;
  private readonly logger: Logger;
  private readonly clock: () => number;
  /** The highest seq this instance has seen or handed out, by room. */
  private readonly known = new Map<string, number>();
  /** Each room's head count at its last appendToAll: what its next frame is made for first. */
  private readonly counts = new Map<string, number>();
  private away = false;
  readonly appendToAll?: (room: string, frame: string | ((onlineCount: number) => string), at: number, options: AppendToAllOptions) => Promise<RoomAppend>;

  constructor(options: RedisRoomLogOptions) {
    if (!(options.limits.maxEntries >= 1)) throw new RangeError('maxEntries must be at least 1');
    if (!(options.limits.maxAgeMs > 0)) throw new RangeError('maxAgeMs must be more than 0');
    this.client = options.client;
    this.prefix = options.prefix ?? 'cloudsocket:';
    this.limits = options.limits;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? Date.now;
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      if (!(name in this.client)) this.client.defineCommand(name, { numberOfKeys: 0, lua });
    }
    this.scripts = this.client as unknown as Scripted;
    const { backplane } = options;
    if (backplane) this.appendToAll = (room, frame, at, appendOptions) => this.appendAndPublish(backplane, room, frame, at, appendOptions);
  }

  async append(room: string, entry: LogEntryInput): Promise<number> {
    let seq: number;
    try {
      seq = Number(await this.scripts.csLogAppend(...this.appendArguments(room, entry)));
      this.reachable();
    } catch (error) {
      this.noteOutage(error);
      seq = this.numberedWhileAway(room);
    }
    this.remember(room, seq);
    return seq;
  }

  /**
   * One round trip per frame while the room's count stays what it was at its
   * last frame, which is nearly always: the script refuses a frame made for
   * another count and answers with the count, and the frame is made again.
   */
  private async appendAndPublish(
    backplane: RedisBackplane,
    room: string,
    frame: string | ((onlineCount: number) => string),
    at: number,
    { exceptConnection, except, ownCount }: AppendToAllOptions,
  ): Promise<RoomAppend> {
    let onlineCount = this.counts.get(room) ?? ownCount;
    for (let attempt = 1; ; attempt++) {
      const data = typeof frame === 'string' ? frame : frame(onlineCount);
      const expected = typeof frame === 'string' || attempt === COUNT_ATTEMPTS ? '' : onlineCount;
      let reply: [number, number];
      try {
        batchWritesThisTurn(this.client);
        const entry: LogEntryInput = except === undefined ? { data, at } : { data, at, except };
        reply = await backplane.publishingToAll(room, exceptConnection, async (target) =>
          (await this.scripts.csLogAppendToAll(...this.appendArguments(room, entry), expected, target?.channel ?? '', target?.head ?? '')) as [number, number],
        );
        this.reachable();
      } catch (error) {
        this.noteOutage(error);
        // Not tried again: the script may have run, and a second frame would reach the other instances twice.
        const seq = this.numberedWhileAway(room);
        this.remember(room, seq);
        const away = typeof frame === 'string' || onlineCount === ownCount ? data : frame(ownCount);
        return { seq, onlineCount: ownCount, data: withSeq(away, seq) };
      }
      const [seq, count] = reply;
      keepRecent(this.counts, room, count);
      if (seq === 0) {
        onlineCount = count;
        continue;
      }
      this.remember(room, seq);
      return { seq, onlineCount: typeof frame === 'string' ? count : onlineCount, data: withSeq(data, seq) };
    }
  }

  private appendArguments(room: string, entry: LogEntryInput): Array<string | number> {
    const known = this.known.get(room) ?? 0;
    return [
      this.prefix, room, entry.data, entry.at, entry.to ?? '',
      this.limits.maxEntries, Math.ceil(this.limits.maxAgeMs), COUNTER_TTL_MS, known, Math.max(known, clockSeq(this.clock() + CLOCK_SKEW_MS)), entry.except ?? '',
    ];
  }

  /** A seq past any this instance saw of the room, from the clock (see the top of this file). */
  private numberedWhileAway(room: string): number {
    return Math.max((this.known.get(room) ?? 0) + 1, clockSeq(this.clock()));
  }

  async read(room: string, after: number, now: number): Promise<LogRead> {
    if (!(Number.isSafeInteger(after) && after >= 0)) return { ok: false, latest: await this.latest(room) };
    let reply: [string, StreamEntry[]];
    try {
      reply = (await this.scripts.csLogRead(this.prefix, room, after)) as [string, StreamEntry[]];
    } catch (error) {
      this.noteOutage(error);
      // What was logged cannot be read now: the client hears that the log does not reach back rather than waiting.
      return { ok: false, latest: this.known.get(room) ?? 0 };
    }
    this.reachable();
    const latest = Number(reply[0]);
    this.remember(room, latest);
    // A seq the room never reached: its counter was lost (a Redis without persistence restarted).
    if (after > latest) return { ok: false, latest };
    if (after === latest) return { ok: true, entries: [], latest };
    const entries = reply[1].map(toEntry);
    const first = entries[0];
    if (!first || first.seq !== after + 1 || first.at < now - this.limits.maxAgeMs) return { ok: false, latest };
    return { ok: true, entries, latest };
  }

  async latest(room: string): Promise<number> {
    try {
      const latest = Number((await this.client.get(`${this.prefix}logseq:${room}`)) ?? 0);
      this.reachable();
      this.remember(room, latest);
      return latest;
    } catch (error) {
      this.noteOutage(error);
      return this.known.get(room) ?? 0;
    }
  }

  private remember(room: string, seq: number): void {
    // Lower than what this instance saw: Redis lost the counter, and the next append must still lift it.
    if (seq < (this.known.get(room) ?? 0)) return;
    keepRecent(this.known, room, seq);
  }

  private noteOutage(error: unknown): void {
    if (!isOutage(error)) throw error;
    if (!this.away) this.logger.warn('room_log_unreachable', { error: error instanceof Error ? error.message : String(error) });
    this.away = true;
  }

  private reachable(): void {
    if (!this.away) return;
    this.away = false;
    this.logger.info('room_log_restored', {});
  }
}

/** Sets a room's value as the most recent, forgetting the room seen longest ago past REMEMBERED_ROOMS. */
function keepRecent(map: Map<string, number>, room: string, value: number): void {
  map.delete(room);
  map.set(room, value);
  if (map.size > REMEMBERED_ROOMS) map.delete(map.keys().next().value!);
}

function toEntry([id, fields]: StreamEntry): LogEntry {
  const values: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) values[fields[i]!] = fields[i + 1]!;
  const entry: LogEntry = { seq: Number(id.slice(0, id.indexOf('-'))), data: values.d!, at: Number(values.a) };
  if (values.t !== undefined) entry.to = values.t;
  if (values.x !== undefined) entry.except = values.x;
  return entry;
}
