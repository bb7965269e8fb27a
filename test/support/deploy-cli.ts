/**
 * `node bin/cloudsocket.js` as a user runs deploy and remove, but with every
 * AWS_*, TENCENTCLOUD_*, TCB_* and proxy variable stripped, a HOME without
 * ~/.aws, and a dist/ of its own: no credential or proxy of the machine can
 * leak in, and no build another test is reading gets rewritten.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { packageRoot as projectRoot } from '../../scripts/package-root.js';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export type Cli = (args: string[], extra?: Record<string, string>) => Promise<Run>;

/** A runner for the test file that calls this; its temp dirs last as long as the file's tests. */
export function useDeployCli(): Cli {
  let home: string;
  let dist: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'cloudsocket-home-'));
    dist = await mkdtemp(join(tmpdir(), 'cloudsocket-deploy-dist-'));
  });
  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
    await rm(dist, { recursive: true, force: true });
  });

  function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!/^(AWS_|TENCENTCLOUD_|TCB_)|^(https?|no|all)_proxy$/i.test(key)) env[key] = value;
    }
    // No shared config files, and no instance metadata service to wait for.
    return { ...env, HOME: home, CLOUDSOCKET_DIST_DIR: dist, AWS_EC2_METADATA_DISABLED: 'true', ...extra };
  }

  return (args, extra = {}) =>
    new Promise((resolve) => {
      execFile(process.execPath, [join(projectRoot, 'bin/cloudsocket.js'), ...args], { cwd: projectRoot, env: cleanEnv(extra) }, (error, stdout, stderr) => {
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
}

/** The lines of stderr that the CLI itself wrote, and any line of a stack trace. */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('cloudsocket:') || /^\s+at /.test(line));
}
