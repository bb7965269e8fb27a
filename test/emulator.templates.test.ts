/**
 * Templates written the way SAM users write them: Globals, CodeUri folders,
 * SimpleTable, several tables, the stage named by the template itself.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListTablesCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTemplate } from '../scripts/aws-template.js';
import { startEmulator, type RunningEmulator } from '../scripts/emulator/index.js';
import { readStack, stageOfTemplate } from '../scripts/emulator/stack.js';
import { dynamoClient } from './support/dynalite.js';
import { testLogger } from './support/emulator.js';
import { TestClient } from './support/client.js';

const fixture = fileURLToPath(new URL('./fixtures/sam-app/', import.meta.url));
const running: RunningEmulator[] = [];
const folders: string[] = [];
afterAll(async () => {
  for (const emulator of running) await emulator.stop();
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

describe('a SAM template', () => {
  it('takes each function from its CodeUri folder, with Globals under its own properties', async () => {
    const template = await loadTemplate(join(fixture, 'template.yaml'));
    const empty = await mkdtemp(join(tmpdir(), 'cloudsocket-nodist-'));
    folders.push(empty);
    const stack = readStack({ template, distDir: empty, templateDir: fixture, stage: 'prod', region: 'us-east-1' });
    const connect = [...stack.functions.values()].find((fn) => fn.logicalId === 'OnConnect')!;
    expect(connect.file).toBe(join(fixture, 'src/app.mjs'));
    expect(connect).toMatchObject({ exportName: 'connect', runtime: 'nodejs20.x', timeoutMs: 5000, memoryMb: 512 });
    expect(connect.environment).toMatchObject({ GREETING: 'hello', SESSIONS: 'cloudsocket-Sessions' });
  });

  it('creates every table, SimpleTable included, names the stage the template deploys, and gives handlers the runtime SDK', async () => {
    const template = await loadTemplate(join(fixture, 'template.yaml'));
    expect(stageOfTemplate(template)).toBe('prod');
    // Outside this repository, so no node_modules above the handler can hold the SDK.
    const app = await mkdtemp(join(tmpdir(), 'cloudsocket-sam-'));
    folders.push(app);
    await cp(fixture, app, { recursive: true });
    const emulator = await startEmulator({ port: 0, templatePath: join(app, 'template.yaml'), distDir: app, logger: testLogger() });
    running.push(emulator);
    expect(emulator.stage).toBe('prod');
    expect(emulator.url).toMatch(/\/prod$/);
    const { TableNames } = await dynamoClient(emulator.dynamoEndpoint).send(new ListTablesCommand({}));
    expect(TableNames).toEqual(expect.arrayContaining(['cloudsocket-Sessions', 'cloudsocket-Rooms']));
    expect(emulator.stack.tables.find((table) => table.logicalId === 'Rooms')?.ttlAttribute).toBe('ttl');
    // The app's own $connect admits the handshake; the socket opens on the template's stage.
    const client = await TestClient.connect(emulator.url);
    expect(client.socketOpen()).toBe(true);
    const { Count } = await dynamoClient(emulator.dynamoEndpoint).send(new ScanCommand({ TableName: 'cloudsocket-Sessions' }));
    expect(Count).toBe(1);
    await client.close();
  });
});
