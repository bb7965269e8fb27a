/**
 * Least privilege, derived instead of listed: each function's role in
 * infra/aws/template.yaml against the SDK commands its handler really sends.
 * The handlers run from source against the emulator (its DynamoDB, its
 * @connections and Invoke APIs, real clients connected through it), down the
 * paths that call the most: a room member whose $disconnect was lost (so the
 * send to it answers 410 and it is forgotten), a clientId already taken, a
 * $connect delivered twice, a flooding client closed, a resume that replaces
 * its stale connection and one replayed from the room log's older chunks, a
 * welcome for a connection replaced before it opened, and a room frame that
 * fills the log's head, so it is copied into a chunk. The app is the chat
 * with room state used in every hook an app has, every operation of it,
 * since a role must allow what any app may make its function call.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage } from 'node:http';
import { basename } from 'node:path';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createChatApp } from '../apps/chat/index.js';
import { route, type App, type Context } from '../shared/app.js';
import { createAwsHandlers } from '../functions/aws/index.js';
import { SignedManagementTransport } from '../functions/aws/signed-management-transport.js';
import { DynamoDbRegistry } from '../registries/dynamodb-registry.js';
import { DEFAULT_CHUNK_BYTES, DynamoDbRoomLog } from '../registries/dynamodb-room-log.js';
import { DEFAULT_CORE_SETTINGS } from '../shared/settings.js';
import { nameKey } from '../shared/names.js';
import { freshRateState } from '../shared/rate-limit.js';
import { ResumeTokens } from '../shared/resume-token.js';
import { loadTemplate } from '../scripts/aws-template.js';
import { connectEvent, disconnectEvent, gatewayId, messageEvent, type ConnectionFacts } from '../scripts/emulator/events.js';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import type { WebSocketResult } from '../functions/aws/events.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { dynamoClient } from './support/dynalite.js';
import { handlerEnvironment, startAwsEmulator, testLogger } from './support/emulator.js';
import { ofType, policyStatements, subOf } from './support/template-policy.js';

const template = await loadTemplate();
const functions = ofType(template, 'AWS::Lambda::Function').map(([logicalId, resource]) => {
  const properties = resource.Properties as { Handler: string; Role: { 'Fn::GetAtt': [string, string] } };
  const [file, exportName] = properties.Handler.split('.') as [string, string];
  return { logicalId, file, exportName, role: properties.Role['Fn::GetAtt'][0] };
});

/** The IAM action a call needs; execute-api's is per method, as the template scopes it. */
function iamAction(call: string): string {
  const [service, operation] = call.split(' ') as [string, string];
  const managementMethods: Record<string, string> = { PostToConnection: 'POST', GetConnection: 'GET', DeleteConnection: 'DELETE' };
  // DynamoDB's actions are named after its operations; the other two services' are not.
  if (service === 'DynamoDB') return `dynamodb:${operation}`;
  if (service === 'Lambda' && operation === 'Invoke') return 'lambda:InvokeFunction';
  if (service === 'ApiGatewayManagementApi' && managementMethods[operation]) return `execute-api:ManageConnections ${managementMethods[operation]}`;
  throw new Error(`no IAM action known for ${call}: add it to iamAction`);
}

function grantedTo(role: string): string[] {
  const actions = policyStatements(template)
    .filter((statement) => statement.role === role)
    .flatMap((statement) =>
      statement.Action.flatMap((action) => {
        if (action.startsWith('logs:')) return [];
        if (action !== 'execute-api:ManageConnections') return [action];
        return statement.Resource.map((resource) => `${action} ${/\/(POST|GET|DELETE)\/@connections\//.exec(subOf(resource) ?? '')?.[1]}`);
      }),
    );
  return [...new Set(actions)].sort();
}

// Every SDK v3 client inherits send from one prototype: patched there, it sees whatever client a handler makes.
const inHandler = new AsyncLocalStorage<Set<string>>();
type Send = (this: { config: { serviceId?: string } }, command: object, ...rest: unknown[]) => Promise<unknown>;
const clientBase = Object.getPrototypeOf(DynamoDBClient.prototype) as { send: Send };
const originalSend = clientBase.send;
// Posts, GetConnection and deletes go out without the SDK client, through the transport's own signed requests.
const signedTransport = SignedManagementTransport.prototype;
const { send: originalPost, close: originalDelete, isOpen: originalGet } = signedTransport;

let emulator: RunningEmulator;
let registry: DynamoDbRegistry;
let roomLog: DynamoDbRoomLog;
const open: TestClient[] = [];
const denied: Array<Record<string, unknown>> = [];

/** The handlers here and the emulator's built ones must accept each other's resume tokens. */
const RESUME_SECRET = 'one secret for both sets of handlers';

beforeAll(async () => {
  const logger = testLogger();
  emulator = await startAwsEmulator({
    functionEnv: { RESUME_SECRET },
    // The built handlers the members reach run under their own roles, checked by the emulator's IAM.
    logger: { ...logger, warn: (event, fields) => (event === 'access_denied' ? denied.push(fields ?? {}) : logger.warn(event, fields)) },
  });
  const environments = [...emulator.stack.functions.values()].map((spec) => spec.environment);
  // One runtime serves every handler in this process, so it gets what each of them would get on Lambda.
  Object.assign(process.env, ...environments, handlerEnvironment(emulator), {
    // Low, so a flood reaches the close (DeleteConnection) in a few frames.
    RATE_LIMIT: '1',
    RATE_BURST: '5',
    RATE_LIMIT_CLOSE_AFTER: '2',
    RESUME_SECRET,
  });
  const tableName = emulator.stack.table!.name;
  registry = new DynamoDbRegistry({ client: dynamoClient(emulator.dynamoEndpoint), tableName, ttlSeconds: 7200 });
  roomLog = new DynamoDbRoomLog({ client: dynamoClient(emulator.dynamoEndpoint), tableName, limits: DEFAULT_CORE_SETTINGS.roomLog });
  clientBase.send = function (command, ...rest) {
    inHandler.getStore()?.add(`${this.config.serviceId} ${command.constructor.name.replace(/Command$/, '')}`);
    return originalSend.call(this, command, ...rest);
  };
  signedTransport.send = function (...args) {
    inHandler.getStore()?.add('ApiGatewayManagementApi PostToConnection');
    return originalPost.apply(this, args);
  };
  signedTransport.close = function (...args) {
    inHandler.getStore()?.add('ApiGatewayManagementApi DeleteConnection');
    return originalDelete.apply(this, args);
  };
  signedTransport.isOpen = function (...args) {
    inHandler.getStore()?.add('ApiGatewayManagementApi GetConnection');
    return originalGet.apply(this, args);
  };
});

afterAll(async () => {
  clientBase.send = originalSend;
  Object.assign(signedTransport, { send: originalPost, close: originalDelete, isOpen: originalGet });
  await Promise.all(open.map((client) => client.close().catch(() => undefined)));
  await emulator?.stop();
});

type Invoke = (event: unknown) => Promise<WebSocketResult>;

function facts(connectionId: string): ConnectionFacts {
  const { port, stage, stack } = emulator;
  return { connectionId, connectedAt: Date.now(), sourceIp: '203.0.113.7', userAgent: 'permissions-test', domainName: `127.0.0.1:${port}`, stage, apiId: stack.apiId };
}

/** A client connected through the emulator, with its API Gateway connection id. */
async function member(room: string) {
  const clientId = uniqueName('member');
  const { client } = await TestClient.join(withQuery(emulator.url, { clientId, room }));
  open.push(client);
  const record = await registry.findByClientId(clientId);
  return { client, clientId, connectionId: record!.connectionId };
}

/**
 * Brings the room's log to just under the bound of its head, so the next
 * frame of the room, whichever handler sends it, copies the head into a chunk.
 */
/** Fills the room's open log slot, so that the next frame logged starts the next slot (a PutItem). */
async function fillOpenSlot(room: string): Promise<void> {
  await roomLog.append(room, { data: JSON.stringify({ type: 'note', text: 'x'.repeat(DEFAULT_CHUNK_BYTES) }), at: Date.now() });
}

/** A registry entry whose connection was welcomed and went away long ago without its $disconnect: a send to it answers 410. */
async function lostConnection(room: string, clientId = uniqueName('lost'), session?: string): Promise<string> {
  const connectionId = gatewayId();
  const longAgo = Date.now() - 10 * 60_000;
  const record = { connectionId, clientId, nameKey: nameKey(clientId), room, connectedAt: longAgo, lastActiveAt: longAgo, sourceIp: '203.0.113.7', identity: {}, rate: freshRateState(longAgo), session, greeted: true };
  expect(await registry.add(record)).toBe(true);
  return connectionId;
}

const scenarios: Record<string, (invoke: Invoke) => Promise<void>> = {
  async connect(invoke) {
    const room = uniqueName('room');
    const taken = await member(room);
    const connectionId = gatewayId();
    const handshake = (target: string) => ({ url: target, rawHeaders: ['Host', facts(connectionId).domainName] }) as unknown as IncomingMessage;
    const admitted = await invoke(connectEvent(facts(connectionId), handshake(`/${emulator.stage}?clientId=${taken.clientId}&room=${room}`), emulator.port));
    expect(admitted.statusCode).toBe(200);
    expect((await registry.get(connectionId))?.clientId).toBe(`${taken.clientId}-2`);
    // The same $connect again: the id is taken, so every clientId it claims is given back and it is refused.
    expect((await invoke(connectEvent(facts(connectionId), handshake(`/${emulator.stage}`), emulator.port))).statusCode).toBe(503);

    // A resume while the old connection is still registered: it takes the clientId over and the old one is closed.
    const resumed = gatewayId();
    const query = new URLSearchParams(taken.client.resumeQuery());
    expect((await invoke(connectEvent(facts(resumed), handshake(`/${emulator.stage}?${query}`), emulator.port))).statusCode).toBe(200);
    expect(await taken.client.next('error')).toMatchObject({ code: 'session_replaced' });
    await taken.client.waitClosed();
    expect((await registry.findByClientId(taken.clientId))?.connectionId).toBe(resumed);

    // A resume whose stale connection is already gone at API Gateway (its $disconnect lost): telling it answers 410,
    // so the handler reads its record (GetItem) before forgetting it.
    const lostClientId = uniqueName('lost');
    const stale = await lostConnection(room, lostClientId, 'lost-session');
    const token = new ResumeTokens(RESUME_SECRET).sign({ clientId: lostClientId, room, session: 'lost-session', expiresAt: Date.now() + 60_000 });
    const comeback = gatewayId();
    const resume = new URLSearchParams({ resume: token, since: '0' });
    expect((await invoke(connectEvent(facts(comeback), handshake(`/${emulator.stage}?${resume}`), emulator.port))).statusCode).toBe(200);
    expect(await registry.get(stale)).toBeUndefined();
    expect((await registry.findByClientId(lostClientId))?.connectionId).toBe(comeback);
  },

  async welcome(invoke) {
    const room = uniqueName('room');
    const newcomer = await member(room);
    const lost = await lostConnection(room);
    const address = { domainName: facts('').domainName, stage: emulator.stage };
    await fillOpenSlot(room);
    const slot = (index: number) =>
      dynamoClient(emulator.dynamoEndpoint).send(new GetItemCommand({ TableName: emulator.stack.table!.name, Key: { pk: { S: `log#${room}#${index}` } }, ConsistentRead: true }));
    expect((await invoke({ connectionId: newcomer.connectionId, ...address })).statusCode).toBe(200);
    expect(await newcomer.client.next('welcome')).toMatchObject({ clientId: newcomer.clientId, room });
    expect(await registry.get(lost)).toBeUndefined();
    // Its user_joined started the log's next slot: a replay from the start reads both.
    expect(Number((await slot(1)).Item?.first?.N)).toBeGreaterThan(1);
    expect((await invoke({ connectionId: newcomer.connectionId, ...address, greeting: { since: 0, continued: true } })).statusCode).toBe(200);
    expect(await newcomer.client.next('resumed')).toMatchObject({ clientId: newcomer.clientId, room });

    // Replaced by a resume of its session before it opened: the welcome finds no record and closes it.
    const replaced = await member(room);
    await registry.remove(replaced.connectionId);
    expect((await invoke({ connectionId: replaced.connectionId, ...address })).statusCode).toBe(200);
    expect(await replaced.client.next('error')).toMatchObject({ code: 'session_replaced' });
    await replaced.client.waitClosed();
  },

  async message(invoke) {
    const room = uniqueName('room');
    const sender = await member(room);
    const lost = await lostConnection(room);
    const say = (connectionId: string, frame: object) => invoke(messageEvent(facts(connectionId), '$default', JSON.stringify(frame)));
    await fillOpenSlot(room);
    await say(sender.connectionId, { type: 'chat', content: 'hello' });
    expect((await sender.client.next('chat')).message).toBe('hello');
    expect(await registry.get(lost)).toBeUndefined();
    await say(sender.connectionId, { type: 'private', to: uniqueName('nobody'), content: 'psst' });
    expect((await sender.client.next('error')).code).toBe('recipient_not_found');
    await say(sender.connectionId, { type: 'users' });
    await sender.client.next('users');
    await say(sender.connectionId, { type: 'state' });
    expect((await sender.client.next('state')).arrivals).toBeGreaterThan(0);
    await say(sender.connectionId, { type: 'join', room: uniqueName('room') });
    await sender.client.next('welcome');

    const flooder = await member(room);
    // The burst, then one refused frame per strike until the close.
    for (let i = 0; i < 5 + 2 + 1; i++) await say(flooder.connectionId, { type: 'ping' });
    await flooder.client.waitClosed();
  },

  async disconnect(invoke) {
    const room = uniqueName('room');
    const stayer = await member(room);
    const leaving = await lostConnection(room);
    const lost = await lostConnection(room);
    await fillOpenSlot(room);
    expect((await invoke(disconnectEvent(facts(leaving), 1001, 'Going away'))).statusCode).toBe(200);
    expect(await stayer.client.next('user_left')).toMatchObject({ room });
    expect(await registry.get(lost)).toBeUndefined();
  },
};

/** Every room state operation, and a refused increment (the read that explains it). */
async function useRoomState(ctx: Context): Promise<void> {
  const { clientId } = ctx.connection;
  await ctx.state.increment('arrivals');
  await ctx.state.set(clientId, { seen: true });
  await ctx.state.set(clientId, { seen: 'again' });
  await ctx.state.get(clientId);
  await ctx.state.increment(clientId).catch(() => undefined);
  await ctx.state.list();
  await ctx.state.delete(clientId);
}

function chatUsingRoomState(): App {
  const chat = createChatApp();
  return {
    ...chat,
    routes: { ...chat.routes, state: route({ parse: () => undefined, handle: async (ctx) => { await useRoomState(ctx); await ctx.reply({ type: 'state', ...(await ctx.state.list()) }); } }) },
    onConnect: useRoomState,
    onDisconnect: useRoomState,
  };
}

const chatHandlers = createAwsHandlers(chatUsingRoomState());

it('covers every function of the template with a scenario', () => {
  expect(functions.map((fn) => fn.file).sort()).toEqual(Object.keys(scenarios).sort());
});

it.each(functions)('$role allows exactly the calls the $logicalId handler makes', async ({ file, exportName, role }) => {
  // The built handler file `connect.mjs` exports createAwsHandlers(app).connect as `handler`.
  expect(exportName).toBe('handler');
  const handler = chatHandlers[basename(file) as keyof typeof chatHandlers] as unknown as Invoke;
  const calls = new Set<string>();
  await scenarios[file]!((event) => inHandler.run(calls, () => handler(event)));
  const needed = [...new Set([...calls].map(iamAction))].sort();
  const granted = grantedTo(role);
  expect(needed.length).toBeGreaterThan(0);
  expect(needed.filter((action) => !granted.includes(action)), `${role} lacks what ${file}.handler calls`).toEqual([]);
  expect(granted.filter((action) => !needed.includes(action)), `${role} allows what ${file}.handler never calls`).toEqual([]);
});

it('has the emulator deny none of the calls the built handlers made for the members, each under its own role', () => {
  // Runs last: by now every scenario's members have connected, chatted, resumed and left through the emulator.
  expect(denied).toEqual([]);
});
