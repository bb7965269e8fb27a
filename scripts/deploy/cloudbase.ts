/**
 * `cloudsocket deploy cloudbase`: create or update the WebSocket HTTP function
 * described by the build's cloudbaserc.json, upload dist/cloudbase.zip as its
 * code, and route an HTTP access path to it.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../../shared/errors.js';
import { checkEnvId, explainTencentError, isFunctionNotFound, type CloudbaseManager } from './cloudbase-target.js';
import {
  AccessPathTakenError,
  ArtifactMissingError,
  DeployFailedError,
  FunctionCreateFailedError,
  FunctionTypeMismatchError,
} from './errors.js';

type FunctionConfig = Parameters<CloudbaseManager['functions']['createFunction']>[0]['func'];

export interface CloudbaseDeployOptions {
  envId: string;
  /** Function name; defaults to the name in cloudbaserc.json. */
  name?: string;
  /** HTTP access path, e.g. /chat. */
  path: string;
  configPath: string;
  /** Builds every target and resolves to the path of the CloudBase zip. */
  build(): Promise<string>;
  say(line: string): void;
}

export interface CloudbaseDeployResult {
  url: string;
  created: boolean;
  /** False when the function already ran this build and configuration and the path existed. */
  changed: boolean;
}

/** The first function of cloudbaserc.json, checked against the platform's WebSocket rules. */
export async function loadFunctionConfig(configPath: string, name?: string): Promise<FunctionConfig> {
  const text = await readFile(configPath, 'utf8').catch(() => {
    throw new ConfigError(`cannot read ${configPath}`);
  });
  let parsed: { functions?: Array<Record<string, unknown>> };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new ConfigError(`${configPath} is not valid JSON`);
  }
  const entry = parsed.functions?.[0];
  if (!entry || typeof entry.name !== 'string') throw new ConfigError(`${configPath} has no functions[0].name`);
  // `dir` only tells the tcb CLI where the folder is; the manager API takes the zip itself.
  const { dir: _dir, ...func } = entry;
  const config = { ...func, name: name ?? entry.name } as FunctionConfig;
  const idle = config.protocolParams?.wsParams?.idleTimeOut ?? 0;
  if (config.type !== 'HTTP' || config.protocolType !== 'WS') throw new ConfigError(`${configPath}: the function must have "type": "HTTP" and "protocolType": "WS"`);
  if (idle < 10 || idle > 7200) throw new ConfigError(`${configPath}: protocolParams.wsParams.idleTimeOut must be 10-7200 seconds`);
  if ((config.timeout ?? 0) < idle) throw new ConfigError(`${configPath}: timeout (${config.timeout}) must be at least the idle timeout (${idle})`);
  return config;
}

async function attempt<T>(call: string, envId: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw explainTencentError(call, envId, error);
  }
}

/** Deployed code is recognised by this variable, which holds the digest of its zip. */
export const CODE_DIGEST_VARIABLE = 'CLOUDSOCKET_CODE_SHA256';

type FunctionDetail = Awaited<ReturnType<CloudbaseManager['functions']['getFunctionDetail']>>;

/** Settings GetFunction reports beyond the manager's typings; compared only when present. */
interface ReportedSettings {
  ProtocolParams?: { WSParams?: { IdleTimeOut?: number } };
  InstanceConcurrencyConfig?: { MaxConcurrency?: number };
}

function configDiffers(existing: FunctionDetail, func: FunctionConfig): boolean {
  const wanted = Object.entries(func.envVariables ?? {}).map(([key, value]) => `${key}=${String(value)}`).sort();
  const current = (existing.Environment?.Variables ?? []).map((v) => `${v.Key}=${v.Value}`).sort();
  const reported = existing as FunctionDetail & ReportedSettings;
  const idle = reported.ProtocolParams?.WSParams?.IdleTimeOut;
  const concurrency = reported.InstanceConcurrencyConfig?.MaxConcurrency;
  return (
    existing.Timeout !== func.timeout ||
    existing.MemorySize !== func.memorySize ||
    wanted.join('\n') !== current.join('\n') ||
    (idle !== undefined && idle !== func.protocolParams?.wsParams?.idleTimeOut) ||
    (concurrency !== undefined && concurrency !== func.instanceConcurrencyConfig?.maxConcurrency) ||
    // A function outside the VPC of its Redis cannot reach it; an unset VPC reads back as "".
    (existing.VpcConfig?.VpcId || undefined) !== func.vpc?.vpcId ||
    (existing.VpcConfig?.SubnetId || undefined) !== func.vpc?.subnetId
  );
}

/**
 * A create or update that the platform rejected: print why, from the function's
 * own status reasons when it can tell them, and fail with one line.
 */
async function reportFailure(manager: CloudbaseManager, options: CloudbaseDeployOptions, name: string, call: string, error: unknown): Promise<never> {
  const explained = explainTencentError(call, options.envId, error);
  if (explained.code !== 'cloud_api_error') throw explained;
  const detail = await manager.functions.getFunctionDetail(name).catch(() => undefined);
  const reasons = detail?.StatusReasons?.map((r) => `[${r.ErrorCode}] ${r.ErrorMessage}`) ?? [];
  const lines = reasons.length > 0 ? reasons : String((error as Error)?.message ?? error).split('\n').filter(Boolean);
  options.say(`${call} failed:`);
  for (const line of lines) options.say(`  ${line}`);
  throw new DeployFailedError(`function ${name}`, detail?.Status ?? 'an error');
}

export async function deployCloudbase(manager: CloudbaseManager, options: CloudbaseDeployOptions): Promise<CloudbaseDeployResult> {
  const { envId, say, path } = options;
  checkEnvId(envId);
  // The build writes the cloudbaserc.json it reads next, generated from the project's config.
  const zipPath = await options.build();
  const config = await loadFunctionConfig(options.configPath, options.name);
  const zip = await readFile(zipPath).catch(() => {
    throw new ArtifactMissingError(zipPath);
  });
  const digest = createHash('sha256').update(zip).digest('hex');
  const func: FunctionConfig = { ...config, envVariables: { ...config.envVariables, [CODE_DIGEST_VARIABLE]: digest } };
  // Our own zip keeps scf_bootstrap's 0755 mode, which re-packing a folder may lose.
  const base64Code = zip.toString('base64');
  const name = func.name;

  let existing: FunctionDetail | undefined;
  try {
    existing = await manager.functions.getFunctionDetail(name);
  } catch (error) {
    if (!isFunctionNotFound(error)) throw explainTencentError('functions.getFunctionDetail', envId, error);
  }

  let changed = true;
  if (!existing) {
    say(`creating HTTP function ${name} in ${envId} (WebSocket, idle timeout ${func.protocolParams?.wsParams?.idleTimeOut}s)`);
    // createFunction waits for the new function to become Active before it returns.
    await manager.functions.createFunction({ func, base64Code, force: false }).catch((error: unknown) => reportFailure(manager, options, name, 'functions.createFunction', error));
  } else {
    if (existing.Type !== 'HTTP') throw new FunctionTypeMismatchError(name, existing.Type);
    if (existing.Status === 'CreateFailed') throw new FunctionCreateFailedError(name, envId);
    const codeChanged = existing.Environment?.Variables?.find((v) => v.Key === CODE_DIGEST_VARIABLE)?.Value !== digest;
    changed = codeChanged || configDiffers(existing, func);
    if (!changed) {
      say(`nothing changed: function ${name} already runs this build and configuration`);
    } else {
      say(`updating HTTP function ${name} in ${envId}${codeChanged ? '' : ' (configuration only)'}`);
      // A function still Updating rejects changes, so wait for Active before each step.
      await attempt('functions.waitFunctionActive', envId, () => manager.functions.waitFunctionActive(name));
      if (codeChanged) {
        await manager.functions.updateFunctionCode({ func, base64Code }).catch((error: unknown) => reportFailure(manager, options, name, 'functions.updateFunctionCode', error));
        await attempt('functions.waitFunctionActive', envId, () => manager.functions.waitFunctionActive(name));
      }
      await manager.functions.updateFunctionConfig(func).catch((error: unknown) => reportFailure(manager, options, name, 'functions.updateFunctionConfig', error));
      await attempt('functions.waitFunctionActive', envId, () => manager.functions.waitFunctionActive(name));
    }
  }

  const routes = await attempt('access.getAccessList', envId, () => manager.access.getAccessList({ path }));
  const route = routes.APISet?.find((api) => api.Path === path);
  if (route && route.Name !== name) throw new AccessPathTakenError(path, route.Name);
  if (route) {
    say(`HTTP access path ${path} already routes to ${name}`);
  } else {
    say(`routing HTTP access path ${path} to ${name}`);
    await attempt('access.createAccess', envId, () => manager.access.createAccess({ name, path, type: 1 }));
  }

  const domains = await attempt('access.getDomainList', envId, () => manager.access.getDomainList());
  const domain = domains.DefaultDomain || `${envId}.service.tcloudbase.com`;
  const url = `wss://${domain}${path}`;
  say(url);
  return { url, created: !existing, changed: changed || !route };
}

export interface CloudbaseRemoveOptions {
  envId: string;
  name: string;
  say(line: string): void;
}

/** Deletes the function's HTTP access paths, then the function. */
export async function removeCloudbase(manager: CloudbaseManager, options: CloudbaseRemoveOptions): Promise<void> {
  const { envId, name, say } = options;
  let existing;
  try {
    existing = await manager.functions.getFunctionDetail(name);
  } catch (error) {
    if (!isFunctionNotFound(error)) throw explainTencentError('functions.getFunctionDetail', envId, error);
  }
  const routes = await attempt('access.getAccessList', envId, () => manager.access.getAccessList({ name }));
  const mine = (routes.APISet ?? []).filter((api) => api.Name === name && api.Type === 1);
  if (mine.length > 0) {
    await attempt('access.deleteAccess', envId, () => manager.access.deleteAccess({ name, type: 1 }));
    say(`deleted HTTP access path${mine.length > 1 ? 's' : ''} ${mine.map((api) => api.Path).join(', ')}`);
  }
  if (!existing) {
    say(`function ${name} does not exist in ${envId}; nothing else to delete`);
    return;
  }
  await attempt('functions.deleteFunction', envId, () => manager.functions.deleteFunction(name));
  say(`deleted function ${name} from ${envId}`);
}
