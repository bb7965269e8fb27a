/**
 * The management API at https://{domainName}/{stage}, on the WebSocket's own
 * port: a handler written for AWS builds its endpoint from the event and
 * reaches it, trusting the emulator's certificate as its environment says; a
 * handler that builds its client with no endpoint fails, as it would on AWS.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiGatewayManagementApiClient, GetConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../scripts/emulator/index.js';
import { TestClient } from './support/client.js';
import { testLogger } from './support/emulator.js';

const fixture = fileURLToPath(new URL('./fixtures/callback-app/', import.meta.url));
let app: string;
let emulator: RunningEmulator;

beforeAll(async () => {
  // Outside this repository, so the handler gets the runtime's SDK, as a zip without node_modules would on Lambda.
  app = await mkdtemp(join(tmpdir(), 'cloudsocket-callback-'));
  await cp(fixture, app, { recursive: true });
  emulator = await startEmulator({ port: 0, templatePath: join(app, 'template.yaml'), distDir: app, logger: testLogger() });
});

afterAll(async () => {
  await emulator?.stop();
  if (app) await rm(app, { recursive: true, force: true });
});

function management(agent?: Agent) {
  return new ApiGatewayManagementApiClient({
    endpoint: `${emulator.httpsUrl}/${emulator.stage}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
    ...(agent ? { requestHandler: new NodeHttpHandler({ httpsAgent: agent }) } : {}),
  });
}

describe('the management API over TLS', () => {
  it('is reached by a handler at https://{domainName}/{stage} built from its event', async () => {
    expect(emulator.httpsUrl).toBe(`https://127.0.0.1:${emulator.port}`);
    const client = await TestClient.connect(emulator.url);
    client.send({ action: 'callback' });
    expect(await client.next((frame) => frame.type === 'callback' || frame.type === 'failed')).toEqual({ type: 'callback' });
    await client.close();
  });

  it('fails for a handler whose client has no endpoint, as it would reach for execute-api.REGION.amazonaws.com', async () => {
    const client = await TestClient.connect(emulator.url);
    client.send({ action: 'callback', endpoint: 'none' });
    const failed = await client.next((frame) => frame.type === 'callback' || frame.type === 'failed');
    expect(failed.type).toBe('failed');
    // With no network the name does not resolve; with one, AWS refuses the emulator's credentials. Either way it is not delivered.
    expect(String(failed.message)).toMatch(/execute-api\.us-east-1\.amazonaws\.com|security token|credentials/i);
    await client.close();
  });

  it('presents a certificate a client must trust: the SDK refuses it by default and accepts it as a CA', async () => {
    const untrusting = management();
    const refused = await untrusting.send(new GetConnectionCommand({ ConnectionId: 'bm90LWEtY29ubmVjdGlvbj0=' })).catch((error: unknown) => error);
    expect(String((refused as Error & { code?: string }).code ?? refused)).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO/);
    untrusting.destroy();

    const agent = new Agent({ ca: emulator.caCertificate });
    const trusting = management(agent);
    const gone = await trusting.send(new GetConnectionCommand({ ConnectionId: 'bm90LWEtY29ubmVjdGlvbj0=' })).catch((error: unknown) => error);
    // Over TLS, the same API answers: no such connection.
    expect(gone).toMatchObject({ name: 'GoneException', $metadata: { httpStatusCode: 410 } });
    trusting.destroy();
    agent.destroy();
  });

  it('keeps plain HTTP on the same port', async () => {
    const response = await fetch(`${emulator.httpUrl}/nowhere`);
    expect(response.status).toBe(404);
  });
});
