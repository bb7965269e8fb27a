/**
 * What `deploy` and `remove` share: flag checks (each names the flag it
 * rejects), the paths of the infra files, and the build step.
 */
import { join } from 'node:path';
import { buildAll, buildCloudbase, distDir, projectRoot } from '../build.js';
import { UsageError } from '../cli-args.js';
import { checkEnvId } from './cloudbase-target.js';
import type { Reporter } from './aws-stack.js';

export const TEMPLATE_PATH = join(projectRoot, 'infra/aws/template.yaml');
export const CLOUDBASERC_PATH = join(projectRoot, 'infra/cloudbase/cloudbaserc.json');

function check(command: string, flag: string, value: string, shape: RegExp, rule: string): string {
  if (!shape.test(value)) throw new UsageError(`${command}: --${flag} ${rule}, got ${JSON.stringify(value.slice(0, 80))}`);
  return value;
}

export const checkStack = (command: string, value: string) =>
  check(command, 'stack', value, /^[A-Za-z][A-Za-z0-9-]{0,127}$/, 'must start with a letter and hold only letters, digits and "-" (at most 128)');
export const checkStage = (command: string, value: string) =>
  check(command, 'stage', value, /^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "_" or "-"');
export const checkBucket = (command: string, value: string) =>
  check(command, 'bucket', value, /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name (3-63 lower-case letters, digits, "." or "-")');
export const checkFunctionName = (command: string, value: string) =>
  check(command, 'name', value, /^[A-Za-z][A-Za-z0-9_-]{1,59}$/, 'must be 2-60 letters, digits, "_" or "-", starting with a letter');
export const checkAccessPath = (command: string, value: string) =>
  check(command, 'path', value, /^\/[A-Za-z0-9_\-/]{0,127}$/, 'must start with "/" and hold only letters, digits, "_", "-" and "/"');

export function requireEnvId(command: string, value: string | undefined): string {
  if (!value) throw new UsageError(`${command}: --env ENV_ID is required (the environment id from the CloudBase console)`);
  return checkEnvId(value);
}

export function reporter(say: (line: string) => void, pollIntervalMs: number): Reporter {
  return { say, pollIntervalMs, pause: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) };
}

export async function buildForAws(say: (line: string) => void): Promise<string> {
  await buildAll(undefined, say);
  return join(distDir, 'aws/lambda.zip');
}

export async function buildForCloudbase(say: (line: string) => void): Promise<string> {
  const artifact = await buildCloudbase();
  say(`built ${artifact.zip}`);
  return artifact.zip;
}
