/**
 * What `deploy` and `remove` share: flag checks (each names the flag it
 * rejects), the paths of the infra files, and the build step.
 */
import { join } from 'node:path';
import { buildAll } from '../build.js';
import type { Project } from '../project.js';
import { UsageError } from '../cli-args.js';
import { createAwsTarget, createDryRunAwsTarget, resolveRegion, type AwsTarget } from './aws-target.js';
import { checkEnvId, createCloudbaseManager, createDryRunCloudbaseManager, describeManagerInit, type CloudbaseManager } from './cloudbase-target.js';
import type { Reporter } from './aws-stack.js';

/** The build writes both from the project's config (or copies the project's own template). */
export const templatePathOf = (project: Project) => join(project.outDir, 'aws/template.yaml');
export const cloudbasercPathOf = (project: Project) => join(project.outDir, 'cloudbaserc.json');

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

export interface DryRun {
  /** Printed first, before anything else the dry run says. */
  notes: string[];
  /** Whether the printed plan assumes what deploy makes already exists (a removal) or nothing does (a first deploy). */
  assumeExisting: boolean;
}

/** The real AWS clients, or with `dryRun` a stand-in that prints each call instead of sending it. */
export async function awsTargetFor(regionFlag: string | undefined, say: (line: string) => void, dryRun?: DryRun): Promise<AwsTarget> {
  if (!dryRun) return createAwsTarget(regionFlag);
  const region = await resolveRegion(regionFlag);
  const [first, ...rest] = dryRun.notes;
  if (first) say(first);
  if (!region) say('no region configured: showing us-east-1; the real run needs --region or AWS_REGION');
  rest.forEach(say);
  return createDryRunAwsTarget(region ?? 'us-east-1', say, dryRun.assumeExisting);
}

/** The real CloudBase manager, or with `dryRun` a stand-in that prints each call instead of sending it. */
export function cloudbaseManagerFor(envId: string, say: (line: string) => void, dryRun?: DryRun): CloudbaseManager {
  if (!dryRun) return createCloudbaseManager(envId);
  dryRun.notes.forEach(say);
  say(describeManagerInit(envId));
  return createDryRunCloudbaseManager(envId, say, dryRun.assumeExisting);
}

export function reporter(say: (line: string) => void, pollIntervalMs: number): Reporter {
  return { say, pollIntervalMs, pause: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) };
}

export async function buildForAws(project: Project, say: (line: string) => void): Promise<string> {
  return (await buildAll(project, say)).aws.zip;
}

export async function buildForCloudbase(project: Project, say: (line: string) => void): Promise<string> {
  return (await buildAll(project, say)).cloudbase.zip;
}
