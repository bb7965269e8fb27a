/**
 * cloudbaseUserAuth: the CloudBase sign-in of an app's users checked on the
 * handshake. CloudBase's auth service and its admin API cannot be reached
 * from here, so each is a local HTTP server answering in their shape; the
 * admin API is called by the real @cloudbase/node-sdk, pointed at it with
 * its own `serviceUrl` option.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudbaseUserAuth } from '../functions/cloudbase/user-auth.js';
import { defineApp, route } from '../shared/app.js';
import { handshakeStatus, TestClient, withQuery } from './support/client.js';
import { startSourceServer, type SourceServer } from './support/servers.js';

const GOOD_TOKEN = 'eyJ.good.token';
const adminCalls: Array<Record<string, unknown>> = [];

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

async function body(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text;
}

const authService = createServer((req, res) => {
  const signedIn = req.url === '/auth/v1/user/me' && req.headers.authorization === `Bearer ${GOOD_TOKEN}`;
  res.writeHead(signedIn ? 200 : 401, { 'content-type': 'application/json' });
  res.end(JSON.stringify(signedIn ? { sub: 'u_1234', name: 'Ann' } : { error: 'unauthenticated', error_description: 'invalid token' }));
});

const adminApi = createServer(async (req, res) => {
  const params = JSON.parse(await body(req)) as Record<string, unknown>;
  adminCalls.push(params);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ data: { uid: params.uuid, nickName: 'Ann N.', avatarUrl: 'https://example.invalid/a.png' }, requestId: 'req-1' }));
});

let target: SourceServer;

beforeAll(async () => {
  const [authBaseUrl, adminUrl] = await Promise.all([listen(authService), listen(adminApi)]);
  const app = defineApp({
    name: 'signed-in',
    authenticate: cloudbaseUserAuth({
      envId: 'test-env-1a2b',
      authBaseUrl,
      profile: true,
      clientIdFrom: 'uid',
      sdkOptions: { serviceUrl: `${adminUrl}/admin`, secretId: 'AKIDtest', secretKey: 'test-secret' },
    }),
    routes: { whoami: route({ parse: () => undefined, handle: (ctx) => ctx.reply({ type: 'me', ...ctx.connection.identity }) }) },
  });
  target = await startSourceServer({}, app);
});

afterAll(async () => {
  await target?.stop();
  authService.close();
  adminApi.close();
});

describe('cloudbaseUserAuth', () => {
  it('refuses a handshake without a token, or with one the auth service rejects: HTTP 401', async () => {
    const missing = await handshakeStatus(target.url);
    expect(missing.status).toBe(401);
    expect(JSON.parse(missing.body)).toMatchObject({ code: 'unauthorized', message: expect.stringContaining('?token=') });
    expect((await handshakeStatus(withQuery(target.url, { token: 'forged' }))).status).toBe(401);
  });

  it("admits a signed-in user under their uid, with the profile node-sdk's getEndUserInfo read", async () => {
    const { client, welcome } = await TestClient.join(withQuery(target.url, { token: GOOD_TOKEN, clientId: 'someone_else' }));
    expect(welcome.clientId).toBe('u_1234');
    client.send({ type: 'whoami' });
    expect(await client.next('me')).toMatchObject({ uid: 'u_1234', name: 'Ann', profile: { uid: 'u_1234', nickName: 'Ann N.' } });
    expect(adminCalls.at(-1)).toMatchObject({ action: 'auth.getUserInfoForAdmin', uuid: 'u_1234' });
    await client.close();
  });
});
