/**
 * Templates written the way SAM users write them: Globals, CodeUri folders,
 * SimpleTable, several tables, the stage named by the template itself.
 */
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
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

  it.each([
    ['a container image', { PackageType: 'Image', ImageUri: 'repo:tag' }, 'OnConnect: PackageType Image (a container image) is not run by the emulator'],
    ['code in the template', { InlineCode: 'exports.connect = async () => ({})', Handler: 'index.connect' }, 'OnConnect: code written into the template (InlineCode, Code.ZipFile) is not run by the emulator'],
    ['code in S3', { CodeUri: 's3://bucket/code.zip' }, 'OnConnect.CodeUri s3://bucket/code.zip: code in S3 is not fetched by the emulator'],
    ['a TypeScript handler', { Handler: 'app.connect', CodeUri: 'ts' }, 'is TypeScript, which Lambda\'s Node.js runtime does not run'],
    ['an intrinsic it does not resolve', { Environment: { Variables: { ZONE: { 'Fn::Select': [0, { 'Fn::GetAZs': '' }] } } } }, 'OnConnect.Environment.Variables.ZONE: Fn::Select from {"Fn::GetAZs":""} is not resolved locally'],
    ['no Handler', { Handler: undefined }, 'OnConnect: no Handler (file.export) is given'],
  ])('names what it cannot run in a function: %s', async (_label, properties, message) => {
    const template = await loadTemplate(join(fixture, 'template.yaml'));
    const folder = await mkdtemp(join(tmpdir(), 'cloudsocket-sam-bad-'));
    folders.push(folder);
    await cp(fixture, folder, { recursive: true });
    await mkdir(join(folder, 'ts'));
    await writeFile(join(folder, 'ts/app.ts'), 'export const connect = async () => ({ statusCode: 200 });\n');
    const onConnect = template.Resources.OnConnect!;
    onConnect.Properties = { ...onConnect.Properties, ...properties };
    expect(() => readStack({ template, distDir: folder, templateDir: folder, stage: 'prod', region: 'us-east-1' })).toThrow(message);
  });
});
