/** The config fields that turn the Redis registry on, and the cloudbaserc.json they generate. */
import { describe, expect, it } from 'vitest';
import { cloudbasercFor } from '../scripts/infra.js';
import { resolveProject } from '../scripts/project.js';
import { readCloudbaseSettings } from '../functions/cloudbase/settings.js';
import type { CloudsocketConfig } from '../shared/config.js';
import { ConfigError } from '../shared/errors.js';

const project = (config: CloudsocketConfig) => resolveProject('/tmp/app', '/tmp/app/cloudsocket.config.ts', { name: 'app', ...config });
const functionOf = (config: CloudsocketConfig) => (cloudbasercFor(project(config)).functions as Array<Record<string, any>>)[0]!;

describe('cloudbase.registry "redis"', () => {
  it('puts redisUrl into REDIS_URL and the VPC into the function, registry "redis" by default', () => {
    const config: CloudsocketConfig = {
      cloudbase: { redisUrl: 'redis://:pw@10.0.0.12:6379', vpc: { vpcId: 'vpc-abcd1234', subnetId: 'subnet-ef567890' } },
    };
    expect(project(config).cloudbase.registry).toBe('redis');
    const fn = functionOf(config);
    expect(fn.envVariables.REDIS_URL).toBe('redis://:pw@10.0.0.12:6379');
    expect(fn.vpc).toEqual({ vpcId: 'vpc-abcd1234', subnetId: 'subnet-ef567890' });
  });

  it('has no vpc and no REDIS_URL when none is configured', () => {
    const fn = functionOf({});
    expect(fn).not.toHaveProperty('vpc');
    expect(fn.envVariables).not.toHaveProperty('REDIS_URL');
  });

  it('accepts REDIS_URL from cloudbase.env instead of redisUrl', () => {
    expect(project({ cloudbase: { registry: 'redis', env: { REDIS_URL: 'redis://10.0.0.12:6379' } } }).cloudbase.registry).toBe('redis');
  });

  it.each<[string, CloudsocketConfig, RegExp]>([
    ['no Redis named', { cloudbase: { registry: 'redis' } }, /cloudbase.registry is "redis" but no Redis is named: set cloudbase.redisUrl/],
    ['not a redis URL', { cloudbase: { redisUrl: 'http://10.0.0.12' } }, /cloudbase.redisUrl must be a redis:\/\/ or rediss:\/\/ URL/],
    ['a URL with a memory registry', { cloudbase: { registry: 'memory', redisUrl: 'redis://10.0.0.12' } }, /cloudbase.redisUrl is set but cloudbase.registry is "memory"/],
    ['a bad VPC id', { cloudbase: { vpc: { vpcId: 'abc', subnetId: 'subnet-1' } } }, /cloudbase.vpc.vpcId must be a VPC id/],
    ['a missing subnet', { cloudbase: { vpc: { vpcId: 'vpc-1' } as never } }, /cloudbase.vpc.subnetId must be a subnet id/],
    ['an unknown registry', { cloudbase: { registry: 'etcd' as never } }, /cloudbase.registry must be one of "memory", "redis"/],
  ])('refuses %s with a message naming the field', (_, config, message) => {
    expect(() => project(config)).toThrow(ConfigError);
    expect(() => project(config)).toThrow(message);
  });

  it('keeps the password out of the message about a bad URL', () => {
    expect(() => project({ cloudbase: { redisUrl: 'http://:hunter2@10.0.0.12' } })).toThrow(/:\*\*\*@/);
    expect(() => project({ cloudbase: { redisUrl: 'http://:hunter2@10.0.0.12' } })).not.toThrow(/hunter2/);
  });
});

describe('REDIS_URL and its companions in the environment', () => {
  it('reads REDIS_URL, REDIS_PREFIX and INSTANCE_HEARTBEAT, with defaults', () => {
    expect(readCloudbaseSettings({})).toMatchObject({ redisUrl: undefined, redisPrefix: 'cloudsocket:', instanceHeartbeatMs: 10_000 });
    expect(readCloudbaseSettings({ REDIS_URL: 'rediss://r:6380', REDIS_PREFIX: 'chat:', INSTANCE_HEARTBEAT: '2.5' })).toMatchObject({
      redisUrl: 'rediss://r:6380',
      redisPrefix: 'chat:',
      instanceHeartbeatMs: 2500,
    });
  });

  it('refuses a REDIS_URL that is not one, naming the variable', () => {
    expect(() => readCloudbaseSettings({ REDIS_URL: 'localhost:6379' })).toThrow(/^REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL$/);
  });
});
