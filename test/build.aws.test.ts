/**
 * The Lambda zip as AWS receives it: exactly the four handlers, each one file
 * that loads with no node_modules anywhere above it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWS_HANDLERS, buildAws } from '../scripts/build.js';
import { loadTemplate } from '../scripts/aws-template.js';
import { unzip } from './support/servers.js';

const run = promisify(execFile);

let outDir: string;
let unpacked: string;
let entries: Map<string, number>;

beforeAll(async () => {
  outDir = await mkdtemp(join(tmpdir(), 'cloudsocket-build-'));
  const { zip } = await buildAws(outDir);
  unpacked = await mkdtemp(join(tmpdir(), 'cloudsocket-lambda-'));
  entries = await unzip(zip, unpacked);
});

afterAll(async () => {
  await rm(outDir, { recursive: true, force: true });
  await rm(unpacked, { recursive: true, force: true });
});

/** Runs `script` as an ES module in the unpacked directory with a bare environment. */
async function nodeIn(directory: string, script: string): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: directory,
    env: { PATH: process.env.PATH ?? '', AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x' },
  });
}

describe('dist/aws/lambda.zip', () => {
  it('holds exactly connect, message, disconnect and welcome .mjs and their source maps at its root', () => {
    expect([...entries.keys()].sort()).toEqual([
      'connect.mjs',
      'connect.mjs.map',
      'disconnect.mjs',
      'disconnect.mjs.map',
      'message.mjs',
      'message.mjs.map',
      'welcome.mjs',
      'welcome.mjs.map',
    ]);
  });

  it('matches every Handler the template names', async () => {
    const template = await loadTemplate();
    const handlers = Object.values(template.Resources)
      .filter((r) => r.Type === 'AWS::Lambda::Function')
      .map((r) => String(r.Properties?.Handler))
      .sort();
    expect(handlers).toEqual(AWS_HANDLERS.map((name) => `${name}.handler`).sort());
  });

  it('is unpacked where no node_modules can be reached', () => {
    for (let dir = unpacked; ; dir = dirname(dir)) {
      expect(existsSync(join(dir, 'node_modules')), `${dir}/node_modules`).toBe(false);
      if (dirname(dir) === dir) break;
    }
  });

  for (const name of AWS_HANDLERS) {
    it(`${name}.mjs loads on its own and exports a handler function`, async () => {
      const { stdout } = await nodeIn(unpacked, `const m = await import('./${name}.mjs'); console.log(typeof m.handler);`);
      expect(stdout.trim()).toBe('function');
    });
  }

  it("carries only what each handler uses: the Lambda client in $connect's alone, no management API client at all, and no credential chain beyond the environment", async () => {
    const text = (name: string) => readFile(join(unpacked, `${name}.mjs`), 'utf8');
    // keepNames keeps class names as strings, so a bundled class shows.
    expect(await text('connect')).toContain('"InvokeCommand"');
    for (const name of ['message', 'disconnect', 'welcome']) expect(await text(name), name).not.toContain('"InvokeCommand"');
    // Every @connections call (posts, the welcome's GetConnection, deletes) goes through SignedManagementTransport.
    for (const name of AWS_HANDLERS) {
      const bundle = await text(name);
      expect(bundle, name).not.toContain('"ApiGatewayManagementApiClient"');
      if (name !== 'connect') expect(bundle, name).toContain('"SignedManagementTransport"');
    }
    for (const name of AWS_HANDLERS) {
      const bundle = await text(name);
      expect(bundle, name).toContain('MissingEnvironmentCredentialsError');
      for (const provider of ['"fromSSO"', '"fromIni"', '"fromTokenFile"', '"fromInstanceMetadata"', '"SSOOIDCClient"', '"STSClient"']) expect(bundle, `${name} ${provider}`).not.toContain(provider);
    }
  });

  it('fails a handler with no credentials in its environment with a logged error saying where Lambda puts them', async () => {
    const event = {
      requestContext: { routeKey: '$default', eventType: 'MESSAGE', connectionId: 'abc=', domainName: 'x', stage: 'dev', apiId: 'x', requestId: 'r', identity: { sourceIp: '203.0.113.1' } },
      body: '{"type":"ping"}',
    };
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', `const { handler } = await import('./message.mjs'); console.log('RESULT ' + JSON.stringify(await handler(${JSON.stringify(event)})));`], {
      cwd: unpacked,
      // A table is named, so the handler reaches DynamoDB, and the endpoint is nothing that answers: credentials are what fails first.
      env: { PATH: process.env.PATH ?? '', AWS_REGION: 'us-east-1', CONNECTIONS_TABLE: 'table', AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9' },
    });
    const result = JSON.parse(stdout.split('\n').find((line) => line.startsWith('RESULT '))!.slice('RESULT '.length));
    expect(result).toEqual({ statusCode: 500, body: 'internal error' });
    expect(stdout).toContain('no AWS credentials in the environment');
  });

  it('answers a bare 500 and logs the reason when CONNECTIONS_TABLE is missing', async () => {
    const event = {
      requestContext: { routeKey: '$default', eventType: 'MESSAGE', connectionId: 'abc=', domainName: 'x', stage: 'dev', apiId: 'x', requestId: 'r', identity: { sourceIp: '203.0.113.1' } },
      body: 'hello',
    };
    const { stdout } = await nodeIn(
      unpacked,
      `const { handler } = await import('./message.mjs'); console.log('RESULT ' + JSON.stringify(await handler(${JSON.stringify(event)})));`,
    );
    const result = JSON.parse(stdout.split('\n').find((line) => line.startsWith('RESULT '))!.slice('RESULT '.length));
    expect(result).toEqual({ statusCode: 500, body: 'internal error' });
    const log = stdout.split('\n').find((line) => line.includes('runtime_unavailable'));
    expect(JSON.parse(log!)).toMatchObject({ level: 'error', connectionId: 'abc=', error: { code: 'invalid_config' } });
  });
});
