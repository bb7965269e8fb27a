/**
 * A room broadcast across instances over a real redis-server: the room log's
 * appendToAll (count, number and publish in one script), from the store up
 * to CloudBase servers sharing a room.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createChatApp } from '../apps/chat/index.js';
import { CloudbaseServer } from '../functions/cloudbase/server.js';
import { RedisScaleOut } from '../registries/redis.js';
import { RedisBackplane } from '../registries/redis-backplane.js';
import { connectRedis } from '../registries/redis-connection.js';
import { RedisRegistry } from '../registries/redis-registry.js';
import { CLOCK_SKEW_MS, RedisRoomLog } from '../registries/redis-room-log.js';
import type { BackplaneMessage } from '../shared/backplane.js';
import { freshRateState } from '../shared/rate-limit.js';
import type { ConnectionRecord } from '../shared/registry.js';
import { withSeq, type RoomLogLimits } from '../shared/room-log.js';
import { TestClient, type Frame } from '../testing/client.js';
import { recordCommands, redisForFile, startRedisServer } from './support/redis.js';

const LIMITS: RoomLogLimits = { maxEntries: 1000, maxAgeMs: 60_000 };
const redis = redisForFile();
const freshPrefix = () => `f${randomBytes(4).toString('hex')}:`;
const chat = (text: string, onlineCount: number) => JSON.stringify({ type: 'chat', message: text, onlineCount });

const record = (connectionId: string, owner: string, room = 'lobby'): ConnectionRecord => ({
  connectionId,
  clientId: connectionId,
  nameKey: connectionId,
  room,
  connectedAt: Date.now(),
  lastActiveAt: Date.now(),
  sourceIp: '127.0.0.1',
  identity: {},
  rate: freshRateState(Date.now()),
  owner,
  session: connectionId,
});

/** What the instance of one process holds of the Redis scale-out, with every message its backplane hears. */
interface Instance {
  client: Redis;
  registry: RedisRegistry;
  backplane: RedisBackplane;
  log: RedisRoomLog;
  heard: BackplaneMessage[];
  /** Resolves once the backplane has heard a message matching `predicate`. */
  hears(predicate: (message: BackplaneMessage) => boolean): Promise<BackplaneMessage>;
}

async function instance(prefix: string, instanceId: string, url = redis.url, options: { maxInFlight?: number; clock?: () => number } = {}): Promise<Instance> {
  const client = redis.keep(await connectRedis(url, `fused-${instanceId}`));
  const subscriber = redis.keep(await connectRedis(url, `fused-${instanceId}-sub`));
  const backplane = new RedisBackplane({ publisher: client, subscriber, prefix, ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }) });
  const registry = new RedisRegistry({ client, prefix, instanceId });
  const log = new RedisRoomLog({ client, prefix, limits: LIMITS, backplane, ...(options.clock ? { clock: options.clock } : {}) });
  const heard: BackplaneMessage[] = [];
  const waiting: Array<{ predicate: (message: BackplaneMessage) => boolean; resolve: (message: BackplaneMessage) => void }> = [];
  await backplane.subscribe(instanceId, (message) => {
    heard.push(message);
    for (const waiter of waiting.splice(0)) {
      if (waiter.predicate(message)) waiter.resolve(message);
      else waiting.push(waiter);
    }
  });
  const hears = (predicate: (message: BackplaneMessage) => boolean) =>
    new Promise<BackplaneMessage>((resolve) => {
      const seen = heard.find(predicate);
      if (seen) resolve(seen);
      else waiting.push({ predicate, resolve });
    });
  return { client, registry, backplane, log, heard, hears };
}

/** A close message to `to`, published after everything `from` sent before: once `to` hears it, it has heard those too. */
async function marker(from: Instance, to: Instance, toId: string, name: string): Promise<void> {
  const heard = to.hears((message) => message.kind === 'close' && message.connectionId === name);
  await from.backplane.publish(toId, { kind: 'close', connectionId: name, code: 1000, reason: '' });
  await heard;
}

const seqOf = (data: string) => Number(/,"seq":(\d+)\}$/.exec(data)![1]);

describe('RedisRoomLog.appendToAll', () => {
  it('counts the room, numbers the frame and hands it to the other instances in one round trip', async () => {
    const prefix = freshPrefix();
    const a = await instance(prefix, 'A');
    const b = await instance(prefix, 'B');
    for (const id of ['a1', 'a2']) expect(await a.registry.add(record(id, 'A'))).toBe(true);
    expect(await b.registry.add(record('b1', 'B'))).toBe(true);
    const at = Date.now();
    await a.log.appendToAll!('lobby', (n) => chat('warm', n), at, { ownCount: 2 });

    const sent = recordCommands(a.client);
    const counts: number[] = [];
    const result = await a.log.appendToAll!('lobby', (n) => (counts.push(n), chat('hello', n)), at, { exceptConnection: 'a1', except: 'a1-name', ownCount: 2 });
    expect(sent).toEqual(['evalsha']);
    expect(counts).toEqual([3]);
    expect(result).toEqual({ seq: 2, onlineCount: 3, data: withSeq(chat('hello', 3), 2) });
    expect(await b.hears((message) => message.kind === 'room' && message.data === result.data)).toEqual({
      kind: 'room',
      room: 'lobby',
      data: result.data,
      except: 'a1',
    });
    // Kept without its seq and with the member it left out, as append keeps it.
    expect(await a.log.read('lobby', 1, at)).toEqual({ ok: true, latest: 2, entries: [{ seq: 2, data: chat('hello', 3), at, except: 'a1-name' }] });
    // Its sender skips its own message: a later one from B reaching A means A's copy would have come first.
    await marker(b, a, 'A', 'after hello');
    expect(a.heard.filter((message) => message.kind === 'room')).toEqual([]);
  });

  it('makes the frame again for a count that moved since the room\'s last frame, and never appends the stale one', async () => {
    const prefix = freshPrefix();
    const a = await instance(prefix, 'A');
    const b = await instance(prefix, 'B');
    expect(await a.registry.add(record('a1', 'A'))).toBe(true);
    const at = Date.now();
    expect(await a.log.appendToAll!('lobby', (n) => chat('alone', n), at, { ownCount: 1 })).toMatchObject({ seq: 1, onlineCount: 1 });
    for (const id of ['b1', 'b2']) expect(await b.registry.add(record(id, 'B'))).toBe(true);

    const sent = recordCommands(a.client);
    const counts: number[] = [];
    const result = await a.log.appendToAll!('lobby', (n) => (counts.push(n), chat('three now', n)), at, { ownCount: 1 });
    expect(counts).toEqual([1, 3]);
    expect(sent).toEqual(['evalsha', 'evalsha']);
    expect(result).toEqual({ seq: 2, onlineCount: 3, data: withSeq(chat('three now', 3), 2) });
    expect(await b.hears((message) => message.kind === 'room' && seqOf(message.data) === 2)).toMatchObject({ data: result.data });
    const read = await a.log.read('lobby', 0, at);
    expect(read.ok && read.entries.map((entry) => entry.data)).toEqual([chat('alone', 1), chat('three now', 3)]);

    // A frame that shows no count is never made again, whatever the count did.
    expect(await b.registry.remove('b2')).toBeDefined();
    sent.length = 0;
    const fixed = JSON.stringify({ type: 'cursor', x: 1 });
    expect(await a.log.appendToAll!('lobby', fixed, at, { ownCount: 1 })).toEqual({ seq: 3, onlineCount: 2, data: withSeq(fixed, 3) });
    expect(sent).toEqual(['evalsha']);
  });

  it('publishes in seq order: an instance hears racing senders\' frames with seqs rising by one, as their senders were told', async () => {
    const prefix = freshPrefix();
    const [a, b, listener] = [await instance(prefix, 'A'), await instance(prefix, 'B'), await instance(prefix, 'C')];
    expect(await listener.registry.add(record('c1', 'C'))).toBe(true);
    const at = Date.now();
    const sends = Array.from({ length: 300 }, (_, i) => (i % 2 ? a : b).log.appendToAll!('lobby', (n) => chat(`race ${i}`, n), at, { ownCount: 0 }));
    const results = await Promise.all(sends);
    await marker(a, listener, 'C', 'after the race A');
    await marker(b, listener, 'C', 'after the race B');
    const heard = listener.heard.filter((message) => message.kind === 'room').map((message) => message.data);
    expect(heard.map(seqOf)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(new Set(heard)).toEqual(new Set(results.map((result) => result.data)));
    expect(results.every((result) => result.onlineCount === 1)).toBe(true);
  });

  it('sends the broadcasts of one turn to Redis in one write, and answers each with its own seq', async () => {
    const prefix = freshPrefix();
    const a = await instance(prefix, 'A');
    const at = Date.now();
    await a.log.appendToAll!('lobby', (n) => chat('warm', n), at, { ownCount: 0 });
    const stream = a.client.stream as unknown as { _write: (...args: unknown[]) => void; _writev: (chunks: unknown[], ...rest: unknown[]) => void };
    const writes: number[] = [];
    const { _write, _writev } = stream;
    Object.assign(stream, {
      _write: (...args: unknown[]) => (writes.push(1), _write.apply(stream, args)),
      _writev: (chunks: unknown[], ...rest: unknown[]) => (writes.push(chunks.length), _writev.apply(stream, [chunks, ...rest])),
    });
    const results = await Promise.all(['one', 'two', 'three'].map((text) => a.log.appendToAll!('lobby', (n) => chat(text, n), at, { ownCount: 0 })));
    expect(writes).toEqual([3]);
    expect(results.map((result) => result.seq)).toEqual([2, 3, 4]);
    expect(results.map((result) => result.data)).toEqual(['one', 'two', 'three'].map((text, i) => withSeq(chat(text, 0), i + 2)));
  });

  it('appends but does not publish past the backplane\'s backlog, and counts the drop', async () => {
    const prefix = freshPrefix();
    const a = await instance(prefix, 'A', redis.url, { maxInFlight: 0 });
    const b = await instance(prefix, 'B');
    const at = Date.now();
    expect(await a.log.appendToAll!('lobby', (n) => chat('over the backlog', n), at, { ownCount: 0 })).toMatchObject({ seq: 1, onlineCount: 0 });
    expect(a.backplane.dropped).toBe(1);
    expect(await a.log.latest('lobby')).toBe(1);
    // B hears its own published marker only after anything A's script would have published before it.
    const hearsMarker = b.hears((message) => message.kind === 'close');
    await (await instance(prefix, 'M')).backplane.publish('B', { kind: 'close', connectionId: 'marker', code: 1000, reason: '' });
    await hearsMarker;
    expect(b.heard.map((message) => message.kind)).toEqual(['close']);
  });

  it('numbers frames from the clock while Redis is away, delivers them on its own instance only, and lifts the counter past them once it is back', async () => {
    const outage = await startRedisServer();
    try {
      const now = Date.UTC(2030, 0, 1);
      const a = await instance('o:', 'A', outage.url, { clock: () => now });
      expect(await a.registry.add(record('a1', 'A'))).toBe(true);
      expect(await a.registry.add(record('a2', 'A'))).toBe(true);
      expect(await a.log.appendToAll!('lobby', (n) => chat('before', n), now, { ownCount: 2 })).toMatchObject({ seq: 1, onlineCount: 2 });

      await outage.stop();
      const counts: number[] = [];
      const away = await a.log.appendToAll!('lobby', (n) => (counts.push(n), chat('away', n)), now, { ownCount: 2 });
      // Made once, for this instance's own members: a script that may have run is not tried again.
      expect(counts).toEqual([2]);
      expect(away).toEqual({ seq: now * 1000, onlineCount: 2, data: withSeq(chat('away', 2), now * 1000) });
      expect(a.backplane.dropped).toBe(1);
      expect((await a.log.appendToAll!('lobby', (n) => chat('away again', n), now, { ownCount: 2 })).seq).toBe(now * 1000 + 1);

      // Back empty, as a Redis without persistence comes back: the instance writes its two members back first.
      await outage.restart();
      await once(a.client, 'ready');
      await expect.poll(() => a.registry.isAway, { timeout: 5000 }).toBe(false);
      const lifted = (now + CLOCK_SKEW_MS) * 1000 + 1;
      expect(await a.log.appendToAll!('lobby', (n) => chat('back', n), now, { ownCount: 2 })).toMatchObject({ seq: lifted, data: withSeq(chat('back', 2), lifted) });
      expect(await a.log.read('lobby', lifted - 1, now)).toEqual({ ok: true, latest: lifted, entries: [{ seq: lifted, data: chat('back', 2), at: now }] });
    } finally {
      await outage.stop();
    }
  });
});

describe('a room shared by three CloudBase instances over Redis', () => {
  const running: Array<{ server: CloudbaseServer; scale: RedisScaleOut }> = [];
  const clients: TestClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.terminate();
    for (const { server, scale } of running.splice(0)) {
      await server.shutdown();
      await scale.stop();
    }
  });

  async function server(prefix: string, instanceId: string): Promise<string> {
    const scale = await RedisScaleOut.connect({ url: redis.url, prefix, instanceId, heartbeatMs: 60_000 });
    const cloudbase = new CloudbaseServer({
      app: createChatApp(),
      registry: scale.registry,
      backplane: scale.backplane,
      log: scale.log,
      instanceId,
      settings: { host: '127.0.0.1', port: 0 },
    });
    const { port } = await cloudbase.listen();
    await scale.start(cloudbase.engine);
    running.push({ server: cloudbase, scale });
    return `ws://127.0.0.1:${port}/`;
  }

  it('gives every chat one seq that every member sees, with senders on every instance at once', async () => {
    const prefix = freshPrefix();
    const urls = [await server(prefix, 'A'), await server(prefix, 'B'), await server(prefix, 'C')];
    const members: TestClient[] = [];
    for (let i = 0; i < 6; i++) {
      const { client } = await TestClient.join(`${urls[i % 3]}?clientId=m${i}`);
      clients.push(client);
      members.push(client);
    }
    // Every member has heard every arrival, so the chats below are all each one will get from here on.
    await Promise.all(members.map((member, i) => (i < 5 ? member.next((frame) => frame.type === 'user_joined' && frame.clientId === 'm5') : undefined)));
    const perSender = 5;
    for (let round = 0; round < perSender; round++) members.forEach((member, i) => member.send({ type: 'chat', content: `m${i} #${round}` }));
    const total = perSender * members.length;
    const seen = await Promise.all(
      members.map(async (member) => {
        const chats: Frame[] = [];
        while (chats.length < total) chats.push(await member.next('chat'));
        return new Map(chats.map((frame) => [frame.seq as number, `${frame.clientId}: ${frame.message}`]));
      }),
    );
    const first = seen[0]!;
    expect(first.size).toBe(total);
    const seqs = [...first.keys()].sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => seqs[0]! + i));
    for (const other of seen.slice(1)) expect([...other].sort(([x], [y]) => x - y)).toEqual([...first].sort(([x], [y]) => x - y));
    // The count every chat shows is the room's when it was numbered.
    expect(members.flatMap((member) => member.all('chat').map((frame) => frame.onlineCount))).toEqual(Array(total * members.length).fill(6));
  });
});
