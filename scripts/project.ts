/**
 * The project the CLI works on: `cloudsocket.config.ts` (or .js/.mjs), found
 * from the working directory upward, read and checked into one resolved
 * description with every default filled in. No config file: the built-in
 * chat, served from the working directory.
 */
import { existsSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build as esbuild } from 'esbuild';
import type { AwsTargetConfig, CloudbaseTargetConfig, CloudbaseVpcConfig, CloudsocketConfig } from '../shared/config.js';
import { ConfigError } from '../shared/errors.js';
import { builtInModule, selfResolvePlugin } from './package-root.js';

export const CONFIG_FILES = ['cloudsocket.config.ts', 'cloudsocket.config.mts', 'cloudsocket.config.js', 'cloudsocket.config.mjs'];

export interface Project {
  /** The folder of the config file, or the working directory when there is none. */
  root: string;
  configPath: string | undefined;
  name: string;
  /** Absolute path of the module exporting the app. */
  appModule: string;
  /** True when the project runs the built-in chat. */
  builtInChat: boolean;
  /** The page's HTML file, 'chat' for the built-in page, or false. */
  page: string | false;
  outDir: string;
  env: Record<string, string>;
  cloudbase: Required<Omit<CloudbaseTargetConfig, 'envId' | 'memory' | 'redisUrl' | 'vpc'>> & {
    envId: string | undefined;
    memory: number;
    redisUrl: string | undefined;
    vpc: CloudbaseVpcConfig | undefined;
  };
  aws: Required<Omit<AwsTargetConfig, 'region' | 'template'>> & { region: string | undefined; template: string | undefined };
}

/** The config file that governs `cwd`: the nearest one in it or a folder above. */
export function findConfig(cwd: string): string | undefined {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    for (const name of CONFIG_FILES) {
      const candidate = join(dir, name);
      if (existsSync(candidate)) return candidate;
    }
    if (dirname(dir) === dir) return undefined;
  }
}

export async function loadProject(cwd = process.cwd()): Promise<Project> {
  const configPath = findConfig(cwd);
  const root = configPath ? dirname(configPath) : resolve(cwd);
  const config = configPath ? await readConfig(configPath) : {};
  return resolveProject(root, configPath, config);
}

/**
 * Imports the config file. TypeScript (and any import of `cloudsocket`) is
 * bundled by esbuild into a temporary module beside it, so its relative
 * imports and the project's packages resolve as they would from the file itself.
 */
async function readConfig(configPath: string): Promise<CloudsocketConfig> {
  const temporary = join(dirname(configPath), `.${basename(configPath)}.${process.pid}.${Date.now()}.mjs`);
  let loaded: unknown;
  try {
    const result = await esbuild({
      entryPoints: [configPath],
      bundle: true,
      write: false,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      plugins: [selfResolvePlugin()],
      logLevel: 'silent',
    });
    await writeFile(temporary, result.outputFiles[0]!.text);
    loaded = ((await import(pathToFileURL(temporary).href)) as { default?: unknown }).default;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`cannot load ${configPath}: ${firstLine(error)}`);
  } finally {
    await rm(temporary, { force: true });
  }
  if (typeof loaded !== 'object' || loaded === null || Array.isArray(loaded)) {
    throw new ConfigError(`${configPath} must export default defineConfig({ ... })`);
  }
  return loaded as CloudsocketConfig;
}

function firstLine(error: unknown): string {
  const errors = (error as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }).errors;
  if (errors?.[0]) {
    const { text, location } = errors[0];
    return location ? `${location.file}:${location.line}: ${text}` : text;
  }
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

export function resolveProject(root: string, configPath: string | undefined, config: CloudsocketConfig): Project {
  const where = configPath ?? 'the built-in defaults';
  const check = new FieldChecker(where);
  check.keys('', config, ['name', 'app', 'page', 'outDir', 'env', 'cloudbase', 'aws']);
  const name = check.name('name', config.name ?? defaultName(root, configPath !== undefined));
  const appModule = config.app === undefined ? builtInModule('apps/chat/app') : resolve(root, check.string('app', config.app));
  if (config.app !== undefined && !existsSync(appModule)) throw new ConfigError(`${where}: app: ${appModule} does not exist`);
  const builtInChat = config.app === undefined;
  const pageField = config.page === undefined ? (builtInChat ? 'chat' : false) : config.page;
  let page: string | false = false;
  if (pageField === 'chat') page = 'chat';
  else if (pageField !== false) {
    page = resolve(root, check.string('page', pageField));
    if (!existsSync(page)) throw new ConfigError(`${where}: page: ${page} does not exist`);
  }
  const outDir = process.env.CLOUDSOCKET_DIST_DIR
    ? resolve(process.env.CLOUDSOCKET_DIST_DIR)
    : resolve(root, check.string('outDir', config.outDir ?? 'dist'));
  const env = check.env('env', config.env);

  const cb = config.cloudbase ?? {};
  check.keys('cloudbase.', cb, ['envId', 'functionName', 'runtime', 'concurrency', 'idleTimeout', 'timeout', 'memory', 'path', 'env', 'registry', 'redisUrl', 'vpc']);
  const redisUrl = cb.redisUrl === undefined ? undefined : check.redisUrl('cloudbase.redisUrl', cb.redisUrl);
  const cbEnv = check.env('cloudbase.env', cb.env);
  const registry = check.choice('cloudbase.registry', cb.registry ?? (redisUrl ? 'redis' : 'memory'), ['memory', 'redis'] as const);
  if (registry === 'redis' && !redisUrl && !(cbEnv.REDIS_URL ?? env.REDIS_URL)) {
    throw new ConfigError(`${where}: cloudbase.registry is "redis" but no Redis is named: set cloudbase.redisUrl (or REDIS_URL in cloudbase.env)`);
  }
  if (registry === 'memory' && redisUrl) throw new ConfigError(`${where}: cloudbase.redisUrl is set but cloudbase.registry is "memory"; drop one of them`);
  const functionName = check.name('cloudbase.functionName', cb.functionName ?? name);
  // CloudBase allows idle timeouts up to 7200 s, but the function timeout (at most 900 s) must be at least as long.
  const idleTimeout = check.integer('cloudbase.idleTimeout', cb.idleTimeout ?? 600, 10, 900);
  const cloudbase: Project['cloudbase'] = {
    envId: cb.envId === undefined ? undefined : check.string('cloudbase.envId', cb.envId),
    functionName,
    runtime: check.string('cloudbase.runtime', cb.runtime ?? 'Nodejs20.19'),
    concurrency: check.integer('cloudbase.concurrency', cb.concurrency ?? 100, 1, 100),
    idleTimeout,
    timeout: check.integer('cloudbase.timeout', cb.timeout ?? 900, idleTimeout, 900, `${idleTimeout} (cloudbase.idleTimeout)`),
    memory: check.integer('cloudbase.memory', cb.memory ?? 256, 64, 3072),
    path: check.path('cloudbase.path', cb.path ?? (builtInChat ? '/chat' : `/${functionName}`)),
    env: cbEnv,
    registry,
    redisUrl,
    vpc: cb.vpc === undefined ? undefined : check.vpc('cloudbase.vpc', cb.vpc),
  };

  const aws = config.aws ?? {};
  check.keys('aws.', aws, ['stackName', 'region', 'stage', 'memory', 'architecture', 'runtime', 'template', 'env', 'registry']);
  const template = aws.template === undefined ? undefined : resolve(root, check.string('aws.template', aws.template));
  if (template !== undefined && !existsSync(template)) throw new ConfigError(`${where}: aws.template: ${template} does not exist`);
  const awsResolved: Project['aws'] = {
    stackName: check.name('aws.stackName', aws.stackName ?? name),
    region: aws.region === undefined ? undefined : check.string('aws.region', aws.region),
    stage: check.stage('aws.stage', aws.stage ?? 'dev'),
    memory: check.integer('aws.memory', aws.memory ?? 256, 128, 10240),
    architecture: check.choice('aws.architecture', aws.architecture ?? 'arm64', ['arm64', 'x86_64']),
    runtime: check.choice('aws.runtime', aws.runtime ?? 'nodejs22.x', ['nodejs20.x', 'nodejs22.x', 'nodejs24.x']),
    template,
    env: check.env('aws.env', aws.env),
    registry: check.choice('aws.registry', aws.registry ?? 'dynamodb', ['dynamodb']),
  };
  return { root, configPath, name, appModule, builtInChat, page, outDir, env, cloudbase, aws: awsResolved };
}

/** Without a config file the names stay those of the built-in chat's stack and function. */
function defaultName(root: string, configured: boolean): string {
  if (!configured) return 'cloudsocket';
  try {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name?: unknown };
    if (typeof pkg.name === 'string') return sanitizeName(pkg.name.replace(/^@[^/]+\//, ''));
  } catch {
    // No package.json: the folder's name will do.
  }
  return sanitizeName(basename(root));
}

function sanitizeName(raw: string): string {
  const cleaned = raw.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60);
  const named = /^[a-z]/.test(cleaned) ? cleaned : `app-${cleaned || 'cloudsocket'}`.slice(0, 60);
  return named.length >= 2 ? named : `${named}-app`;
}

/** Each check names the field and the file, so a mistake in the config is one readable line. */
class FieldChecker {
  constructor(private readonly where: string) {}

  private fail(field: string, problem: string): never {
    throw new ConfigError(`${this.where}: ${field} ${problem}`);
  }

  keys(prefix: string, value: unknown, allowed: readonly string[]): void {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(prefix.replace(/\.$/, '') || 'the config', 'must be an object');
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.fail(`${prefix}${key}`, `is not a config field (known: ${allowed.join(', ')})`);
    }
  }

  string(field: string, value: unknown): string {
    if (typeof value !== 'string' || value.trim() === '') this.fail(field, 'must be a non-empty string');
    return value;
  }

  name(field: string, value: unknown): string {
    const text = this.string(field, value);
    // The strictest of the names it becomes: a CloudFormation stack, a CloudBase function (2-60 characters).
    if (!/^[A-Za-z][A-Za-z0-9-]{1,59}$/.test(text)) this.fail(field, `must start with a letter and hold only letters, digits and "-" (2-60), got ${JSON.stringify(text)}`);
    return text;
  }

  stage(field: string, value: unknown): string {
    const text = this.string(field, value);
    // The template's StageName pattern, which deploy checks too.
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(text)) this.fail(field, `must be 1-64 letters, digits, "-" or "_", got ${JSON.stringify(text)}`);
    return text;
  }

  path(field: string, value: unknown): string {
    const text = this.string(field, value);
    // The rule deploy's --path applies, so a path the config accepts can be routed.
    if (!/^\/[A-Za-z0-9_\-/]{0,127}$/.test(text)) this.fail(field, `must start with "/" and hold only letters, digits, "_", "-" and "/", got ${JSON.stringify(text)}`);
    return text;
  }

  integer(field: string, value: unknown, min: number, max: number, minText = String(min)): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(field, `must be a whole number from ${minText} to ${max}, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  redisUrl(field: string, value: unknown): string {
    const text = this.string(field, value);
    if (!/^rediss?:\/\/[^\s]+$/.test(text)) this.fail(field, `must be a redis:// or rediss:// URL, got ${JSON.stringify(text.replace(/:[^:@/]*@/, ':***@'))}`);
    return text;
  }

  vpc(field: string, value: unknown): CloudbaseVpcConfig {
    this.keys(`${field}.`, value, ['vpcId', 'subnetId']);
    const { vpcId, subnetId } = value as Record<string, unknown>;
    if (typeof vpcId !== 'string' || !/^vpc-[a-z0-9]+$/.test(vpcId)) this.fail(`${field}.vpcId`, `must be a VPC id such as "vpc-abcd1234", got ${JSON.stringify(vpcId)}`);
    if (typeof subnetId !== 'string' || !/^subnet-[a-z0-9]+$/.test(subnetId)) this.fail(`${field}.subnetId`, `must be a subnet id such as "subnet-abcd1234", got ${JSON.stringify(subnetId)}`);
    return { vpcId, subnetId };
  }

  choice<T extends string>(field: string, value: unknown, choices: readonly T[]): T {
    if (!(choices as readonly unknown[]).includes(value)) this.fail(field, `must be one of ${choices.map((c) => JSON.stringify(c)).join(', ')}, got ${JSON.stringify(value)}`);
    return value as T;
  }

  env(field: string, value: unknown): Record<string, string> {
    if (value === undefined) return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(field, 'must be an object of strings');
    const out: Record<string, string> = {};
    for (const [key, item] of Object.entries(value)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) this.fail(`${field}.${key}`, 'is not a valid environment variable name');
      if (typeof item !== 'string') this.fail(`${field}.${key}`, 'must be a string');
      out[key] = item;
    }
    return out;
  }
}
