/**
 * A handler's calls to AWS, as AWS users write them, through the emulator:
 * the management API at https://{domainName}/{stage} on the WebSocket's own
 * port (the handler trusting the emulator's certificate as its environment
 * says; a client built with no endpoint fails, as it would on AWS), and every
 * call signed with the function's own credentials and checked against its
 * role, refused in AWS's words when the role does not allow it.
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
    client.send({ action: 'callback', call: 'post', endpoint: 'none' });
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

describe('the function\'s role', () => {
  /** Asks the handler to make one call; resolves to what it reports. */
  async function attempt(call: string, option?: string) {
    const client = await TestClient.connect(emulator.url);
    client.send({ action: 'callback', call, option });
    const answer = await client.next((frame) => frame.type === 'done' || frame.type === 'failed');
    await client.close();
    return answer;
  }
  const principal = () => `arn:aws:sts::${emulator.stack.accountId}:assumed-role/cloudsocket-CallbackRole/callback-app`;
  const tableArn = () => `arn:aws:dynamodb:us-east-1:${emulator.stack.accountId}:table/cloudsocket-Notes`;

  it('gives each function its own session credentials, not the operator\'s', () => {
    const env = emulator.stack.functions.get('callback-app')!.environment;
    expect(env.AWS_ACCESS_KEY_ID).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(env.AWS_SECRET_ACCESS_KEY).not.toBe('local');
    expect(env.AWS_SESSION_TOKEN).toEqual(expect.any(String));
  });

  it('allows what a statement allows, with a wildcard in its action', async () => {
    expect(await attempt('get')).toEqual({ type: 'done', call: 'get' });
  });

  it('refuses a DynamoDB call a Deny statement names, over an Allow, with AccessDeniedException in AWS\'s words', async () => {
    const put = await attempt('put');
    expect(put).toMatchObject({ type: 'failed', name: 'AccessDeniedException', status: 400 });
    expect(put.message).toBe(`User: ${principal()} is not authorized to perform: dynamodb:PutItem on resource: ${tableArn()} with an explicit deny in an identity-based policy`);
  });

  it('refuses a Lambda invocation the role does not allow with AccessDeniedException, before looking the function up', async () => {
    const invoke = await attempt('invoke');
    expect(invoke).toMatchObject({ type: 'failed', name: 'AccessDeniedException', status: 403 });
    const functionArn = `arn:aws:lambda:us-east-1:${emulator.stack.accountId}:function:callback-app`;
    expect(invoke.message).toBe(
      `User: ${principal()} is not authorized to perform: lambda:InvokeFunction on resource: ${functionArn} because no identity-based policy allows the lambda:InvokeFunction action`,
    );
  });

  const implicitly = (action: string, resource = tableArn()) =>
    `User: ${principal()} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`;
  const explicitly = (action: string, resource = tableArn()) =>
    `User: ${principal()} is not authorized to perform: ${action} on resource: ${resource} with an explicit deny in an identity-based policy`;

  it('allows a Query of the partition a ForAllValues condition on dynamodb:LeadingKeys names, in the region it names, and no other', async () => {
    expect(await attempt('query', 'mine')).toEqual({ type: 'done', call: 'query' });
    expect(await attempt('query', 'theirs')).toMatchObject({ type: 'failed', name: 'AccessDeniedException', message: implicitly('dynamodb:Query') });
  });

  it('allows what a NotAction statement leaves in and refuses what it leaves out', async () => {
    expect(await attempt('update')).toEqual({ type: 'done', call: 'update' });
    expect(await attempt('remove')).toMatchObject({ type: 'failed', name: 'AccessDeniedException', message: implicitly('dynamodb:DeleteItem') });
  });

  it('resolves policy variables in a Resource and a Condition from the request, and a variable the request lacks matches nothing', async () => {
    expect(await attempt('remove', emulator.stack.accountId)).toEqual({ type: 'done', call: 'remove' });
    expect(await attempt('remove', 'someone-else')).toMatchObject({ type: 'failed', name: 'AccessDeniedException', message: implicitly('dynamodb:DeleteItem') });
  });

  it('applies a Deny whose condition on dynamodb:ReturnValues the request meets, and only then', async () => {
    expect(await attempt('update', 'ALL_OLD')).toMatchObject({ type: 'failed', name: 'AccessDeniedException', message: explicitly('dynamodb:UpdateItem') });
    expect(await attempt('update', 'UPDATED_NEW')).toEqual({ type: 'done', call: 'update' });
  });

  it('reads StringEqualsIfExists as true when the request has no dynamodb:Select, and checks it when it has one', async () => {
    expect(await attempt('scan')).toEqual({ type: 'done', call: 'scan' });
    expect(await attempt('scan', 'COUNT')).toEqual({ type: 'done', call: 'scan' });
    expect(await attempt('scan', 'ALL_ATTRIBUTES')).toMatchObject({ type: 'failed', name: 'AccessDeniedException', message: implicitly('dynamodb:Scan') });
  });

  it('denies every table a NotResource Deny leaves out', async () => {
    const elsewhere = `arn:aws:dynamodb:us-east-1:${emulator.stack.accountId}:table/elsewhere`;
    expect(await attempt('elsewhere')).toMatchObject({ type: 'failed', name: 'AccessDeniedException', message: explicitly('dynamodb:GetItem', elsewhere) });
  });

  it('refuses a DeleteConnection when only POST is allowed, with ForbiddenException, and keeps the connection', async () => {
    const client = await TestClient.connect(emulator.url);
    client.send({ action: 'callback', call: 'delete' });
    const answer = await client.next((frame) => frame.type === 'done' || frame.type === 'failed');
    expect(answer).toMatchObject({ type: 'failed', name: 'ForbiddenException', status: 403 });
    expect(answer.message).toMatch(
      new RegExp(`^User: ${principal().replace(/[/.]/g, '\\$&')} is not authorized to perform: execute-api:ManageConnections on resource: arn:aws:execute-api:us-east-1:\\d+:\\w+/live/DELETE/@connections/`),
    );
    expect(client.socketOpen()).toBe(true);
    await client.close();
  });
});
