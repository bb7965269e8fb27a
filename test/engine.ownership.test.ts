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
import type { ConnectionRegistry } from '../shared/registry.js';
import { TestClient } from '../testing/client.js';
import { LocalBackplane } from './support/local-backplane.js';

const started: CloudbaseServer[] = [];
const clients: TestClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.terminate();
  await Promise.all(started.splice(0).map((server) => server.shutdown()));
});

async function instance(instanceId: string, registry: ConnectionRegistry, backplane?: Backplane, heartbeatTimeoutMs?: number): Promise<string> {
  const settings = { host: '127.0.0.1', port: 0, core: { heartbeatTimeoutMs } };
  const server = new CloudbaseServer({ app: createChatApp(), registry, backplane, instanceId, settings });
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

function clientIdsOf(records: Array<{ clientId: string }>): string[] {
  return records.map((r) => r.clientId).sort();
}

