/**
 * The cloud's limits and failures, switched on: the callback throttle, the
 * new-connections limit, lost $disconnects, cold starts, and the integration
 * timeout, each against the fixture stack.
 */
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../shared/log.js';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import { handshakeStatus, TestClient } from './support/client.js';
import { Gate, startFixtureEmulator, testLogger } from './support/emulator.js';

let gate: Gate;
const running: RunningEmulator[] = [];

beforeAll(async () => {
  gate = await Gate.start();
});

afterAll(async () => {
  for (const emulator of running) await emulator.stop();
  await gate?.stop();
});

async function start(options: Parameters<typeof startFixtureEmulator>[1]) {
  const emulator = await startFixtureEmulator(gate, options);
  running.push(emulator);
  return emulator;
}

/** The connection id of a fresh client, from its first echo. */
async function echoed(emulator: RunningEmulator) {
  const client = await TestClient.connect(emulator.url);
  client.send('who am i');
  const { connectionId } = (await client.next('echo')).event.requestContext as { connectionId: string };
  return { client, connectionId };
}

describe('limits and failures', () => {
  it('answers @connections past the account-wide rate with 429 LimitExceededException', async () => {
    const emulator = await start({ chaos: { callbackRatePerSecond: 3 } });
    const { client, connectionId } = await echoed(emulator);
    const management = new ApiGatewayManagementApiClient({
      endpoint: `${emulator.httpUrl}/${emulator.stage}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });
    const answers = await Promise.all(
      [1, 2, 3, 4, 5].map((n) => management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: `{"type":"n${n}"}` })).then(() => 'ok', (error: Error & { $metadata?: { httpStatusCode?: number } }) => `${error.name} ${error.$metadata?.httpStatusCode}`)),
    );
    expect(answers.filter((answer) => answer === 'ok')).toHaveLength(3);
    expect(answers.filter((answer) => answer !== 'ok')).toEqual(['LimitExceededException 429', 'LimitExceededException 429']);
    management.destroy();
    await client.close();
  });

  it('refuses new connections past the rate with 429 before $connect runs', async () => {
    const emulator = await start({ chaos: { connectRatePerSecond: 1 } });
    const statuses = await Promise.all([handshakeStatus(emulator.url), handshakeStatus(emulator.url)]);
    expect(statuses.map((answer) => answer.status).sort()).toEqual([101, 429]);
  });

  it('loses a $disconnect when told to, and delivers the others', async () => {
    const dropped: string[] = [];
    let firstDrop!: () => void;
    const droppedOne = new Promise<void>((resolve) => (firstDrop = resolve));
    const base = testLogger();
    const logger: Logger = {
      ...base,
      info: (event, fields) => {
        if (event !== 'disconnect_dropped') return base.info(event, fields);
        dropped.push(String(fields?.connectionId));
        firstDrop();
      },
    };
    const draws = [0.1, 0.9];
    const emulator = await start({ logger, chaos: { disconnectDropRate: 0.5, random: () => draws.shift() ?? 0.9 } });
    const lost = await echoed(emulator);
    const kept = await echoed(emulator);
    await lost.client.close();
    await droppedOne;
    await kept.client.close();
    expect((await gate.disconnectOf(kept.connectionId)).requestContext.connectionId).toBe(kept.connectionId);
    expect(dropped).toEqual([lost.connectionId]);
  });

  it('delays a cold start by the time asked, and not a warm invocation', async () => {
    const emulator = await start({ chaos: { coldStartMs: 1200 } });
    const started = Date.now();
    const { client } = await echoed(emulator);
    // $connect and $default each started an environment of their own.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2 * 1200);
    const warm = Date.now();
    client.send('again');
    await client.next('echo');
    expect(Date.now() - warm).toBeLessThan(1200);
    await client.close();
  });

  it('gives up on a route\'s function after the integration timeout, and tells the client', async () => {
    // Under the echo function's own 2 s Timeout, so the gateway gives up first; over a cold $connect's init.
    const emulator = await start({ integrationTimeoutMs: 1900 });
    const { client } = await echoed(emulator);
    client.send('{"hang":true}');
    const frame = await client.next((candidate) => candidate.message === 'Endpoint request timed out');
    expect(frame).toMatchObject({ message: 'Endpoint request timed out', connectionId: expect.any(String) });
    expect(client.socket.readyState).toBe(WebSocket.OPEN);
    await client.close();
  });
});
