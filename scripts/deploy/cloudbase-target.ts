/**
 * The CloudBase side of deploy/remove uses the slice of @cloudbase/manager-node
 * below, in its own method names and argument shapes. The real manager, the
 * fakes in tests and the dry-run recorder all fit it.
 */
import CloudBase from '@cloudbase/manager-node';
import { CloudsocketError } from '../../shared/errors.js';
import {
  AccessDeniedError,
  CloudApiError,
  CredentialsRejectedError,
  EnvNotFoundError,
  InvalidEnvIdError,
  MissingCredentialsError,
} from './errors.js';
import { formatCall, maskSecret } from './plan.js';

type Manager = InstanceType<typeof CloudBase>;

export interface CloudbaseManager {
  functions: Pick<Manager['functions'], 'getFunctionDetail' | 'createFunction' | 'updateFunctionCode' | 'updateFunctionConfig' | 'waitFunctionActive' | 'deleteFunction'>;
  access: Pick<Manager['access'], 'getAccessList' | 'createAccess' | 'deleteAccess' | 'getDomainList'>;
}

export interface TencentCredentials {
  secretId: string;
  secretKey: string;
  token?: string;
}

const MISSING_CREDENTIALS =
  'no Tencent Cloud credentials: set TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY (plus TENCENTCLOUD_SESSIONTOKEN for temporary keys), from CAM → API keys';

/** The variables @cloudbase/manager-node itself reads, so the same keys work for both. */
export function tencentCredentials(env: NodeJS.ProcessEnv = process.env): TencentCredentials | undefined {
  const secretId = env.TENCENTCLOUD_SECRETID?.trim();
  const secretKey = env.TENCENTCLOUD_SECRETKEY?.trim();
  if (!secretId || !secretKey) return undefined;
  return { secretId, secretKey, token: env.TENCENTCLOUD_SESSIONTOKEN?.trim() || undefined };
}

/** The region of the environment, when the user pins one; the manager defaults to ap-shanghai. */
export function tencentRegion(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.TCB_REGION || env.TENCENTCLOUD_REGION || undefined;
}

/** Environment ids are lower-case letters, digits and hyphens, e.g. `my-env-1a2b3c`. */
export function checkEnvId(envId: string): string {
  if (!/^[a-z0-9][a-z0-9-]{1,62}$/.test(envId)) throw new InvalidEnvIdError(envId);
  return envId;
}

export function createCloudbaseManager(envId: string, env: NodeJS.ProcessEnv = process.env): CloudbaseManager {
  const credentials = tencentCredentials(env);
  if (!credentials) throw new MissingCredentialsError(MISSING_CREDENTIALS);
  const region = tencentRegion(env);
  return new CloudBase({ ...credentials, envId, ...(region ? { region } : {}) });
}

/** One line for the plan: how the manager would be created, with the keys masked. */
export function describeManagerInit(envId: string, env: NodeJS.ProcessEnv = process.env): string {
  const credentials = tencentCredentials(env);
  const shown = credentials
    ? { envId, secretId: maskSecret(credentials.secretId), secretKey: maskSecret(credentials.secretKey), ...(credentials.token ? { token: maskSecret(credentials.token) } : {}) }
    : { envId, secretId: '<TENCENTCLOUD_SECRETID, not set>', secretKey: '<TENCENTCLOUD_SECRETKEY, not set>' };
  const region = tencentRegion(env);
  return `new CloudBase ${JSON.stringify(region ? { ...shown, region } : shown)}`;
}

export function functionNotFound(name: string): Error {
  return Object.assign(new Error(`function ${name} not found`), { code: 'ResourceNotFound.FunctionName' });
}

/**
 * A manager that prints each call and answers as if every step succeeded: for a
 * deploy the function does not exist yet, for a remove it does.
 */
export function createDryRunCloudbaseManager(envId: string, print: (line: string) => void, functionExists = false): CloudbaseManager {
  const record = (service: string, action: string, args: unknown[]) =>
    print(formatCall('CloudBase', `${service}.${action}`, args.length === 0 ? undefined : args.length === 1 ? args[0] : args));
  return {
    functions: {
      async getFunctionDetail(...args: Parameters<CloudbaseManager['functions']['getFunctionDetail']>) {
        record('functions', 'getFunctionDetail', args);
        if (!functionExists) throw functionNotFound(args[0]);
        return { FunctionName: args[0], Type: 'HTTP', Status: 'Active' } as Awaited<ReturnType<CloudbaseManager['functions']['getFunctionDetail']>>;
      },
      async createFunction(...args) {
        record('functions', 'createFunction', args);
        return { RequestId: 'dry-run' };
      },
      async updateFunctionCode(...args) {
        record('functions', 'updateFunctionCode', args);
        return { RequestId: 'dry-run' };
      },
      async updateFunctionConfig(...args) {
        record('functions', 'updateFunctionConfig', args);
        return { RequestId: 'dry-run' };
      },
      async waitFunctionActive(...args) {
        record('functions', 'waitFunctionActive', args);
      },
      async deleteFunction(...args) {
        record('functions', 'deleteFunction', args);
        return { RequestId: 'dry-run' };
      },
    },
    access: {
      async getAccessList(...args) {
        record('access', 'getAccessList', args);
        const name = args[0]?.name;
        const apis = functionExists && name ? [{ ServiceId: envId, APIId: '<api id>', Path: '<path>', Type: 1, Name: name, CreateTime: 0, EnvId: envId, EnableAuth: false }] : [];
        return { RequestId: 'dry-run', APISet: apis, Total: apis.length, Limit: 20, Offset: 0, EnableService: true };
      },
      async createAccess(...args) {
        record('access', 'createAccess', args);
        return { APIId: '<api id>', RequestId: 'dry-run' };
      },
      async deleteAccess(...args) {
        record('access', 'deleteAccess', args);
        return { RequestId: 'dry-run' };
      },
      async getDomainList(...args) {
        record('access', 'getDomainList', args);
        return { RequestId: 'dry-run', DefaultDomain: `${envId}.service.tcloudbase.com`, EnableService: true, ServiceSet: [] };
      },
    },
  };
}

interface TencentErrorShape {
  code?: string | number;
  message?: string;
}

export function tencentErrorCode(error: unknown): string {
  return String(((error ?? {}) as TencentErrorShape).code ?? '');
}

export function isFunctionNotFound(error: unknown): boolean {
  return /^ResourceNotFound\.Function/.test(tencentErrorCode(error));
}

/** Turns a manager/API failure into one line that says what to do. */
export function explainTencentError(call: string, envId: string, error: unknown): CloudsocketError {
  if (error instanceof CloudsocketError) return error;
  const code = tencentErrorCode(error);
  const message = (((error ?? {}) as TencentErrorShape).message ?? String(error)).split('\n')[0]!;
  if (/missing secretId or secretKey/i.test(message)) return new MissingCredentialsError(MISSING_CREDENTIALS);
  if (/^AuthFailure\.(SecretIdNotFound|SignatureFailure|SignatureExpire|TokenFailure|InvalidSecretId)/.test(code)) {
    return new CredentialsRejectedError('Tencent Cloud', code);
  }
  if (/^(UnauthorizedOperation|AuthFailure\.UnauthorizedOperation|OperationDenied)/.test(code)) return new AccessDeniedError(call, code);
  // The manager looks the environment up before any other call; an unknown id surfaces there.
  if (/Environment .* not found|EnvBaseInfo/.test(message) || /^(ResourceNotFound\.Env|InvalidParameter\.EnvId|ResourceNotFound$)/.test(code)) {
    return new EnvNotFoundError(envId);
  }
  return new CloudApiError(call, `${code ? `${code}: ` : ''}${message}`);
}
