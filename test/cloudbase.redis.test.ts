/**
 * Built CloudBase artifacts (each `bash scf_bootstrap` in its own folder,
 * its own process) sharing rooms over a real redis-server: the conformance
 * suite with clients spread over three instances, and the failures: an
 * instance killed with -9, Redis stopped and restarted mid-conversation, an
 * instance's SIGTERM (its clients resuming on another instance from the
 * rooms' logs in Redis), and Redis unreachable at start.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FunctionExitedError, freePort } from '../scripts/run-artifact.js';
import { TestClient, uniqueName, withQuery, type Frame } from './support/client.js';
import { conformanceSuite } from './conformance.js';
import { startRedisServer, type LocalRedis } from './support/redis.js';
import { startArtifactServer, type ArtifactServer } from './support/servers.js';

const HEARTBEAT_SECONDS = 2;

let redis: LocalRedis;
const instances: ArtifactServer[] = [];
const clients: TestClient[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  for (const client of clients) client.socket.terminate();
  await Promise.all(instances.map((instance) => instance.stop('SIGKILL')));
  await redis?.stop();
});

/** `count` artifact instances sharing one key prefix on `url`. */
async function startInstances(count: number, url = redis.url): Promise<ArtifactServer[]> {
  const env = { REDIS_URL: url, REDIS_PREFIX: `a${randomBytes(4).toString('hex')}:`, INSTANCE_HEARTBEAT: String(HEARTBEAT_SECONDS), LOG_LEVEL: 'info' };
  const started = await Promise.all(Array.from({ length: count }, () => startArtifactServer(env)));
  instances.push(...started);
  return started;
}

async function join(instance: ArtifactServer, clientId: string): Promise<TestClient> {
  const { client } = await TestClient.join(`${instance.url}?clientId=${clientId}`, { timeoutMs: 10_000 });
  clients.push(client);
  return client;
}

async function usersSeenBy(client: TestClient): Promise<string[]> {
  client.send({ type: 'users' });
  return ((await client.next('users')).users as string[]).sort();
}

describe('three instances over Redis', () => {
  let spread: ArtifactServer[] = [];
  let turn = 0;
  beforeAll(async () => {
    spread = await startInstances(3);
  });
  // Each new client goes to the next instance, so every pair in the suite spans two.
  conformanceSuite('CloudBase, 3 artifact instances over Redis', () => spread[turn++ % spread.length]!.url);
});

describe('instance failures', () => {
  it('announces the users of an instance killed with -9 as left within twice the heartbeat, and counts no ghost', async () => {
    const [a, b, c] = await startInstances(3);
    const alice = await join(a!, 'alice');
    const bob = await join(b!, 'bob');
    await join(c!, 'carol');
    await join(c!, 'carl');
    expect(await usersSeenBy(alice)).toEqual(['alice', 'bob', 'carl', 'carol']);

    c!.running.child.kill('SIGKILL');
    const budget = 2 * HEARTBEAT_SECONDS * 1000;
    const left = async (client: TestClient) => {
      const names = new Set<string>();
      while (names.size < 2) names.add((await client.next('user_left', budget)).clientId);
      return [...names].sort();
    };
    expect(await Promise.all([left(alice), left(bob)])).toEqual([['carl', 'carol'], ['carl', 'carol']]);
    expect(await usersSeenBy(bob)).toEqual(['alice', 'bob']);
    const { welcome } = await TestClient.join(`${a!.url}?clientId=dave`);
    expect(welcome.onlineCount).toBe(3);
    // Carol's name is free again.
    const carolAgain = await join(b!, 'carol');
    expect((await carolAgain.frames.find((f) => f.type === 'welcome'))?.clientId).toBe('carol');
  });

  it('announces the users of an instance cut off past the heartbeat as left, and as joined again once it is back', async () => {
    const [a, b] = await startInstances(2);
    const alice = await join(a!, 'alice');
    const bob = await join(b!, 'bob');
    expect((await alice.next('user_joined')).clientId).toBe('bob');
    // Stopped, b renews nothing: to the others it is dead. Its sockets and its data in Redis stay, as in a partition.
    const pid = b!.running.child.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      expect((await alice.next('user_left', 3 * HEARTBEAT_SECONDS * 1000)).clientId).toBe('bob');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await b!.running.waitForLine((line) => line.includes('"instance_key_was_gone"') && line.includes('"reaped":true'), 10_000);
    expect((await alice.next('user_joined', 15_000)).clientId).toBe('bob');
    expect(await usersSeenBy(alice)).toEqual(['alice', 'bob']);
    bob.send({ type: 'chat', content: 'still here' });
    expect((await alice.next('chat')).message).toBe('still here');
  });

  it('closes its clients with 1012 on SIGTERM; they come back on another instance and see the room as it is', async () => {
    const [a, b] = await startInstances(2);
    const alice = await join(a!, 'alice');
    const bob = await join(b!, 'bob');
    await alice.next('user_joined');
    const stopped = b!.stop('SIGTERM');
    expect((await bob.closed).code).toBe(1012);
    expect(await stopped).toBe(0);
    expect((await alice.next('user_left')).clientId).toBe('bob');

    const back = await join(a!, 'bob');
    expect(await usersSeenBy(back)).toEqual(['alice', 'bob']);
    expect((await alice.next('user_joined')).clientId).toBe('bob');
  });

  it('lets a client of an instance that got SIGTERM resume on another with its token and miss none of the chat that went on', async () => {
    const [a, b, c] = await startInstances(3);
    const aliceId = uniqueName('alice');
    const alice = await join(a!, aliceId);
    const bob = await join(b!, uniqueName('bob'));
    const carolId = uniqueName('carol');
    const carol = await join(c!, carolId);
    await alice.next((frame) => frame.type === 'user_joined' && frame.clientId === carolId);

    // Bob and carol keep talking from before the SIGTERM until after alice is back.
    let talking = true;
    const sent: string[] = [];
    const chatter = (async () => {
      for (let n = 0; talking || n < 6; n++) {
        const [speaker, name] = n % 2 ? [carol, 'carol'] : [bob, 'bob'];
        const content = `${name} ${n}`;
        sent.push(content);
        speaker.send({ type: 'chat', content });
        await bob.next((frame) => frame.type === 'chat' && frame.message === content);
        // Paced, not timed: each speaker stays at 5 frames/s, under the rate limit of 10.
        await delay(100);
      }
    })();
    await alice.next('chat');
    const stopped = a!.stop('SIGTERM');
    expect((await alice.closed).code).toBe(1012);
    expect(await stopped).toBe(0);
    // Two more chats go by while alice is away.
    const away = sent.length;
    await carol.next((frame) => frame.type === 'chat' && sent.indexOf(frame.message as string) >= away + 1);

    const back = await TestClient.connect(withQuery(b!.url, alice.resumeQuery()), { timeoutMs: 10_000 });
    clients.push(back);
    const greeting = await back.next((frame) => frame.type === 'resumed' || frame.type === 'resume_failed');
    expect(greeting).toMatchObject({ type: 'resumed', clientId: aliceId });
    expect(greeting.replayed).toBeGreaterThanOrEqual(2);
    await back.next('chat');
    talking = false;
    await chatter;
    const last = sent.at(-1)!;
    await back.next((frame) => frame.type === 'chat' && frame.message === last);

    // Each seq once across both connections (the CloudBase target sends none twice), in the order bob saw.
    const seen = [...alice.all('chat'), ...back.all('chat')];
    expect(new Set(seen.map((frame) => frame.seq)).size).toBe(seen.length);
    const bySeq = (frames: Frame[]) => [...frames].sort((x, y) => (x.seq as number) - (y.seq as number)).map((frame) => frame.message);
    expect(bySeq(seen)).toEqual(bySeq(bob.all('chat')));
    expect(bySeq(seen)).toEqual(sent);
  });

  it('keeps delivery within an instance while Redis is away, and across instances once it is back', async () => {
    const outage = await startRedisServer();
    try {
      const [a, b] = await startInstances(2, outage.url);
      const alice = await join(a!, 'alice');
      const amy = await join(a!, 'amy');
      const bob = await join(b!, 'bob');
      alice.send({ type: 'chat', content: 'before' });
      expect((await bob.next('chat')).message).toBe('before');
      expect((await amy.next('chat')).message).toBe('before');

      await outage.stop();
      const sent = Array.from({ length: 15 }, (_, i) => `during ${i}`);
      // Fewer than the rate limit's burst (20), so every one is admitted.
      for (const content of sent) alice.send({ type: 'chat', content });
      const received: string[] = [];
      while (received.length < sent.length) received.push((await amy.next('chat')).message);
      expect(received).toEqual(sent);

      await outage.restart();
      await Promise.all([a!, b!].flatMap((instance) => [
        instance.running.waitForLine((line) => line.includes('"redis_restored"'), 15_000),
        instance.running.waitForLine((line) => line.includes('"backplane_resubscribed"'), 15_000),
      ]));
      alice.send({ type: 'chat', content: 'after' });
      const afterAtBob = await bob.next((frame) => frame.type === 'chat' && frame.message === 'after');
      expect(afterAtBob.onlineCount).toBe(3);
      bob.send({ type: 'chat', content: 'back' });
      expect((await alice.next((frame) => frame.type === 'chat' && frame.message === 'back')).clientId).toBe('bob');
      // Neither process crashed.
      expect([a!, b!].map((instance) => instance.running.child.exitCode)).toEqual([null, null]);
    } finally {
      await outage.stop();
    }
  });

  it('tells members on other instances, once Redis is back, who left or changed rooms while it was away', async () => {
    const outage = await startRedisServer();
    try {
      const [a, b] = await startInstances(2, outage.url);
      const alice = await join(a!, 'alice');
      const frank = await join(a!, 'frank');
      frank.send({ type: 'join', room: 'side' });
      await frank.next((frame) => frame.type === 'welcome' && frame.room === 'side');
      const bob = await join(b!, 'bob');
      const carol = await join(b!, 'carol');
      const dan = await join(b!, 'dan');
      await alice.next((frame) => frame.type === 'user_joined' && frame.clientId === 'dan');

      await outage.stop();
      // On their own instance, dan hears both at once, from memory.
      bob.socket.close();
      expect((await dan.next('user_left')).clientId).toBe('bob');
      carol.send({ type: 'join', room: 'side' });
      await carol.next((frame) => frame.type === 'welcome' && frame.room === 'side');
      expect((await dan.next('user_left')).clientId).toBe('carol');

      await outage.restart();
      await b!.running.waitForLine((line) => line.includes('"redis_restored"'), 15_000);
      // Told a few seconds after the restore, once every instance has had time to subscribe again.
      const leftAtAlice = [await alice.next('user_left', 15_000), await alice.next('user_left')];
      expect(leftAtAlice.map((frame) => frame.clientId).sort()).toEqual(['bob', 'carol']);
      expect(leftAtAlice.every((frame) => typeof frame.seq === 'number')).toBe(true);
      expect((await frank.next('user_joined')).clientId).toBe('carol');
      expect(await usersSeenBy(alice)).toEqual(['alice', 'dan']);
      // dan was told at the time and is not told again; nor is anyone on the instance that was told.
      dan.send({ type: 'ping' });
      await dan.next('pong');
      expect(dan.all('user_left').map((frame) => frame.clientId)).toEqual(['bob', 'carol']);
    } finally {
      await outage.stop();
    }
  });

  it('gives no live clientId to a newcomer on another instance after Redis comes back empty', async () => {
    const outage = await startRedisServer();
    try {
      const [a, b] = await startInstances(2, outage.url);
      const names = Array.from({ length: 5 }, (_, i) => uniqueName(`victim${i}`));
      for (const name of names) await join(a!, name);
      await outage.stop('SIGKILL');
      await outage.restart();
      // As soon as the other instance admits anyone again, it must know every live name.
      const taken: string[] = [];
      for (const name of names) {
        const deadline = Date.now() + 15_000;
        for (;;) {
          const attempt = await TestClient.join(`${b!.url}?clientId=${name}`, { timeoutMs: 10_000 }).catch((error: Error) => error);
          if (!(attempt instanceof Error)) {
            clients.push(attempt.client);
            taken.push(attempt.welcome.clientId as string);
            break;
          }
          // 503 registry_unavailable while Redis is away or the instances write their names back.
          expect(attempt.message).toMatch(/503/);
          if (Date.now() > deadline) throw attempt;
          await delay(100);
        }
      }
      expect(taken).toEqual(names.map((name) => `${name}-2`));
    } finally {
      await outage.stop();
    }
  });

  it('exits 1 with one line naming REDIS_URL when Redis cannot be reached at start', async () => {
    const closedPort = await freePort();
    const failure = await startArtifactServer({ REDIS_URL: `redis://:secret@127.0.0.1:${closedPort}` }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(FunctionExitedError);
    const { status, stderrTail } = failure as FunctionExitedError;
    expect(status.code).toBe(1);
    expect(stderrTail.split('\n')).toEqual([expect.stringMatching(/^cloudsocket: cannot reach Redis at REDIS_URL=redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/?: .*ECONNREFUSED/)]);
    expect(stderrTail).not.toContain('secret');
  });

  it('exits 1 with one line naming REDIS_URL when its database does not exist, rather than using database 0', async () => {
    const failure = await startArtifactServer({ REDIS_URL: `${redis.url}/99` }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(FunctionExitedError);
    const { status, stderrTail } = failure as FunctionExitedError;
    expect(status.code).toBe(1);
    expect(stderrTail.split('\n')).toEqual([expect.stringMatching(/^cloudsocket: cannot reach Redis at REDIS_URL=redis:\/\/127\.0\.0\.1:\d+\/99: database 99 cannot be selected: .*DB index is out of range/)]);
  });
});
