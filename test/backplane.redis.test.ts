/**
 * Two CloudBase servers in this process, sharing rooms over a real
 * redis-server through RedisScaleOut (registry, backplane, liveness).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createChatApp } from '../apps/chat/index.js';
import { CloudbaseServer } from '../functions/cloudbase/server.js';
import { RedisScaleOut } from '../registries/redis.js';
import type { BackplaneMessage } from '../shared/backplane.js';
import { TestClient } from '../testing/client.js';
import { startRedisServer, type LocalRedis } from './support/redis.js';

let redis: LocalRedis;
const running: Array<{ server: CloudbaseServer; scale: RedisScaleOut }> = [];
const clients: TestClient[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.terminate();
  for (const { server, scale } of running.splice(0)) {
    await server.shutdown();
    await scale.stop();
  }
});

async function instance(prefix: string, instanceId: string): Promise<{ url: string; scale: RedisScaleOut }> {
  const scale = await RedisScaleOut.connect({ url: redis.url, prefix, instanceId, heartbeatMs: 60_000 });
  const server = new CloudbaseServer({
    app: createChatApp(),
    registry: scale.registry,
    backplane: scale.backplane,
    instanceId,
    settings: { host: '127.0.0.1', port: 0 },
  });
  const { port } = await server.listen();
  await scale.start(server.engine);
  running.push({ server, scale });
  return { url: `ws://127.0.0.1:${port}/`, scale };
}

async function join(url: string, clientId: string): Promise<TestClient> {
  const { client } = await TestClient.join(`${url}?clientId=${clientId}`);
  clients.push(client);
  return client;
}

const freshPrefix = () => `b${randomBytes(4).toString('hex')}:`;

describe('RedisBackplane between two instances', () => {
  it('carries broadcasts, private messages and presence across instances', async () => {
    const prefix = freshPrefix();
    const a = await instance(prefix, 'A');
    const b = await instance(prefix, 'B');
    const alice = await join(a.url, 'alice');
    const { client: bob, welcome } = await TestClient.join(`${b.url}?clientId=bob`);
    clients.push(bob);
    expect(welcome.onlineCount).toBe(2);
    expect(await alice.next('user_joined')).toMatchObject({ clientId: 'bob', onlineCount: 2 });

    alice.send({ type: 'chat', content: 'over redis' });
    expect(await bob.next('chat')).toMatchObject({ clientId: 'alice', message: 'over redis', onlineCount: 2 });
    expect(await alice.next('chat')).toMatchObject({ message: 'over redis' });
    bob.send({ type: 'private', to: 'alice', content: 'just you' });
    expect(await alice.next('private')).toMatchObject({ clientId: 'bob', message: 'just you' });
    bob.send({ type: 'users' });
    expect((await bob.next('users')).users.sort()).toEqual(['alice', 'bob']);

    // The same clientId on the other instance gets a suffix: the claim is shared.
    const second = await join(b.url, 'alice');
    second.send({ type: 'users' });
    expect((await second.next('users')).users).toContain('alice-2');

    bob.socket.close();
    expect(await alice.next('user_left')).toMatchObject({ clientId: 'bob' });
  });

  it('hands a close to the owner of the connection', async () => {
    const prefix = freshPrefix();
    const a = await instance(prefix, 'A');
    const b = await instance(prefix, 'B');
    const bob = await join(b.url, 'bob');
    const bobRecord = await a.scale.registry.findByClientId('bob');
    await a.scale.backplane.publish('B', { kind: 'close', connectionId: bobRecord!.connectionId, code: 4000, reason: 'asked by A' });
    expect(await bob.closed).toEqual({ code: 4000, reason: 'asked by A' });
  });

  it('hands a message to all to every other instance, never back to its sender', async () => {
    const prefix = freshPrefix();
    const [x, y, z] = await Promise.all(['X', 'Y', 'Z'].map((instanceId) => RedisScaleOut.connect({ url: redis.url, prefix, instanceId, heartbeatMs: 60_000 })));
    const heard = new Map<string, BackplaneMessage[]>();
    let onBoth = () => {};
    const both = new Promise<void>((resolve) => (onBoth = resolve));
    let onMarker = () => {};
    const marker = new Promise<void>((resolve) => (onMarker = resolve));
    for (const [name, scale] of [['X', x], ['Y', y], ['Z', z]] as const) {
      heard.set(name, []);
      await scale!.backplane.subscribe(name, (message) => {
        heard.get(name)!.push(message);
        if (heard.get('Y')!.length === 1 && heard.get('Z')!.length === 1) onBoth();
        if (name === 'X' && message.kind === 'close') onMarker();
      });
    }
    const message: BackplaneMessage = { kind: 'room', room: 'lobby', data: '{"type":"chat"}', except: 'conn-1' };
    await x!.backplane.publishToAll(message);
    await both;
    expect(heard.get('Y')).toEqual([message]);
    expect(heard.get('Z')).toEqual([message]);
    // Redis sends a subscriber its messages in publish order: once a later one reached X, its own copy had too, and was skipped.
    await y!.backplane.publish('X', { kind: 'close', connectionId: 'marker', code: 1000, reason: '' });
    await marker;
    expect(heard.get('X')!.map((m) => m.kind)).toEqual(['close']);
    await Promise.all([x, y, z].map((scale) => scale!.stop()));
  });

  it('drops, counts and survives publishes beyond its backlog or while Redis is away', async () => {
    const own = await startRedisServer();
    const scale = await RedisScaleOut.connect({ url: own.url, instanceId: 'X', heartbeatMs: 60_000 });
    const heard: BackplaneMessage[] = [];
    let onAllHeard = () => {};
    const allHeard = new Promise<void>((resolve) => (onAllHeard = resolve));
    await scale.backplane.subscribe('X', (message) => {
      heard.push(message);
      if (heard.length === 10_001) onAllHeard();
    });
    const message: BackplaneMessage = { kind: 'deliver', connectionIds: ['a', 'b'], data: '{"type":"chat","message":"line\\nbreak"}' };
    // Far more at once than the backlog allows: the excess is dropped without waiting or throwing.
    const burst = Array.from({ length: 10_050 }, () => scale.backplane.publish('X', message));
    expect(scale.backplane.dropped).toBe(50);
    await Promise.all(burst);
    await scale.backplane.publish('X', { kind: 'close', connectionId: 'a', code: 1000, reason: 'done\nnow' });
    await allHeard;
    expect(heard[0]).toEqual(message);
    expect(heard.at(-1)).toEqual({ kind: 'close', connectionId: 'a', code: 1000, reason: 'done\nnow' });

    await own.stop();
    await scale.backplane.publish('X', message);
    expect(scale.backplane.dropped).toBe(51);
    await scale.stop();
  });
});
