/**
 * The CloudBase side of deploy/remove uses the slice of @cloudbase/manager-node
 * below, in its own method names and argument shapes. The real manager, the
 * fakes in tests and the dry-run recorder all fit it.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage } from 'node:http';
import CloudBase from '@cloudbase/manager-node';
import { CloudsocketError } from '../../shared/errors.js';
import {
  AccessDeniedError,
  CloudApiError,
  CloudUnreachableError,
  CredentialsRejectedError,
  EnvNotFoundError,
  InvalidEnvIdError,
  MissingCredentialsError,
  networkCause,
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
  const manager = new CloudBase({ ...credentials, envId, ...(region ? { region } : {}) });
  return { functions: reachingApi(manager.functions), access: reachingApi(manager.access) };
}

/** Every method of `service`, each call run through `callApi`. */
function reachingApi<T extends object>(service: T): T {
  return new Proxy(service, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => callApi(() => value.apply(target, args) as Promise<unknown>);
    },
  });
}

/** The last HTTP answer seen while a call ran. */
interface Answer {
  url: string;
  status: number;
  statusText: string;
}

const ANSWER_CHANNEL = 'http.client.response.finish';

/**
 * Runs one manager call so that failing to talk to the API at all comes out as
 * CloudUnreachableError. The manager hides such failures: its fetch wraps a
 * network error as the *message* of a CloudBaseError (an object, not text), and
 * an answer that is not JSON (a proxy's 502, say) as an error holding only the
 * body, so the status has to be read off the HTTP exchange itself.
 */
async function callApi<T>(run: () => Promise<T>): Promise<T> {
  let answer: Answer | undefined;
  const onAnswer = (message: unknown) => {
    const { request, response } = message as { request: ClientRequest; response: IncomingMessage };
    answer = { url: `${request.protocol}//${request.host}${request.path}`, status: response.statusCode ?? 0, statusText: response.statusMessage ?? '' };
  };
  // A proxy that closes the connection without answering leaves the manager's
  // proxy agent waiting for a CONNECT answer that cannot come; the call never
  // settles and Node would exit quietly with 0. An event loop with nothing left
  // to run is the proof that it never will.
  let abandon = () => {};
  const abandoned = new Promise<never>((_, reject) => {
    abandon = () => reject(new CloudUnreachableError('Tencent Cloud', where(), 'the connection closed before any answer came'));
  });
  process.once('beforeExit', abandon);
  subscribe(ANSWER_CHANNEL, onAnswer);
  try {
    return await Promise.race([run(), abandoned]);
  } catch (error) {
    throw unreachable(error, answer) ?? error;
  } finally {
    unsubscribe(ANSWER_CHANNEL, onAnswer);
    process.off('beforeExit', abandon);
  }
}

/** The endpoint and the proxy, as far as they are known; the manager reads only `http_proxy`, lower case. */
function where(url?: string): string {
  const proxy = process.env.http_proxy;
  let through = '';
  if (proxy) {
    // Only host and port: a proxy URL may carry a password.
    through = `through proxy ${URL.canParse(proxy) ? new URL(proxy).host : 'http_proxy'}`;
  }
  return [url, through].filter(Boolean).join(' ');
}

interface NetworkErrorShape {
  message?: string;
  code?: string;
}

/** The failure when it happened on the way to the API rather than in it; undefined when the API itself answered. */
function unreachable(error: unknown, answer: Answer | undefined): CloudUnreachableError | undefined {
  if (error instanceof CloudsocketError) return undefined;
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof message === 'object' && message !== null) {
    const network = message as NetworkErrorShape;
    const text = String(network.message ?? '');
    // node-fetch's own wording: "request to <url> failed, reason: <what the socket said>".
    const [, url, reason = text] = /^request to (\S+) failed, reason: (.*)$/s.exec(text) ?? [];
    return new CloudUnreachableError('Tencent Cloud', where(url ?? answer?.url), networkCause(network.code, reason));
  }
  // The API answers every call with 200 and JSON, errors included; any other status came from something in between.
  if (!code && answer && (answer.status < 200 || answer.status > 299)) {
    return new CloudUnreachableError('Tencent Cloud', where(answer.url), `HTTP ${answer.status}${answer.statusText ? ` ${answer.statusText}` : ''}`);
  }
  return undefined;
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
  const message = String(((error ?? {}) as TencentErrorShape).message ?? error).split('\n')[0]!;
  if (/missing secretId or secretKey/i.test(message)) return new MissingCredentialsError(MISSING_CREDENTIALS);
  if (/^AuthFailure\.(SecretIdNotFound|SignatureFailure|SignatureExpire|TokenFailure|InvalidSecretId)/.test(code)) {
    return new CredentialsRejectedError('Tencent Cloud', code);
  }
  if (/^(UnauthorizedOperation|AuthFailure\.UnauthorizedOperation|OperationDenied)/.test(code)) return new AccessDeniedError(call, code);
  // The manager looks the environment up before any other call; an unknown id surfaces there.
  if (/Environment .* not found|EnvBaseInfo/.test(message) || /^(ResourceNotFound\.Env|InvalidParameter\.EnvId|ResourceNotFound$)/.test(code)) {
    return new EnvNotFoundError(envId);
  }
  return new CloudApiError(call, [code, message].filter(Boolean).join(': ') || 'the API gave no reason');
}
