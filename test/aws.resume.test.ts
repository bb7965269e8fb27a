/**
 * Seqs and resuming on the AWS target, end to end: the built handlers under
 * the emulator, the room log and the registry in its dynalite. A client the
 * server cuts off with DeleteConnection (the real SDK client against the
 * emulator's @connections) comes back with its token and misses nothing,
 * though on AWS a live frame may overtake the replay; two connections
 * resuming one session at once leave exactly one holding it; frames sent
 * at once from several connections get one order every member agrees on.
 */
import { ApiGatewayManagementApiClient, DeleteConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbRegistry } from '../registries/dynamodb-registry.js';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import { TestClient, uniqueName, withQuery, type Frame } from './support/client.js';
import { dynamoClient } from './support/dynalite.js';
import { startAwsEmulator } from './support/emulator.js';

let emulator: RunningEmulator;
let registry: DynamoDbRegistry;
let management: ApiGatewayManagementApiClient;
const open: TestClient[] = [];

beforeAll(async () => {
  emulator = await startAwsEmulator();
  registry = new DynamoDbRegistry({ client: dynamoClient(emulator.dynamoEndpoint), tableName: emulator.stack.table!.name, ttlSeconds: 7200 });
  management = new ApiGatewayManagementApiClient({
    endpoint: `${emulator.httpUrl}/${emulator.stage}`,
    region: emulator.stack.region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((client) => client.close().catch(() => undefined)));
});
afterAll(async () => {
  management?.destroy();
  await emulator?.stop();
});

async function joined(query: Record<string, string>): Promise<TestClient> {
  const { client } = await TestClient.join(withQuery(emulator.url, query), { timeoutMs: 15_000 });
  open.push(client);
  return client;
}

/** The chat frames a client has received, each seq once (a live frame may also come in the replay), in seq order. */
function chatsBySeq(...connections: TestClient[]): Frame[] {
  const bySeq = new Map<number, Frame>();
  for (const connection of connections) for (const frame of connection.all('chat')) bySeq.set(frame.seq as number, frame);
  return [...bySeq.values()].sort((a, b) => (a.seq as number) - (b.seq as number));
}

const said = (frames: Frame[]) => frames.map((frame) => `${frame.clientId}: ${frame.message}`);

/** Waits until `client` has had a chat frame with each of `messages`. */
async function chatsArrived(client: TestClient, messages: string[]): Promise<void> {
  // In any order: on AWS one connection's frames can overtake each other.
  const missing = new Set(messages.filter((message) => !client.all('chat').some((frame) => frame.message === message)));
  while (missing.size > 0) missing.delete((await client.next((frame) => frame.type === 'chat' && missing.has(frame.message as string), 15_000)).message as string);
}

describe('resuming on the AWS emulator', () => {
  it('gives a client cut off by DeleteConnection every chat it missed, the ones sent while it came back too', async () => {
    const room = uniqueName('room');
    const aliceId = uniqueName('alice');
    const alice = await joined({ clientId: aliceId, room });
    const bob = await joined({ clientId: uniqueName('bob'), room });
    const carol = await joined({ clientId: uniqueName('carol'), room });

    const before = ['one', 'two', 'three'];
    for (const content of before) bob.send({ type: 'chat', content });
    await chatsArrived(alice, before);
    await chatsArrived(carol, before);

    const { connectionId } = (await registry.findByClientId(aliceId))!;
    await management.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    await alice.waitClosed();

    const whileAway = ['four', 'five', 'six'];
    for (const content of whileAway) carol.send({ type: 'chat', content });
    await chatsArrived(bob, whileAway);

    // Live chats go on while alice comes back: some may reach her before her replay does.
    const resuming = TestClient.connect(withQuery(emulator.url, alice.resumeQuery()), { timeoutMs: 15_000 });
    const during = ['seven', 'eight', 'nine'];
    for (const content of during) bob.send({ type: 'chat', content });
    const back = await resuming;
    open.push(back);
    const resumed = await back.next('resumed', 15_000);
    expect(resumed).toMatchObject({ clientId: aliceId, room });
    expect(resumed.replayed).toBeGreaterThanOrEqual(whileAway.length);
    await chatsArrived(bob, during);
    await chatsArrived(back, during);

    const everything = said(chatsBySeq(bob));
    expect(everything).toHaveLength(before.length + whileAway.length + during.length);
    expect(said(chatsBySeq(alice, back))).toEqual(everything);
    expect(back.all('welcome')).toEqual([]);
  });

  it('lets exactly one of two connections resuming with one token at once end with the clientId; the other, and the stale one, get session_replaced and are closed', async () => {
    const room = uniqueName('room');
    const aliceId = uniqueName('alice');
    // Alice's socket stays open: on AWS a client whose network dropped keeps its connection until API Gateway notices.
    const alice = await joined({ clientId: aliceId, room });
    const bob = await joined({ clientId: uniqueName('bob'), room });
    await alice.next('user_joined', 15_000);
    const resumeQuery = alice.resumeQuery();

    // Each $connect runs in its own Lambda environment, side by side.
    const twins = await Promise.all([0, 1].map(() => TestClient.connect(withQuery(emulator.url, resumeQuery), { timeoutMs: 15_000 })));
    open.push(...twins);
    const loserIndex = await Promise.race(twins.map((twin, index) => twin.waitClosed(15_000).then(() => index)));
    const loser = twins[loserIndex]!;
    const winner = twins[1 - loserIndex]!;
    // DeleteConnection takes no close code: API Gateway's close says 1000, and the frame before it says why.
    expect((await loser.waitClosed()).code).toBe(1000);
    expect(loser.all('error').map((frame) => frame.code)).toEqual(['session_replaced']);
    expect(await winner.next((frame) => frame.type === 'resumed' || frame.type === 'welcome', 15_000)).toMatchObject({ type: 'resumed', clientId: aliceId });
    expect((await alice.waitClosed(15_000)).code).toBe(1000);
    expect(alice.all('error').map((frame) => frame.code)).toEqual(['session_replaced']);

    bob.send({ type: 'users' });
    expect((await bob.next('users', 15_000)).users.filter((id: string) => id === aliceId)).toHaveLength(1);
    expect(winner.socketOpen()).toBe(true);
    const marker = uniqueName('marker');
    bob.send({ type: 'chat', content: marker });
    await chatsArrived(winner, [marker]);
    expect(bob.frames.filter((frame) => frame.type === 'user_left' && frame.clientId === aliceId)).toEqual([]);
  });

  it('numbers chats sent at once from four connections one by one, in one order every member sees', async () => {
    const room = uniqueName('room');
    const members: TestClient[] = [];
    for (let i = 0; i < 4; i++) members.push(await joined({ clientId: uniqueName(`m${i}`), room }));
    const perMember = 8;
    const sent = members.flatMap((member, i) => Array.from({ length: perMember }, (_, n) => `from ${i}: ${n}`));
    // All at once: on AWS each frame is its own Lambda invocation, running side by side.
    members.forEach((member, i) => {
      for (let n = 0; n < perMember; n++) member.send({ type: 'chat', content: `from ${i}: ${n}` });
    });
    for (const member of members) await chatsArrived(member, sent);

    const orders = members.map((member) => chatsBySeq(member));
    const seqs = orders[0]!.map((frame) => frame.seq as number);
    expect(new Set(seqs).size).toBe(sent.length);
    // One by one: the room's frames (presence included) leave no seq out between the first chat and the last.
    expect(seqs.at(-1)! - seqs[0]!).toBe(sent.length - 1);
    orders.forEach((order, i) => {
      expect(order.map((frame) => frame.seq)).toEqual(seqs);
      expect(said(order)).toEqual(said(orders[0]!));
      // Nothing arrived twice live.
      expect(members[i]!.all('chat')).toHaveLength(order.length);
    });
    expect(orders[0]!.map((frame) => frame.message).sort()).toEqual([...sent].sort());
  });
});
