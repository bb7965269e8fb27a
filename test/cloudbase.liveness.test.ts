/**
 * Liveness on the CloudBase target: peers that vanish, peers that stop
 * answering pings, idle peers, slow consumers, and SIGTERM.
 */
import type { MemoryRegistry } from '../shared/memory-registry.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, uniqueName, withQuery, withTimeout } from './support/client.js';
import { openRawWebSocket, rawRequest, upgradeRequest } from './support/raw-socket.js';
import { startArtifactServer, startSourceServer, type SourceServer } from './support/servers.js';

describe('liveness on the CloudBase target', () => {
  let target: SourceServer;

  beforeAll(async () => {
    target = await startSourceServer({ PING_INTERVAL: '0.2', RATE_LIMIT: '0', MAX_BUFFERED_BYTES: '65536' });
  });
  afterAll(() => target.stop());

  it('announces user_left when a peer vanishes without a close frame', async () => {
    const room = uniqueName('room');
    const stayer = await TestClient.join(withQuery(target.url, { room }));
    const vanisher = await TestClient.join(withQuery(target.url, { room, clientId: uniqueName('ghost') }));
    await stayer.client.next('user_joined');
    (vanisher.client.socket as unknown as { _socket: { destroy(): void } })._socket.destroy();
    expect(await stayer.client.next('user_left')).toMatchObject({ clientId: vanisher.welcome.clientId, onlineCount: 1 });
    await stayer.client.close();
  });

  it('finds a peer that stopped answering protocol pings and announces it gone', async () => {
    const room = uniqueName('room');
    const stayer = await TestClient.join(withQuery(target.url, { room }));
    const silentId = uniqueName('silent');
    const silent = await openRawWebSocket(target.port, `/?room=${room}&clientId=${silentId}`);
    silent.resume(); // reads (and ignores) the pings, so the server's FIN is seen
    const silentClosed = new Promise((resolve) => silent.once('close', resolve));
    expect(await stayer.client.next('user_joined')).toMatchObject({ clientId: silentId });
    // The raw peer never answers the server's pings, so it must be cut off after a missed one.
    expect(await stayer.client.next('user_left', 5000)).toMatchObject({ clientId: silentId });
    await withTimeout(silentClosed, 5000, 'server-side close of the silent peer');
    await stayer.client.close();
  });

  it('disconnects a client that stops reading instead of buffering for it without end', async () => {
    const room = uniqueName('room');
    const flooder = await TestClient.join(withQuery(target.url, { room }));
    const slowId = uniqueName('slow');
    const slow = await openRawWebSocket(target.port, `/?room=${room}&clientId=${slowId}`);
    slow.on('error', () => undefined);
    slow.pause();
    await flooder.client.next('user_joined');
    const content = 'z'.repeat(4000);
    let sent = 0;
    // Bounded: 40 MB of chat is far more than loopback socket buffers plus the 64 KiB allowance.
    while (flooder.client.all('user_left').length === 0 && sent < 10_000) {
      for (let i = 0; i < 100; i++) flooder.client.send({ type: 'chat', content });
      sent += 100;
      await flooder.client.next('chat');
      while (flooder.client.all('chat').length < sent) await flooder.client.next('chat');
    }
    // The announcement may have come while the loop waited for its own chats, which moves past it.
    const left = flooder.client.all('user_left')[0] ?? (await flooder.client.next('user_left'));
    expect(left).toMatchObject({ clientId: slowId });
    expect(await target.server.registry.findByClientId(slowId)).toBeUndefined();
    await flooder.client.close();
  });
});

describe('idle timeout on the CloudBase target', () => {
  let target: SourceServer;

  beforeAll(async () => {
    target = await startSourceServer({ HEARTBEAT_TIMEOUT: '0.5', CLEANUP_INTERVAL: '0.1' });
  });
  afterAll(() => target.stop());

  it('closes a connection that sends no frame for heartbeatTimeout with 1001 and forgets it', async () => {
    const { client } = await TestClient.join(withQuery(target.url, { room: uniqueName('quiet') }));
    const closed = await client.waitClosed(5000);
    expect(closed).toEqual({ code: 1001, reason: 'idle timeout' });
    expect((target.server.registry as MemoryRegistry).size).toBe(0);
  });
});

describe('SIGTERM on the built artifact', () => {
  it('closes every client with 1012 and exits 0', async () => {
    const artifact = await startArtifactServer({ LOG_LEVEL: 'warn' });
    const clients = await Promise.all(
      ['a', 'b', 'c'].map(async (name) => (await TestClient.join(withQuery(artifact.url, { clientId: uniqueName(name) }))).client),
    );
    const exit = artifact.stop('SIGTERM');
    const closes = await Promise.all(clients.map((client) => client.waitClosed(5000)));
    expect(closes.map((close) => close.code)).toEqual([1012, 1012, 1012]);
    expect(await withTimeout(exit, 5000, 'process exit after SIGTERM')).toBe(0);
  });

  it('answers newcomers with 503 shutting_down while it drains, then exits', async () => {
    const artifact = await startArtifactServer({ LOG_LEVEL: 'info' });
    const { port } = artifact.running;
    // A peer that never answers the 1012 close frame holds the drain open for its grace period.
    const stubborn = await openRawWebSocket(port, `/?clientId=${uniqueName('stubborn')}`);
    const cutOff = new Promise<void>((resolve) => stubborn.once('close', () => resolve()));
    const exit = artifact.stop('SIGTERM');
    await artifact.running.waitForLine((line) => line.includes('"event":"shutdown"'));

    const refused = await rawRequest(port, upgradeRequest(`/?clientId=${uniqueName('late')}`));
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toEqual({ code: 'shutting_down', message: 'server is restarting' });
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'shutting_down' });

    await withTimeout(cutOff, 5000, 'the stubborn peer cut off after the grace period');
    expect(await withTimeout(exit, 5000, 'process exit after SIGTERM')).toBe(0);
  });
});
