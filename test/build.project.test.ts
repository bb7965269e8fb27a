/**
 * Building a project of its own: the config is found from a folder below it,
 * the app (not the chat) is what the zip runs, and a stack trace in the
 * function's log names the app's TypeScript line, on CloudBase (Node maps it)
 * and on AWS (the adapter maps it when it logs, so no cold start pays for the map).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAll } from '../scripts/build.js';
import { loadProject, type Project } from '../scripts/project.js';
import { startEmulator, type RunningEmulator } from '../scripts/emulator/index.js';
import { packageRoot } from '../scripts/package-root.js';
import { runArtifact, type RunningArtifact } from '../scripts/run-artifact.js';
import { UnavailableError } from '../shared/errors.js';
import { TestClient } from './support/client.js';
import { testLogger } from './support/emulator.js';

const fixture = fileURLToPath(new URL('./fixtures/throwing-app/', import.meta.url));
let project: Project;
let out: string;
let running: RunningArtifact;
let emulator: RunningEmulator | undefined;

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'cloudsocket-project-'));
  project = { ...(await loadProject(join(fixture, 'src'))), outDir: out };
  await buildAll(project);
  running = await runArtifact(join(out, 'cloudbase'), { port: 0, env: { HOST: '127.0.0.1', LOG_LEVEL: 'info' } });
});

afterAll(async () => {
  await running?.stop();
  await emulator?.stop();
  await rm(out, { recursive: true, force: true });
});

describe('a project with its own app', () => {
  it('is found from a folder below its config, with its names', () => {
    expect(project.root).toBe(fixture.replace(/\/$/, ''));
    expect(project.name).toBe('throwing');
    expect(project.appModule).toBe(join(fixture, 'src/app.ts'));
    expect(project.page).toBe(false);
    expect(project.cloudbase.path).toBe('/throwing');
  });

  it('runs its own routes, not the chat', async () => {
    const { client, welcome } = await TestClient.join(`ws://127.0.0.1:${running.port}/`);
    expect(welcome.message).toBeUndefined();
    client.send({ type: 'chat', content: 'no chat here' });
    expect(await client.next('error')).toMatchObject({ code: 'unknown_type' });
    await client.close();
  });

  it("logs a route's failure with a stack trace that names the app's TypeScript line, and tells the sender only `unavailable`", async () => {
    const { client } = await TestClient.join(`ws://127.0.0.1:${running.port}/`);
    client.send({ type: 'boom' });
    const answer = await client.next('error');
    expect(answer).toMatchObject({ code: 'unavailable', message: new UnavailableError().message });
    expect(client.socketOpen()).toBe(true);
    expect(JSON.stringify(client.frames)).not.toMatch(/boom from the app|\s+at\s/);
    await client.close();
    const line = await running.waitForLine((text) => text.includes('"handler_failed"'));
    const lineOfThrow = (await readFile(join(fixture, 'src/app.ts'), 'utf8')).split('\n').findIndex((text) => text.includes('throw new Error')) + 1;
    expect(JSON.parse(line).error.stack).toContain(`src/app.ts:${lineOfThrow}:`);
  });

  it('generates the CloudBase and AWS infra from the config', async () => {
    const rc = JSON.parse(await readFile(join(out, 'cloudbaserc.json'), 'utf8'));
    expect(rc.functions[0]).toMatchObject({ name: 'throwing', protocolType: 'WS', envVariables: { ACCESS_PATH: '/throwing' } });
    const template = await readFile(join(out, 'aws/template.yaml'), 'utf8');
    expect(template).toContain('throwing: a cloudsocket app');
    // Node's own source maps would cost every cold start the map's reading (docs/config.md).
    expect(template).not.toContain('NODE_OPTIONS');
  });

  it('ships bundles that name no path of the machine that built them', async () => {
    const bundles = ['aws/connect.mjs', 'aws/message.mjs', 'aws/disconnect.mjs', 'aws/welcome.mjs', 'cloudbase/index.mjs'];
    for (const bundle of bundles) {
      const text = await readFile(join(out, bundle), 'utf8');
      expect(text, bundle).not.toContain(packageRoot);
      // The app is still named in the bundle's own error message, from the project's root.
      expect(text, bundle).toContain('"src/app.ts"');
    }
  });

  it("logs a route's failure on AWS with a stack trace that names the app's TypeScript line, though Node's source maps are off", async () => {
    let reportFailure!: (line: string) => void;
    const failure = new Promise<string>((resolve) => (reportFailure = resolve));
    emulator = await startEmulator({
      port: 0,
      distDir: join(out, 'aws'),
      logger: testLogger(),
      onLog: (_functionName, line) => {
        if (line.includes('"handler_failed"')) reportFailure(line);
      },
    });
    const { client } = await TestClient.join(emulator.url);
    client.send({ type: 'boom' });
    expect(await client.next('error')).toMatchObject({ code: 'unavailable' });
    await client.close();
    const stack: string = JSON.parse(await failure).error.stack;
    const lineOfThrow = (await readFile(join(fixture, 'src/app.ts'), 'utf8')).split('\n').findIndex((text) => text.includes('throw new Error')) + 1;
    expect(stack).toContain(`${join(fixture, 'src/app.ts')}:${lineOfThrow}:`);
    expect(stack).not.toMatch(/message\.mjs:\d+:\d+/);
  });
});
