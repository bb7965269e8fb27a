/**
 * `deploy cloudbase` / `remove cloudbase` against a fake of the
 * @cloudbase/manager-node functions and access services: same method names,
 * same argument shapes (typed from its .d.ts), answers in the shapes the real
 * SCF/TCB APIs return. Each case asserts every call, in order.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CODE_DIGEST_VARIABLE, deployCloudbase, removeCloudbase, type CloudbaseDeployOptions } from '../scripts/deploy/cloudbase.js';
import { createCloudbaseManager, functionNotFound, type CloudbaseManager } from '../scripts/deploy/cloudbase-target.js';
import { CloudsocketError } from '../shared/errors.js';

type Detail = Awaited<ReturnType<CloudbaseManager['functions']['getFunctionDetail']>>;
type Api = Awaited<ReturnType<CloudbaseManager['access']['getAccessList']>>['APISet'][number];

const ENV = 'chat-env-1a2b3c';
const DOMAIN = `${ENV}-1250000000.ap-shanghai.app.tcloudbase.com`;

let dir: string;
let zipPath: string;
let configPath: string;
const zip = Buffer.from('PK\u0003\u0004 stand-in for dist/cloudbase.zip');
const digest = createHash('sha256').update(zip).digest('hex');

const CONFIG = {
  version: '2.0',
  functionRoot: 'dist',
  functions: [
    {
      name: 'cloudsocket',
      dir: 'dist/cloudbase',
      type: 'HTTP',
      runtime: 'Nodejs20.19',
      memorySize: 256,
      timeout: 900,
      protocolType: 'WS',
      protocolParams: { wsParams: { idleTimeOut: 600 } },
      instanceConcurrencyConfig: { dynamicEnabled: 'FALSE', maxConcurrency: 100 },
      installDependency: false,
      envVariables: { LOG_LEVEL: 'info' },
    },
  ],
};

/** What deploy sends as `func`: the config minus `dir`, plus the code digest. */
const { dir: _dir, ...configured } = CONFIG.functions[0]!;
const func = { ...configured, envVariables: { LOG_LEVEL: 'info', [CODE_DIGEST_VARIABLE]: digest } };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cloudsocket-deploy-cloudbase-'));
  zipPath = join(dir, 'cloudbase.zip');
  configPath = join(dir, 'cloudbaserc.json');
  await writeFile(zipPath, zip);
  await writeFile(configPath, JSON.stringify(CONFIG));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fake manager: records every call and answers from its little world. */
class FakeManager implements CloudbaseManager {
  calls: Array<[string, unknown[]]> = [];
  detail: Detail | undefined;
  routes: Api[] = [];
  failCreate: Error | undefined;
  detailError: Error | undefined;

  private record(name: string, args: unknown[]) {
    this.calls.push([name, args]);
  }

  functions: CloudbaseManager['functions'] = {
    getFunctionDetail: async (...args) => {
      this.record('functions.getFunctionDetail', args);
      if (this.detailError) throw this.detailError;
      if (!this.detail) throw functionNotFound(args[0]);
      return this.detail;
    },
    createFunction: async (...args) => {
      this.record('functions.createFunction', args);
      if (this.failCreate) {
        this.detail = { ...activeDetail(), Status: 'CreateFailed', StatusReasons: [{ ErrorCode: 'InternalError', ErrorMessage: 'scf_bootstrap exited with code 127' }] };
        throw this.failCreate;
      }
      this.detail = activeDetail();
      return { RequestId: 'req-create' };
    },
    updateFunctionCode: async (...args) => {
      this.record('functions.updateFunctionCode', args);
      return { RequestId: 'req-code' };
    },
    updateFunctionConfig: async (...args) => {
      this.record('functions.updateFunctionConfig', args);
      return { RequestId: 'req-config' };
    },
    waitFunctionActive: async (...args) => {
      this.record('functions.waitFunctionActive', args);
    },
    deleteFunction: async (...args) => {
      this.record('functions.deleteFunction', args);
      this.detail = undefined;
      return { RequestId: 'req-delete' };
    },
  };

  access: CloudbaseManager['access'] = {
    getAccessList: async (...args) => {
      this.record('access.getAccessList', args);
      const { path, name } = args[0] ?? {};
      const set = this.routes.filter((api) => (path === undefined || api.Path === path) && (name === undefined || api.Name === name));
      return { RequestId: 'req-list', APISet: set, Total: set.length, Limit: 20, Offset: 0, EnableService: true };
    },
    createAccess: async (...args) => {
      this.record('access.createAccess', args);
      const { name, path } = args[0];
      this.routes.push(api(name, path));
      return { APIId: 'api-1', RequestId: 'req-access' };
    },
    deleteAccess: async (...args) => {
      this.record('access.deleteAccess', args);
      this.routes = this.routes.filter((route) => route.Name !== args[0].name);
      return { RequestId: 'req-delete-access' };
    },
    getDomainList: async (...args) => {
      this.record('access.getDomainList', args);
      return { RequestId: 'req-domains', DefaultDomain: DOMAIN, EnableService: true, ServiceSet: [] };
    },
  };
}

function api(name: string, path: string): Api {
  return { ServiceId: ENV, APIId: `api-${path}`, Path: path, Type: 1, Name: name, CreateTime: 0, EnvId: ENV, EnableAuth: false };
}

function activeDetail(variables: Record<string, string> = { LOG_LEVEL: 'info', [CODE_DIGEST_VARIABLE]: digest }): Detail {
  return {
    FunctionName: 'cloudsocket',
    Type: 'HTTP',
    Status: 'Active',
    Runtime: 'Nodejs20.19',
    Timeout: 900,
    MemorySize: 256,
    Environment: { Variables: Object.entries(variables).map(([Key, Value]) => ({ Key, Value })) },
    ProtocolParams: { WSParams: { IdleTimeOut: 600 } },
    InstanceConcurrencyConfig: { DynamicEnabled: 'FALSE', MaxConcurrency: 100 },
  } as unknown as Detail;
}

let fake: FakeManager;
let lines: string[];

beforeEach(() => {
  fake = new FakeManager();
  lines = [];
});

function options(extra: Partial<CloudbaseDeployOptions> = {}): CloudbaseDeployOptions {
  return { envId: ENV, path: '/chat', configPath, build: async () => zipPath, say: (line) => lines.push(line), ...extra };
}

describe('deploy cloudbase', () => {
  it('first deploy: creates the WebSocket HTTP function, routes the path and prints the URL', async () => {
    const result = await deployCloudbase(fake, options());

    expect(result).toEqual({ url: `wss://${DOMAIN}/chat`, created: true, changed: true });
    expect(fake.calls).toEqual([
      ['functions.getFunctionDetail', ['cloudsocket']],
      ['functions.createFunction', [{ func, base64Code: zip.toString('base64'), force: false }]],
      ['access.getAccessList', [{ path: '/chat' }]],
      ['access.createAccess', [{ name: 'cloudsocket', path: '/chat', type: 1 }]],
      ['access.getDomainList', []],
    ]);
    expect(func).toMatchObject({ type: 'HTTP', protocolType: 'WS', timeout: 900, protocolParams: { wsParams: { idleTimeOut: 600 } } });
    expect(lines.at(-1)).toBe(`wss://${DOMAIN}/chat`);
  });

  it('update: waits for Active before new code, then before new config, then once more', async () => {
    fake.detail = activeDetail({ LOG_LEVEL: 'info', [CODE_DIGEST_VARIABLE]: 'an-older-build' });
    fake.routes = [api('cloudsocket', '/chat')];

    const result = await deployCloudbase(fake, options({ name: undefined }));

    expect(result).toEqual({ url: `wss://${DOMAIN}/chat`, created: false, changed: true });
    expect(fake.calls).toEqual([
      ['functions.getFunctionDetail', ['cloudsocket']],
      ['functions.waitFunctionActive', ['cloudsocket']],
      ['functions.updateFunctionCode', [{ func, base64Code: zip.toString('base64') }]],
      ['functions.waitFunctionActive', ['cloudsocket']],
      ['functions.updateFunctionConfig', [func]],
      ['functions.waitFunctionActive', ['cloudsocket']],
      ['access.getAccessList', [{ path: '/chat' }]],
      ['access.getDomainList', []],
    ]);
  });

  it('no-op update: the same build and configuration change nothing', async () => {
    fake.detail = activeDetail();
    fake.routes = [api('cloudsocket', '/chat')];

    const result = await deployCloudbase(fake, options());

    expect(result).toEqual({ url: `wss://${DOMAIN}/chat`, created: false, changed: false });
    expect(fake.calls).toEqual([
      ['functions.getFunctionDetail', ['cloudsocket']],
      ['access.getAccessList', [{ path: '/chat' }]],
      ['access.getDomainList', []],
    ]);
    expect(lines).toContain('nothing changed: function cloudsocket already runs this build and configuration');
  });

  it('failure: prints the status reasons of the function and rejects with deploy_failed', async () => {
    fake.failCreate = Object.assign(new Error('[cloudsocket] 部署失败：\n云函数创建失败'), { code: 'FailedOperation.CreateFunction' });

    const failure = await deployCloudbase(fake, options()).catch((error: unknown) => error);

    expect((failure as CloudsocketError).code).toBe('deploy_failed');
    expect((failure as Error).message).toBe('function cloudsocket ended in CreateFailed; the reasons are listed above');
    expect(lines).toContain('  [InternalError] scf_bootstrap exited with code 127');
    expect(fake.calls.map(([name]) => name)).toEqual(['functions.getFunctionDetail', 'functions.createFunction', 'functions.getFunctionDetail']);
  });

  it('a function left in CreateFailed: says to remove it first, changes nothing', async () => {
    fake.detail = { ...activeDetail(), Status: 'CreateFailed' };

    const failure = await deployCloudbase(fake, options()).catch((error: unknown) => error);

    expect((failure as CloudsocketError).code).toBe('function_create_failed');
    expect((failure as Error).message).toContain(`cloudsocket remove cloudbase --env ${ENV} --name cloudsocket`);
    expect(fake.calls).toEqual([['functions.getFunctionDetail', ['cloudsocket']]]);
  });

  it('a path routed to another function is refused', async () => {
    fake.routes = [api('someone-else', '/chat')];

    const failure = await deployCloudbase(fake, options()).catch((error: unknown) => error);

    expect((failure as CloudsocketError).code).toBe('access_path_taken');
    expect(fake.calls.some(([name]) => name === 'access.createAccess')).toBe(false);
  });

  it('a malformed env id is refused before any call; an unknown one gets one line', async () => {
    const malformed = await deployCloudbase(fake, options({ envId: 'Not An Env!' })).catch((error: unknown) => error);
    expect((malformed as CloudsocketError).code).toBe('invalid_env_id');
    expect(fake.calls).toEqual([]);

    // The manager looks the environment up first and reports it this way.
    fake.detailError = Object.assign(new Error('Environment missing-env not found'), { code: 'ResourceNotFound' });
    const unknown = await deployCloudbase(fake, options({ envId: 'missing-env' })).catch((error: unknown) => error);
    expect((unknown as CloudsocketError).code).toBe('env_not_found');
    expect((unknown as Error).message).toBe('CloudBase environment missing-env was not found for these credentials; check --env and TENCENTCLOUD_REGION (or TCB_REGION)');
  });

  it('missing credentials: one line naming the variables, before any call', () => {
    expect(() => createCloudbaseManager(ENV, {})).toThrowError(
      /^no Tencent Cloud credentials: set TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY/,
    );
    try {
      createCloudbaseManager(ENV, { TENCENTCLOUD_SECRETID: 'AKIDonly' });
    } catch (error) {
      expect((error as CloudsocketError).code).toBe('missing_credentials');
    }
    expect.assertions(2);
  });
});

describe('remove cloudbase', () => {
  it('deletes the access path, then the function', async () => {
    fake.detail = activeDetail();
    fake.routes = [api('cloudsocket', '/chat'), api('other', '/other')];

    await removeCloudbase(fake, { envId: ENV, name: 'cloudsocket', say: (line) => lines.push(line) });

    expect(fake.calls).toEqual([
      ['functions.getFunctionDetail', ['cloudsocket']],
      ['access.getAccessList', [{ name: 'cloudsocket' }]],
      ['access.deleteAccess', [{ name: 'cloudsocket', type: 1 }]],
      ['functions.deleteFunction', ['cloudsocket']],
    ]);
    expect(fake.routes.map((route) => route.Path)).toEqual(['/other']);
    expect(lines).toEqual(['deleted HTTP access path /chat', `deleted function cloudsocket from ${ENV}`]);
  });
});
