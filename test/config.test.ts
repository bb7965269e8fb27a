/**
 * cloudsocket.config.ts: every mistake is one line naming the file and the
 * field; defaults fill in what is left out; the generated infra follows it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { awsTemplateFor, cloudbasercFor } from '../scripts/infra.js';
import { packageRoot } from '../scripts/package-root.js';
import { resolveProject } from '../scripts/project.js';
import { ConfigError } from '../shared/errors.js';

const folders: string[] = [];
afterAll(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

const resolve = (config: Record<string, unknown>) => resolveProject('/srv/app', '/srv/app/cloudsocket.config.ts', config as never);

describe('resolveProject', () => {
  it.each([
    [{ colour: 'blue' }, 'colour is not a config field'],
    [{ cloudbase: { concurrency: 500 } }, 'cloudbase.concurrency must be a whole number from 1 to 100, got 500'],
    [{ cloudbase: { idleTimeout: 1200 } }, 'cloudbase.idleTimeout must be a whole number from 10 to 900'],
    [{ cloudbase: { idleTimeout: 600, timeout: 300 } }, 'cloudbase.timeout must be a whole number from 600 (cloudbase.idleTimeout) to 900, got 300'],
    [{ cloudbase: { path: 'chat' } }, 'cloudbase.path must start with "/"'],
    [{ aws: { architecture: 'sparc' } }, 'aws.architecture must be one of "arm64", "x86_64", got "sparc"'],
    [{ aws: { stage: 'x'.repeat(65) } }, 'aws.stage must be 1-64'],
    [{ env: { 'BAD-NAME': 'x' } }, 'env.BAD-NAME is not a valid environment variable name'],
    [{ name: '9lives' }, 'name must start with a letter'],
  ])('refuses %j naming the field', (config, message) => {
    expect(() => resolve(config)).toThrow(ConfigError);
    expect(() => resolve(config)).toThrow(`/srv/app/cloudsocket.config.ts: ${message}`);
  });

  it('fills every default', () => {
    const project = resolveProject('/srv/app', undefined, {});
    expect(project).toMatchObject({ name: 'cloudsocket', builtInChat: true, page: 'chat', outDir: expect.any(String) });
    expect(project.cloudbase).toMatchObject({ functionName: 'cloudsocket', path: '/chat', concurrency: 100, idleTimeout: 600, timeout: 900, registry: 'memory' });
    expect(project.aws).toMatchObject({ stackName: 'cloudsocket', stage: 'dev', memory: 256, architecture: 'arm64', runtime: 'nodejs22.x', registry: 'dynamodb' });
  });
});

describe('the generated infra', () => {
  it('carries the config into the template and cloudbaserc.json', async () => {
    const project = resolveProject(packageRoot, undefined, {
      name: 'tally',
      env: { GREETING: 'hi', LOG_LEVEL: 'debug' },
      aws: { memory: 512, architecture: 'x86_64', env: { ONLY_AWS: '1' } },
      cloudbase: { concurrency: 10, idleTimeout: 300, path: '/tally', env: { ONLY_CB: '1' } },
    });
    const template = parse(await awsTemplateFor(project)) as { Parameters: Record<string, { Default?: unknown }>; Resources: Record<string, any> };
    const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(functions).toHaveLength(4);
    for (const fn of functions) {
      expect(fn.Properties).toMatchObject({ MemorySize: 512, Architectures: ['x86_64'] });
      expect(fn.Properties.Environment.Variables).toMatchObject({ GREETING: 'hi', ONLY_AWS: '1' });
      expect(fn.Properties.Environment.Variables.ONLY_CB).toBeUndefined();
      expect(fn.Properties.Environment.Variables.NODE_OPTIONS).toBeUndefined();
    }
    expect(template.Parameters.LogLevel!.Default).toBe('debug');
    const rc = cloudbasercFor(project) as { functions: Array<Record<string, any>> };
    expect(rc.functions[0]).toMatchObject({
      name: 'tally',
      timeout: 900,
      protocolParams: { wsParams: { idleTimeOut: 300 } },
      instanceConcurrencyConfig: { maxConcurrency: 10 },
      envVariables: { GREETING: 'hi', ONLY_CB: '1', ACCESS_PATH: '/tally' },
    });
  });
});

describe('the CLI with a broken config', () => {
  it.each([
    ['a field out of range', "export default { cloudbase: { concurrency: 0 } };", 'cloudbase.concurrency must be a whole number from 1 to 100, got 0'],
    ['a syntax error', 'export default {', 'cannot load'],
    ['no default export', 'export const config = {};', 'must export default defineConfig'],
  ])('build stops with one line and exit 1 on %s', async (_label, text, message) => {
    const folder = await mkdtemp(join(tmpdir(), 'cloudsocket-config-'));
    folders.push(folder);
    await writeFile(join(folder, 'cloudsocket.config.mjs'), text);
    const result = await new Promise<{ code: number; stderr: string }>((done) =>
      execFile(process.execPath, [join(packageRoot, 'bin/cloudsocket.js'), 'build'], { cwd: folder }, (error, _stdout, stderr) =>
        done({ code: error ? Number(error.code) : 0, stderr }),
      ),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
