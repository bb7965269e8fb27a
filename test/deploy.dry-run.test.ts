/**
 * The deploy/remove commands as a user runs them: `node bin/cloudsocket.js`
 * child processes with every AWS_* and TENCENTCLOUD_* variable stripped and a
 * HOME without ~/.aws (test/support/deploy-cli.ts), so no credential can be
 * found and nothing can be sent.
 */
import { describe, expect, it } from 'vitest';
import { errorLines, useDeployCli } from './support/deploy-cli.js';

const cli = useDeployCli();

/** The plan's API call lines, without their parameters. */
function calls(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((line) => /^(CloudFormation|S3|CloudBase) /.test(line))
    .map((line) => line.split(' ').slice(0, 2).join(' '));
}

describe('deploy --dry-run with no credentials anywhere', () => {
  it('aws: builds, then prints every call of a first deploy in order', async () => {
    const run = await cli(['deploy', 'aws', '--dry-run', '--stack', 'chat', '--region', 'eu-west-1', '--stage', 'prod']);

    expect(run.code).toBe(0);
    expect(calls(run.stdout)).toEqual([
      'CloudFormation DescribeStacks',
      'S3 HeadBucket',
      'S3 CreateBucket',
      'S3 PutPublicAccessBlock',
      'S3 PutBucketEncryption',
      'S3 PutBucketTagging',
      'S3 HeadObject',
      'S3 PutObject',
      'CloudFormation CreateChangeSet',
      'CloudFormation DescribeChangeSet',
      'CloudFormation DescribeStackEvents',
      'CloudFormation ExecuteChangeSet',
      'CloudFormation DescribeStacks',
      'CloudFormation DescribeStackEvents',
    ]);
    const lines = run.stdout.split('\n');
    expect(lines).toContainEqual(expect.stringMatching(/^built .*lambda\.zip/));
    const createBucket = lines.find((line) => line.startsWith('S3 CreateBucket '))!;
    expect(JSON.parse(createBucket.slice('S3 CreateBucket '.length))).toMatchObject({
      Bucket: expect.stringMatching(/^chat-deploy-eu-west-1-[0-9a-f]{8}$/),
      CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' },
    });
    const changeSet = JSON.parse(lines.find((line) => line.startsWith('CloudFormation CreateChangeSet '))!.slice('CloudFormation CreateChangeSet '.length));
    expect(changeSet).toMatchObject({ StackName: 'chat', ChangeSetType: 'CREATE', Capabilities: ['CAPABILITY_IAM'] });
    expect(changeSet.Parameters).toEqual([
      { ParameterKey: 'CodeBucket', ParameterValue: expect.stringMatching(/^chat-deploy-eu-west-1-/) },
      { ParameterKey: 'CodeKey', ParameterValue: expect.stringMatching(/^chat\/lambda-[0-9a-f]{16}\.zip$/) },
      { ParameterKey: 'StageName', ParameterValue: 'prod' },
    ]);
    // Payloads are summarised, not dumped.
    expect(changeSet.TemplateBody).toMatch(/^<TemplateBody, \d+ characters, sha256 [0-9a-f]{16}…>$/);
    expect(lines.find((line) => line.startsWith('S3 PutObject '))).toMatch(/"Body":"<Body, \d+ bytes, sha256 [0-9a-f]{16}…>"/);
    expect(lines.at(-2)).toBe('wss://<api-id>.execute-api.eu-west-1.amazonaws.com/prod');
  });

  it('cloudbase: builds, then prints every manager call of a first deploy in order', async () => {
    const run = await cli(['deploy', 'cloudbase', '--env', 'some-env', '--dry-run']);

    expect(run.code).toBe(0);
    expect(calls(run.stdout)).toEqual([
      'CloudBase functions.getFunctionDetail',
      'CloudBase functions.createFunction',
      'CloudBase access.getAccessList',
      'CloudBase access.createAccess',
      'CloudBase access.getDomainList',
    ]);
    const lines = run.stdout.split('\n');
    expect(lines).toContain('new CloudBase {"envId":"some-env","secretId":"<TENCENTCLOUD_SECRETID, not set>","secretKey":"<TENCENTCLOUD_SECRETKEY, not set>"}');
    const create = JSON.parse(lines.find((line) => line.startsWith('CloudBase functions.createFunction '))!.slice('CloudBase functions.createFunction '.length));
    expect(create.func).toMatchObject({
      name: 'cloudsocket',
      type: 'HTTP',
      protocolType: 'WS',
      protocolParams: { wsParams: { idleTimeOut: 600 } },
      timeout: 900,
      runtime: 'Nodejs20.19',
      instanceConcurrencyConfig: { maxConcurrency: 100 },
      installDependency: false,
    });
    expect(create.base64Code).toMatch(/^<base64Code, \d+ characters, sha256 [0-9a-f]{16}…>$/);
    expect(lines).toContain('CloudBase access.createAccess {"name":"cloudsocket","path":"/chat","type":1}');
    expect(lines.at(-2)).toBe('wss://some-env.service.tcloudbase.com/chat');
  });

  it('cloudbase: secrets in the environment never reach the plan', async () => {
    const secretKey = 'Zx9SuperSecretKeyValue0123456789';
    const run = await cli(['deploy', 'cloudbase', '--env', 'some-env', '--dry-run', '--name', 'chat', '--path', '/ws'], {
      TENCENTCLOUD_SECRETID: 'AKIDexampleexampleexample1234',
      TENCENTCLOUD_SECRETKEY: secretKey,
      TENCENTCLOUD_SESSIONTOKEN: 'session-token-that-must-stay-hidden',
    });

    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain(secretKey);
    expect(run.stdout).not.toContain('AKIDexampleexampleexample1234');
    expect(run.stdout).not.toContain('session-token-that-must-stay-hidden');
    expect(run.stdout).toContain('new CloudBase {"envId":"some-env","secretId":"AKID****","secretKey":"Zx9S****","token":"sess****"}');
    expect(run.stdout).toContain('CloudBase access.createAccess {"name":"chat","path":"/ws","type":1}');
  });

  it('remove: both clouds print their teardown plans', async () => {
    const aws = await cli(['remove', 'aws', '--dry-run', '--region', 'eu-west-1', '--delete-bucket']);
    expect(aws.code).toBe(0);
    expect(calls(aws.stdout)).toEqual([
      'CloudFormation DescribeStacks',
      'CloudFormation DescribeStackEvents',
      'CloudFormation DeleteStack',
      'CloudFormation DescribeStacks',
      'CloudFormation DescribeStackEvents',
      'S3 GetBucketTagging',
      'S3 ListObjectVersions',
      'S3 DeleteBucket',
    ]);

    const cloudbase = await cli(['remove', 'cloudbase', '--env', 'some-env', '--dry-run']);
    expect(cloudbase.code).toBe(0);
    expect(calls(cloudbase.stdout)).toEqual([
      'CloudBase functions.getFunctionDetail',
      'CloudBase access.getAccessList',
      'CloudBase access.deleteAccess',
      'CloudBase functions.deleteFunction',
    ]);
  });
});

describe('real runs that cannot start get one line and a non-zero exit', () => {
  it('aws without credentials', async () => {
    const run = await cli(['deploy', 'aws', '--region', 'eu-west-1']);
    expect(run.code).toBe(1);
    expect(errorLines(run.stderr)).toEqual([expect.stringMatching(/^cloudsocket: no AWS credentials found: run `aws configure`/)]);
    expect(run.stdout).not.toContain('built');
  });

  it('aws without a region, and with a region that is not one', async () => {
    const none = await cli(['deploy', 'aws']);
    expect(none.code).toBe(1);
    expect(errorLines(none.stderr)).toEqual([expect.stringMatching(/^cloudsocket: no AWS region: pass --region/)]);

    const bogus = await cli(['deploy', 'aws', '--region', 'mars']);
    expect(bogus.code).toBe(1);
    expect(errorLines(bogus.stderr)).toEqual(['cloudsocket: AWS region "mars" is unknown or unreachable; pass --region with a region such as us-east-1']);
  });

  it('cloudbase without credentials, with a malformed env id, and without --env', async () => {
    const noKeys = await cli(['deploy', 'cloudbase', '--env', 'some-env']);
    expect(noKeys.code).toBe(1);
    expect(errorLines(noKeys.stderr)).toEqual([expect.stringMatching(/^cloudsocket: no Tencent Cloud credentials: set TENCENTCLOUD_SECRETID/)]);

    const badEnv = await cli(['deploy', 'cloudbase', '--env', 'Not An Env', '--dry-run']);
    expect(badEnv.code).toBe(1);
    expect(errorLines(badEnv.stderr)).toEqual([expect.stringMatching(/^cloudsocket: "Not An Env" is not a CloudBase environment id/)]);

    const noEnv = await cli(['deploy', 'cloudbase', '--dry-run']);
    expect(noEnv.code).toBe(2);
    expect(errorLines(noEnv.stderr)).toEqual([expect.stringMatching(/^cloudsocket: deploy cloudbase: --env ENV_ID is required/)]);
  });
});

describe('help', () => {
  it('lists deploy and remove among the commands, and every flag of each', async () => {
    const overview = await cli(['--help']);
    expect(overview.stdout).toMatch(/^\s+deploy\s/m);
    expect(overview.stdout).toMatch(/^\s+remove\s/m);

    const deploy = await cli(['deploy', '--help']);
    for (const flag of ['--stack', '--region', '--stage', '--bucket', '--dry-run', '--env', '--name', '--path', '--help']) {
      expect(deploy.stdout).toContain(flag);
    }
    const remove = await cli(['remove', 'aws', '--help']);
    for (const flag of ['--stack', '--region', '--delete-bucket', '--bucket', '--dry-run', '--help']) {
      expect(remove.stdout).toContain(flag);
    }
  });
});
