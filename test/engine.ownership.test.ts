/**
 * Two CloudBase servers (real sockets) over one shared registry. Without a
 * backplane each one's transport answers 'gone' for the other's sockets;
 * with one, delivery goes to each connection's owner and nobody but the
 * owner forgets a connection.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createChatApp } from '../apps/chat/index.js';
import { CloudbaseServer } from '../functions/cloudbase/server.js';
import type { Backplane } from '../shared/backplane.js';
import { MemoryRegistry } from '../shared/memory-registry.js';
import { MemoryRoomLog } from '../shared/memory-room-log.js';
import type { ConnectionRegistry } from '../shared/registry.js';
import type { RoomLog } from '../shared/room-log.js';
import { TestClient, withQuery } from '../testing/client.js';
import { LocalBackplane } from './support/local-backplane.js';

const started: CloudbaseServer[] = [];
const clients: TestClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.terminate();
  await Promise.all(started.splice(0).map((server) => server.shutdown()));
});

async function instance(instanceId: string, registry: ConnectionRegistry, backplane?: Backplane, heartbeatTimeoutMs?: number, log?: RoomLog): Promise<string> {
  // Instances that share rooms share the secret their resume tokens are signed with.
  const settings = { host: '127.0.0.1', port: 0, core: { heartbeatTimeoutMs, resumeSecret: 'the secret of every instance' } };
  const server = new CloudbaseServer({ app: createChatApp(), registry, backplane, instanceId, settings, log });
  started.push(server);
  const { port } = await server.listen();
  return `ws://127.0.0.1:${port}/`;
}

async function join(url: string, clientId: string): Promise<TestClient> {
  const { client } = await TestClient.join(`${url}?clientId=${clientId}`);
  clients.push(client);
  return client;
}

describe('connections owned by another instance', () => {
  it('delivers broadcasts, private messages and presence through the backplane to the owner', async () => {
    const registry = new MemoryRegistry();
    const backplane = new LocalBackplane();
    const a = await instance('A', registry, backplane);
    const b = await instance('B', registry, backplane);
    const alice = await join(a, 'alice');
    const bob = await join(b, 'bob');
    expect((await alice.next('user_joined')).clientId).toBe('bob');

    alice.send({ type: 'chat', content: 'hello bob' });
    expect(await bob.next('chat')).toMatchObject({ clientId: 'alice', message: 'hello bob', onlineCount: 2 });
    bob.send({ type: 'private', to: 'alice', content: 'psst' });
    expect(await alice.next('private')).toMatchObject({ clientId: 'bob', message: 'psst' });
    expect(clientIdsOf(await registry.listRoom('lobby'))).toEqual(['alice', 'bob']);
    // Only cross-instance frames used the bus, each addressed to the recipient's owner.
    expect(new Set(backplane.published.map((p) => p.instanceId))).toEqual(new Set(['A', 'B']));
    expect(backplane.published.every((p) => p.message.kind === 'deliver')).toBe(true);

    bob.socket.close();
    expect(await alice.next('user_left')).toMatchObject({ clientId: 'bob', onlineCount: 1 });
  });

  it('publishes nothing when every member is local', async () => {
    const registry = new MemoryRegistry();
    const backplane = new LocalBackplane();
    const a = await instance('A', registry, backplane);
    const alice = await join(a, 'alice');
    const carol = await join(a, 'carol');
    alice.send({ type: 'chat', content: 'local' });
    expect((await carol.next('chat')).message).toBe('local');
    expect(backplane.published).toEqual([]);
  });

  it('sweeps only its own idle connections, and never closes those of the other instance', async () => {
    const registry = new MemoryRegistry();
    const backplane = new LocalBackplane();
    // With a 1 ms heartbeat everyone is idle by the time A sweeps.
    const a = await instance('A', registry, backplane, 1);
    const b = await instance('B', registry, backplane, 1);
    const alice = await join(a, 'alice');
    await join(b, 'bob');
    expect(await started[0]!.engine.sweepIdle()).toBe(1);
    expect((await alice.closed).code).toBe(1001);
    expect(clientIdsOf(await registry.listRoom('lobby'))).toEqual(['bob']);
  });
});

describe('resuming across instances', () => {
  /** Instances A and B sharing a registry, a backplane and a room log, with alice on A and bob on B. */
  async function aliceOnAbobOnB() {
    const registry = new MemoryRegistry();
    const backplane = new LocalBackplane();
    const log = new MemoryRoomLog({ maxEntries: 100, maxAgeMs: 60_000 });
    const a = await instance('A', registry, backplane, undefined, log);
    const b = await instance('B', registry, backplane, undefined, log);
    const alice = await join(a, 'alice');
    const bob = await join(b, 'bob');
    return { registry, backplane, log, b, alice, bob };
  }

  it('numbers frames in the shared log and carries them with their seq through the backplane', async () => {
    const { backplane, log, alice, bob } = await aliceOnAbobOnB();
    const joined = await alice.next('user_joined');
    alice.send({ type: 'chat', content: 'over the bus' });
    const [toAlice, toBob] = await Promise.all([alice.next('chat'), bob.next('chat')]);
    expect(toBob.seq).toBe(joined.seq + 1);
    expect(toAlice.seq).toBe(toBob.seq);
    expect(await log.latest('lobby')).toBe(toBob.seq);
    const carried = backplane.published.flatMap(({ message }) => (message.kind === 'deliver' ? [JSON.parse(message.data)] : []));
    expect(carried.find((frame) => frame.message === 'over the bus')?.seq).toBe(toBob.seq);
  });

  it('takes the clientId back on another instance: the old socket there gets session_replaced and 4001 through the backplane', async () => {
    const { registry, backplane, b, alice, bob } = await aliceOnAbobOnB();
    await alice.next('user_joined');
    const resumeQuery = alice.resumeQuery();
    bob.send({ type: 'chat', content: 'said before the resume' });
    await alice.next('chat');

    const back = await TestClient.connect(withQuery(b, resumeQuery));
    clients.push(back);
    expect((await back.next()).message).toBe('said before the resume');
    expect(await back.next()).toMatchObject({ type: 'resumed', clientId: 'alice', replayed: 1 });
    expect(await alice.next('error')).toMatchObject({ code: 'session_replaced' });
    expect((await alice.waitClosed()).code).toBe(4001);
    expect(backplane.published.some((p) => p.instanceId === 'A' && p.message.kind === 'close' && p.message.code === 4001)).toBe(true);

    bob.send({ type: 'chat', content: 'after' });
    await back.next('chat');
    expect(bob.all('user_left')).toEqual([]);
    expect((await registry.findByClientId('alice'))?.owner).toBe('B');
  });
});

function clientIdsOf(records: Array<{ clientId: string }>): string[] {
  return records.map((r) => r.clientId).sort();
}

