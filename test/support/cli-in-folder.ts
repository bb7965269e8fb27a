/**
 * `node bin/cloudsocket.js ARGS` run from a folder of the test's own, as a
 * user runs it there: CLOUDSOCKET_DIST_DIR of the test run does not leak in.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../scripts/package-root.js';
import type { Run } from './deploy-cli.js';

export function runCliIn(cwd: string, args: string[]): Promise<Run> {
  const { CLOUDSOCKET_DIST_DIR: _dist, ...env } = process.env;
  return new Promise((resolve) => {
    execFile(process.execPath, [join(packageRoot, 'bin/cloudsocket.js'), ...args], { cwd, env }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
