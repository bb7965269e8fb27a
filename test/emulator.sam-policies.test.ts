/**
 * A SAM chat whose functions get their permissions as SAM users give them:
 * policy templates (DynamoDBCrudPolicy, DynamoDBReadPolicy) and a managed
 * policy by name, on the role SAM makes for each function. It chats as it
 * would on AWS; without its policy template, or with a managed policy the
 * emulator does not know, its calls fail with AccessDenied as they would.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from '../shared/log.js';
import { startEmulator, type RunningEmulator } from '../scripts/emulator/index.js';
import { handshakeStatus, TestClient } from './support/client.js';
import { testLogger } from './support/emulator.js';

const fixture = fileURLToPath(new URL('./fixtures/sam-chat/', import.meta.url));
const running: RunningEmulator[] = [];
const folders: string[] = [];
afterAll(async () => {
  for (const emulator of running) await emulator.stop();
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

interface Logged {
  event: string;
  fields: Record<string, any>;
}

/** The fixture in a folder of its own (no node_modules above it), its template edited by `edit`, with the warnings it logs. */
async function startChat(edit: (template: string) => string = (template) => template) {
  const app = await mkdtemp(join(tmpdir(), 'cloudsocket-sam-chat-'));
  folders.push(app);
  await cp(fixture, app, { recursive: true });
  const templatePath = join(app, 'template.yaml');
  await writeFile(templatePath, edit(await readFile(templatePath, 'utf8')));
  const warnings: Logged[] = [];
  const base = testLogger();
  const logger: Logger = { ...base, warn: (event, fields) => (warnings.push({ event, fields: fields ?? {} }), base.warn(event, fields)) };
  const emulator = await startEmulator({ port: 0, templatePath, distDir: app, logger });
  running.push(emulator);
  return { emulator, warnings };
}

describe('SAM Policies on the role SAM makes', () => {
  it('lets two clients chat through DynamoDBCrudPolicy, DynamoDBReadPolicy and AmazonAPIGatewayInvokeFullAccess', async () => {
    const { emulator, warnings } = await startChat();
    expect(emulator.stack.functions.get('cloudsocket-OnConnect')!.role?.roleName).toBe('cloudsocket-OnConnectRole');
    const alice = await TestClient.connect(emulator.url);
    const bob = await TestClient.connect(emulator.url);
    alice.send({ action: 'sendmessage', data: JSON.stringify({ type: 'said', text: 'hello bob' }) });
    expect(await bob.next('said')).toEqual({ type: 'said', text: 'hello bob' });
    expect(await alice.next('said')).toEqual({ type: 'said', text: 'hello bob' });
    await Promise.all([alice.close(), bob.close()]);
    expect(warnings.filter((entry) => entry.event === 'access_denied')).toEqual([]);
  });

  it('refuses $connect\'s PutItem once DynamoDBCrudPolicy is taken away: the handshake fails and the denial is logged', async () => {
    const { emulator, warnings } = await startChat((template) =>
      template.replace(/(Handler: chat\.onConnect\n)\s+Policies:\n\s+- DynamoDBCrudPolicy:\n\s+TableName: !Ref Connections\n/, '$1'),
    );
    const { status } = await handshakeStatus(emulator.url);
    expect(status).toBe(500);
    const denied = warnings.find((entry) => entry.event === 'access_denied');
    expect(denied?.fields).toMatchObject({
      service: 'dynamodb',
      action: 'dynamodb:PutItem',
      principal: `arn:aws:sts::${emulator.stack.accountId}:assumed-role/cloudsocket-OnConnectRole/cloudsocket-OnConnect`,
      resource: `arn:aws:dynamodb:us-east-1:${emulator.stack.accountId}:table/cloudsocket-Connections`,
    });
  });

  it('logs a managed policy it does not know at start, treats it as allowing nothing, and names it beside the denial', async () => {
    const unknown = 'arn:aws:iam::aws:policy/AmazonDynamoDBSomethingNew';
    const { emulator, warnings } = await startChat((template) =>
      template.replace(/(Handler: chat\.onConnect\n\s+Policies:\n)\s+- DynamoDBCrudPolicy:\n\s+TableName: !Ref Connections\n/, `$1        - ${unknown}\n`),
    );
    const notEvaluated = warnings.filter((entry) => entry.event === 'policy_not_evaluated' && entry.fields.function === 'cloudsocket-OnConnect');
    expect(notEvaluated).toHaveLength(1);
    expect(notEvaluated[0]!.fields.skipped).toContain(unknown);
    expect((await handshakeStatus(emulator.url)).status).toBe(500);
    const denied = warnings.find((entry) => entry.event === 'access_denied');
    expect(denied?.fields.action).toBe('dynamodb:PutItem');
    expect(denied?.fields.notEvaluated).toEqual([expect.stringContaining(unknown)]);
  });
});
