/**
 * What an app hands the core that no target can carry, refused alike on the
 * CloudBase target and the AWS emulator (the core checks it before either acts):
 * - an identity from `authenticate` that is not a JSON object of at most
 *   MAX_IDENTITY_BYTES: 500 `internal_error`, as a throwing hook; a JSON one
 *   is kept as its JSON reads back, so a route sees the same on both;
 * - `ctx.close` with a code a server may not send or a reason over 123 bytes:
 *   the handler's error (the sender is told `unavailable` and stays connected);
 * - `ctx.broadcast` to a room name outside the alphabet: `invalid_room`, as
 *   `ctx.joinRoom` and `ctx.roomState` answer.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appFromModule } from '../shared/app.js';
import { startBuiltTarget, startCloudbase, type RunningTarget } from '../testing/targets.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { rawRequest, upgradeRequest } from './support/raw-socket.js';

const project = fileURLToPath(new URL('./fixtures/edges-app/', import.meta.url));
const targets = new Map<string, RunningTarget>();

beforeAll(async () => {
  const module = (await import('./fixtures/edges-app/src/app.js')) as Record<string, unknown>;
  targets.set('CloudBase', await startCloudbase({ app: appFromModule(module, 'edges') }));
  targets.set('the AWS emulator', await startBuiltTarget('aws', { cwd: project }));
}, 120_000);

afterAll(async () => {
  await Promise.all([...targets.values()].map((target) => target.stop()));
});

/** A handshake to `target` with this query, read raw: status and JSON body. */
async function handshake(target: RunningTarget, query: string) {
  const url = new URL(target.url);
  const answer = await rawRequest(Number(url.port), upgradeRequest(`${url.pathname}?${query}`), { timeoutMs: 30_000 });
  return { status: answer.status, body: answer.status === 101 ? undefined : (JSON.parse(answer.body) as unknown) };
}

describe.each(['CloudBase', 'the AWS emulator'])('on %s', (name) => {
  const target = () => targets.get(name)!;

  it.each(['bigint', 'circular', 'array', 'large'])('refuses an identity that is %s with 500 internal_error, telling nothing of why', async (mode) => {
    expect(await handshake(target(), `mode=${mode}&clientId=${uniqueName('id')}`)).toEqual({
      status: 500,
      body: { code: 'internal_error', message: expect.any(String) },
    });
  });

  it('keeps a JSON identity as its JSON reads back: a Date as its text, an undefined field left out', async () => {
    const { client } = await TestClient.join(withQuery(target().url, { mode: 'dated', clientId: uniqueName('dated') }));
    client.send({ type: 'whoami' });
    expect((await client.next('me', 15_000)).identity).toEqual({ since: '2026-01-02T03:04:05.000Z', plan: 'free' });
    await client.close();
  });

  it.each([
    ['a code no server may send', 1005, 'bye'],
    ['a code outside every range', 2000, 'bye'],
    ['a reason over 123 bytes', 4000, 'é'.repeat(62)],
  ])('refuses ctx.close with %s: the sender is told unavailable and stays connected', async (_label, code, reason) => {
    const { client } = await TestClient.join(withQuery(target().url, { clientId: uniqueName('c') }));
    client.send({ type: 'bye', code, reason });
    expect(await client.next('error', 15_000)).toMatchObject({ code: 'unavailable' });
    expect(client.socketOpen()).toBe(true);
    await client.close();
  });

  it.each([['a space', 'bad room!'], ['nothing', ''], ['a number', 123]])('refuses ctx.broadcast to a room name with %s with invalid_room', async (_label, room) => {
    const own = uniqueName('room');
    const { client } = await TestClient.join(withQuery(target().url, { clientId: uniqueName('s'), room: own }));
    client.send({ type: 'shout', room });
    expect(await client.next('error', 15_000)).toMatchObject({ code: 'invalid_room' });
    client.send({ type: 'shout', room: own });
    expect(await client.next('shouted', 15_000)).toMatchObject({ count: 1 });
    await client.close();
  });

  it('closes through ctx.close with an app code and a reason of exactly 123 bytes', async () => {
    const { client } = await TestClient.join(withQuery(target().url, { clientId: uniqueName('c') }));
    client.send({ type: 'bye', code: 4321, reason: 'é'.repeat(61) + 'x' });
    // API Gateway's DeleteConnection takes no code: on AWS the close says 1000.
    expect((await client.closed).code).toBe(name === 'CloudBase' ? 4321 : 1000);
  });
});
