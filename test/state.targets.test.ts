/**
 * Room state is the same on every target. Two apps that keep what a room
 * shares in `ctx.state`, the counter as `cloudsocket init` writes it and the
 * cursors app, each run on the CloudBase server from source, on the built
 * CloudBase function through its scf_bootstrap, and as the built Lambda
 * handlers under the AWS emulator, where `onConnect` (welcome), routes
 * (message) and `onDisconnect` (disconnect) are separate functions in
 * containers of their own; and on two instances of the built CloudBase
 * function sharing a redis-server, with clients spread over both. Each
 * target must show the same numbers.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initCommand } from '../scripts/commands/init.js';
import { appFromModule } from '../shared/app.js';
import { startBuiltTarget, startCloudbase, type RunningTarget } from '../testing/targets.js';
import { TestClient, uniqueName, withQuery, type Frame } from './support/client.js';
import { redisForFile } from './support/redis.js';

const TARGETS = ['CloudBase from source', 'CloudBase zip', 'CloudBase zip, 2 instances over Redis', 'AWS emulator'] as const;
type TargetName = (typeof TARGETS)[number];
type AppName = 'counter' | 'cursors';

const cursorsProject = fileURLToPath(new URL('./fixtures/cursors-app/', import.meta.url));
const redis = redisForFile();
let work: string;
const running = new Map<string, RunningTarget[]>();
let turn = 0;
/** The target's URL; with several instances, each call the next one. */
const url = (app: AppName, target: TargetName) => {
  const instances = running.get(`${app} on ${target}`)!;
  return instances[turn++ % instances.length]!.url;
};

async function startAll(app: AppName, project: string, appModule: string): Promise<void> {
  const module = (await import(appModule)) as Record<string, unknown>;
  const overRedis = { REDIS_URL: redis.url, REDIS_PREFIX: `${app}${randomBytes(4).toString('hex')}:` };
  running.set(`${app} on CloudBase from source`, [await startCloudbase({ app: appFromModule(module, app) })]);
  running.set(`${app} on CloudBase zip`, [await startBuiltTarget('cloudbase', { cwd: project })]);
  running.set(`${app} on CloudBase zip, 2 instances over Redis`, [
    await startBuiltTarget('cloudbase', { cwd: project, env: overRedis }),
    await startBuiltTarget('cloudbase', { cwd: project, env: overRedis }),
  ]);
  running.set(`${app} on AWS emulator`, [await startBuiltTarget('aws', { cwd: project })]);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'cloudsocket-state-'));
  const counterProject = join(work, 'counter');
  expect(await initCommand.run([counterProject, '--template', 'counter'])).toBe(0);
  await startAll('counter', counterProject, join(counterProject, 'src/app.ts'));
  await startAll('cursors', cursorsProject, fileURLToPath(new URL('../apps/cursors/app.ts', import.meta.url)));
}, 240_000);

afterAll(async () => {
  await Promise.all([...running.values()].flat().map((target) => target.stop()));
  if (work) await rm(work, { recursive: true, force: true });
});

const closeAll = (clients: TestClient[]) => Promise.all(clients.map((client) => client.close()));

/** What each target showed, compared across targets at the end. */
const counterSeen = new Map<TargetName, unknown>();
const cursorsSeen = new Map<TargetName, unknown>();

/** 20 connections adding 5 amounts each, all at once: 100 increments of one total. */
const COUNTERS = 20;
const amountsOf = (member: number) => Array.from({ length: 5 }, (_, j) => ((member * 5 + j) * 37) % 100 + 1);

describe.each(TARGETS)('room state on %s', (target) => {
  it('the counter loses no addition of many connections adding at once, and every one of them sees one total', async () => {
    const room = uniqueName('count');
    const members = await Promise.all(Array.from({ length: COUNTERS }, (_, i) => TestClient.join(withQuery(url('counter', target), { room, name: `m${i}` }))));
    const clients = members.map(({ client }) => client);
    clients.forEach((client, i) => amountsOf(i).forEach((by) => client.send({ type: 'add', by })));
    const amounts = clients.flatMap((_, i) => amountsOf(i));
    const sum = amounts.reduce((a, b) => a + b, 0);

    const totals: number[] = [];
    for (let i = 0; i < amounts.length; i++) totals.push((await clients[0]!.next('added', 60_000)).total);
    // Each addition was one atomic step: each saw its own total, and the highest is the sum.
    expect(new Set(totals).size).toBe(amounts.length);
    expect(Math.max(...totals)).toBe(sum);
    const counts = await Promise.all(
      clients.map(async (client) => {
        client.send({ type: 'count' });
        return (await client.next('count', 20_000)).total as number;
      }),
    );
    expect(counts).toEqual(clients.map(() => sum));
    // Which addition saw which total depends on the order they ran in; how many totals there were and where they ended does not.
    counterSeen.set(target, { sum, additions: totals.length, distinctTotals: new Set(totals).size, highest: Math.max(...totals), counts });
    await closeAll(clients);
  }, 120_000);

  it('the cursors app shows a newcomer the cursors set, moved and removed by other events (other functions on AWS)', async () => {
    const room = uniqueName('cursors');
    const at = (clientId: string) => withQuery(url('cursors', target), { clientId, room });
    const seen: Frame[] = [];
    const cursorsOf = async (client: TestClient) => {
      const frame = await client.next('cursors');
      seen.push(frame);
      return frame.cursors;
    };

    const watcher = await TestClient.connect(at(uniqueName('w')));
    expect(await cursorsOf(watcher)).toEqual({});
    const ann = await TestClient.connect(at(uniqueName('ann')));
    const annId = (await ann.next('welcome')).clientId as string;
    await cursorsOf(ann);
    ann.send({ type: 'move', x: 0.1, y: 0.2 });
    // The broadcast follows the write, so the move is in the state once the watcher hears it.
    expect(await watcher.next('cursor')).toMatchObject({ clientId: annId, x: 0.1, y: 0.2 });

    const bob = await TestClient.connect(at(uniqueName('bob')));
    const bobId = (await bob.next('welcome')).clientId as string;
    expect(await cursorsOf(bob)).toEqual({ [annId]: { x: 0.1, y: 0.2 } });
    bob.send({ type: 'move', x: 0.3, y: 0.4 });
    expect(await ann.next('cursor')).toMatchObject({ clientId: bobId, x: 0.3, y: 0.4 });
    ann.send({ type: 'move', x: 0.5, y: 0.6 });
    expect(await watcher.next((frame) => frame.type === 'cursor' && frame.x === 0.5)).toMatchObject({ clientId: annId, y: 0.6 });

    const carol = await TestClient.connect(at(uniqueName('carol')));
    expect(await cursorsOf(carol)).toEqual({ [annId]: { x: 0.5, y: 0.6 }, [bobId]: { x: 0.3, y: 0.4 } });

    await ann.close();
    expect(await watcher.next('cursor_gone')).toMatchObject({ clientId: annId });
    const dave = await TestClient.connect(at(uniqueName('dave')));
    expect(await cursorsOf(dave)).toEqual({ [bobId]: { x: 0.3, y: 0.4 } });

    const elsewhere = uniqueName('elsewhere');
    bob.send({ type: 'join', room: elsewhere });
    expect(await bob.next('welcome')).toMatchObject({ room: elsewhere });
    expect(await cursorsOf(bob)).toEqual({});
    expect(await watcher.next('cursor_gone')).toMatchObject({ clientId: bobId });
    const erin = await TestClient.connect(at(uniqueName('erin')));
    expect(await cursorsOf(erin)).toEqual({});

    bob.send({ type: 'move', x: 2, y: 0 });
    expect(await bob.next('error')).toMatchObject({ code: 'invalid_message' });
    cursorsSeen.set(target, seen.map((frame) => Object.values(frame.cursors as object)));
    await closeAll([watcher, bob, carol, dave, erin]);
  }, 60_000);

  it('a resume gives a mover the moves of the others it missed, never its own (broadcast except it)', async () => {
    const room = uniqueName('cursors');
    const at = (clientId: string) => withQuery(url('cursors', target), { clientId, room });
    const ann = await TestClient.connect(at(uniqueName('ann')));
    const annId = (await ann.next('welcome')).clientId as string;
    const bob = await TestClient.connect(at(uniqueName('bob')));
    const bobId = (await bob.next('welcome')).clientId as string;
    await ann.next('user_joined');
    const resumeQuery = ann.resumeQuery();

    ann.send({ type: 'move', x: 0.1, y: 0.2 });
    expect(await bob.next('cursor')).toMatchObject({ clientId: annId });
    bob.send({ type: 'move', x: 0.3, y: 0.4 });
    expect(await ann.next('cursor')).toMatchObject({ clientId: bobId });

    const back = await TestClient.connect(withQuery(url('cursors', target), resumeQuery));
    const replayed: Frame[] = [];
    for (let frame = await back.next(); frame.type !== 'resumed'; frame = await back.next()) replayed.push(frame);
    expect(replayed.map((frame) => [frame.type, frame.clientId])).toEqual([['cursor', bobId]]);
    expect(back.all('resumed')[0]).toMatchObject({ clientId: annId, replayed: 1 });
    expect(await ann.next('error')).toMatchObject({ code: 'session_replaced' });
    // DeleteConnection takes no close code: API Gateway closes with its own.
    expect((await ann.waitClosed()).code).toBe(target === 'AWS emulator' ? 1000 : 4001);
    await closeAll([back, bob]);
  }, 60_000);
});

it('every target showed the same numbers', () => {
  expect([...counterSeen.keys()]).toEqual([...TARGETS]);
  expect([...cursorsSeen.keys()]).toEqual([...TARGETS]);
  const [first, ...others] = TARGETS;
  for (const target of others) {
    expect(counterSeen.get(target), target).toEqual(counterSeen.get(first));
    expect(cursorsSeen.get(target), target).toEqual(cursorsSeen.get(first));
  }
});
