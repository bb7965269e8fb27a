/**
 * An app's `authenticate` that never settles on the CloudBase target: the
 * handshake is answered 500 after HANDSHAKE_TIMEOUT, as API Gateway answers
 * one whose `$connect` timed out, its socket is let go, and a shutdown does
 * not wait for such handshakes but answers them 503 at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { defineApp } from '../shared/app.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { rawRequest, upgradeRequest } from './support/raw-socket.js';
import { startSourceServer, type SourceServer } from './support/servers.js';

/** Lets through `?mode=ok`, and never answers anything else. */
const hangingApp = defineApp({
  name: 'hanging',
  authenticate: ({ query }) => (query.mode === 'ok' ? { allow: true } : new Promise(() => {})),
});

let server: SourceServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

describe('a handshake whose authenticate never settles', () => {
  it('is answered 500 internal_error after HANDSHAKE_TIMEOUT, and the server goes on admitting others', async () => {
    server = await startSourceServer({ HANDSHAKE_TIMEOUT: '0.3' }, hangingApp);
    const answer = await rawRequest(server.port, upgradeRequest('/?mode=hang&clientId=stuck'), { timeoutMs: 5000 });
    expect(answer.status).toBe(500);
    expect(JSON.parse(answer.body)).toEqual({ code: 'internal_error', message: 'internal server error' });
    const { welcome, client } = await TestClient.join(withQuery(server.url, { mode: 'ok', clientId: uniqueName('fine') }));
    expect(welcome.type).toBe('welcome');
    await client.close();
  });

  it('is answered 503 shutting_down as soon as the server shuts down, and the shutdown completes', async () => {
    server = await startSourceServer({ HANDSHAKE_TIMEOUT: '60' }, hangingApp);
    const pending = Array.from({ length: 5 }, (_, index) => rawRequest(server!.port, upgradeRequest(`/?mode=hang&clientId=stuck${index}`), { timeoutMs: 10_000 }));
    await expect.poll(() => server!.server.pendingHandshakes, { timeout: 5000 }).toBe(5);
    const stopping = server.stop();
    const answers = await Promise.all(pending);
    expect(answers.map((answer) => answer.status)).toEqual([503, 503, 503, 503, 503]);
    expect(JSON.parse(answers[0]!.body)).toMatchObject({ code: 'shutting_down' });
    await stopping;
    server = undefined;
  });
});
