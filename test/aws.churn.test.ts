/**
 * The AWS target's correctness where churn and large rooms stress it (the
 * speed is measured by `npm run bench -- --only aws-churn`, not here): every
 * member gets every broadcast once, presence stops at PRESENCE_LIMIT, and a
 * welcome for a connection that has already left gives up at once.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestCounter } from '../bench/aws-counter.js';
import { LOCAL_CREDENTIALS } from '../scripts/emulator/dynamo.js';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { startAwsEmulator } from './support/emulator.js';

const PRESENCE_LIMIT = 30;
let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startAwsEmulator({ functionEnv: { PRESENCE_LIMIT: String(PRESENCE_LIMIT), RATE_LIMIT: '0' } });
});
afterAll(() => emulator?.stop());

async function joinAll(room: string, count: number): Promise<TestClient[]> {
  const clients: TestClient[] = [];
  // One at a time, so each join's presence is decided against a known room size.
  for (let i = 0; i < count; i++) clients.push((await TestClient.join(withQuery(emulator.url, { clientId: `${room}-${i}`, room }))).client);
  return clients;
}

describe('a room of 50 on the AWS target', () => {
  it('delivers every broadcast to every member exactly once, and announces joins only up to PRESENCE_LIMIT members', async () => {
    const room = uniqueName('big');
    const members = await joinAll(room, 50);
    try {
      const senders = [members[0]!, members[25]!, members[49]!];
      senders.forEach((sender, i) => sender.send({ type: 'chat', content: `m${i}` }));
      const contents = senders.map((_, i) => `m${i}`);
      for (const member of members) {
        // Chats of different senders may arrive in any order; take as many as were sent.
        for (let i = 0; i < contents.length; i++) await member.next('chat');
      }
      // A ping answered after the chats means every chat frame that was coming has come.
      for (const member of members) {
        member.send({ type: 'ping' });
        await member.next('pong');
        const chats = member.all('chat').map((frame) => frame.message);
        expect(chats.sort()).toEqual(contents);
      }
      // The first member saw the next PRESENCE_LIMIT arrivals announced, and none after the room outgrew it.
      // In the room's order: one arrival's user_joined may overtake the one before (separate welcome invocations), as on AWS.
      const joined = members[0]!.all('user_joined').sort((a, b) => (a.seq as number) - (b.seq as number)).map((frame) => frame.clientId);
      expect(joined).toEqual(Array.from({ length: PRESENCE_LIMIT }, (_, i) => `${room}-${i + 1}`));
      const lastWelcome = members[49]!.all('welcome')[0]!;
      expect(lastWelcome.onlineCount).toBe(50);
    } finally {
      await Promise.all(members.map((member) => member.close()));
    }
  });
});

describe('the welcome', () => {
  it('of a connection that is no longer registered asks GetConnection once and gives up', async () => {
    const counter = new RequestCounter();
    const lambda = new LambdaClient({ endpoint: emulator.httpUrl, region: emulator.stack.region, credentials: { ...LOCAL_CREDENTIALS, sessionToken: 'local' } });
    const welcome = [...emulator.stack.functions.keys()].find((name) => name.endsWith('-welcome'))!;
    counter.start();
    try {
      const answer = await lambda.send(
        new InvokeCommand({
          FunctionName: welcome,
          Payload: JSON.stringify({ connectionId: 'LeftAlreadyXXX=', domainName: new URL(emulator.httpUrl).host, stage: emulator.stage }),
        }),
      );
      expect(JSON.parse(Buffer.from(answer.Payload!).toString())).toMatchObject({ statusCode: 410 });
      expect(counter.snapshot().management).toEqual({ GET: 1 });
    } finally {
      counter.stop();
      lambda.destroy();
    }
  });
});
