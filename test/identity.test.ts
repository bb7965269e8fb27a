/**
 * The identity an `authenticate` hook admits with is stored as JSON on every
 * target: one that is not a JSON object, or is over MAX_IDENTITY_BYTES, is
 * the app's mistake and refused as a throwing hook is (500 `internal_error`,
 * the cause logged as `invalid_identity`); one that is JSON is kept as its
 * JSON reads back, so a route sees the same identity on CloudBase as on AWS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineApp, route } from '../shared/app.js';
import { MAX_IDENTITY_BYTES } from '../shared/engine.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { rawRequest, upgradeRequest } from './support/raw-socket.js';
import { startSourceServer, type SourceServer } from './support/servers.js';

const circular: Record<string, unknown> = { name: 'loop' };
circular.self = circular;

const identities: Record<string, unknown> = {
  bigint: { count: 1n },
  circular,
  array: ['not', 'an', 'object'],
  large: { blob: 'x'.repeat(MAX_IDENTITY_BYTES) },
  dated: { since: new Date('2026-01-02T03:04:05.000Z'), gone: undefined, plan: 'free' },
};

const app = defineApp({
  name: 'identities',
  authenticate: ({ query }) => ({ allow: true, identity: identities[query.mode ?? ''] as never }),
  routes: {
    whoami: route({ parse: () => undefined, handle: (ctx) => ctx.reply({ type: 'me', identity: ctx.connection.identity }) }),
  },
});

let server: SourceServer;
beforeAll(async () => {
  server = await startSourceServer({}, app);
});
afterAll(() => server.stop());

describe('the identity authenticate admits with', () => {
  it.each(['bigint', 'circular', 'array', 'large'])('refuses a %s identity with 500 internal_error, telling nothing of why', async (mode) => {
    const answer = await rawRequest(server.port, upgradeRequest(`/?mode=${mode}&clientId=${uniqueName('id')}`));
    expect(answer.status).toBe(500);
    expect(JSON.parse(answer.body)).toEqual({ code: 'internal_error', message: 'internal server error' });
  });

  it('keeps a JSON identity as its JSON reads back: a Date as its text, an undefined field left out', async () => {
    const { client } = await TestClient.join(withQuery(server.url, { mode: 'dated', clientId: uniqueName('dated') }));
    client.send({ type: 'whoami' });
    expect((await client.next('me')).identity).toEqual({ since: '2026-01-02T03:04:05.000Z', plan: 'free' });
    await client.close();
  });
});
