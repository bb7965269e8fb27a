/**
 * `deploy aws` / `remove aws` against the real CloudFormationClient and S3Client
 * classes, with aws-sdk-client-mock standing in for the AWS control plane.
 * Each case asserts the whole sequence of calls, in order, with their inputs.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CloudFormationClient,
  CreateChangeSetCommand,
  DeleteChangeSetCommand,
  DeleteStackCommand,
  DescribeChangeSetCommand,
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  ExecuteChangeSetCommand,
  type Stack,
  type StackEvent,
} from '@aws-sdk/client-cloudformation';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetBucketTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutBucketEncryptionCommand,
  PutBucketTaggingCommand,
  PutObjectCommand,
  PutPublicAccessBlockCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { mockClient, type AwsStub } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deployAws, type AwsDeployOptions } from '../scripts/deploy/aws.js';
import { removeAws } from '../scripts/deploy/aws-remove.js';
import { awsTargetFromClients, notFound, type AwsTarget } from '../scripts/deploy/aws-target.js';
import { CloudsocketError } from '../shared/errors.js';

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const STACK = 'chat';
const STACK_ID = `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/chat/0a1b2c3d`;
const CHANGE_SET_ID = `arn:aws:cloudformation:${REGION}:${ACCOUNT}:changeSet/cs-1/9f8e7d`;
const BUCKET = `chat-deploy-${ACCOUNT}-${REGION}`;
const URL = `wss://abc123.execute-api.${REGION}.amazonaws.com/dev`;
const TEMPLATE = `AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  CodeBucket: { Type: String }
  CodeKey: { Type: String }
  StageName: { Type: String }
Resources:
  ConnectRole:
    Type: AWS::IAM::Role
`;

let dir: string;
let zipPath: string;
let templatePath: string;
const zipBytes = Buffer.from('PK\u0003\u0004 not really a zip, but bytes with a stable hash');
// sha256 of zipBytes, first 16 hex digits: the content-hash key.
let codeKey: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cloudsocket-deploy-aws-'));
  zipPath = join(dir, 'lambda.zip');
  templatePath = join(dir, 'template.yaml');
  await writeFile(zipPath, zipBytes);
  await writeFile(templatePath, TEMPLATE);
  const { createHash } = await import('node:crypto');
  codeKey = `${STACK}/lambda-${createHash('sha256').update(zipBytes).digest('hex').slice(0, 16)}.zip`;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let cloudformation: CloudFormationClient;
let s3: S3Client;
let cfnMock: AwsStub<any, any, any>;
let s3Mock: AwsStub<any, any, any>;
let target: AwsTarget;
let lines: string[];

function clients(credentials: NonNullable<ConstructorParameters<typeof CloudFormationClient>[0]>['credentials']) {
  cloudformation = new CloudFormationClient({ region: REGION, credentials });
  s3 = new S3Client({ region: REGION, credentials });
  cfnMock = mockClient(cloudformation);
  s3Mock = mockClient(s3);
  target = awsTargetFromClients(REGION, cloudformation, s3);
}

beforeEach(() => {
  clients({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG', accountId: ACCOUNT });
  lines = [];
});

function options(extra: Partial<AwsDeployOptions> = {}): AwsDeployOptions {
  return {
    stack: STACK,
    stage: 'dev',
    templatePath,
    build: async () => zipPath,
    changeSetName: 'cs-1',
    say: (line) => lines.push(line),
    pause: async () => {},
    pollIntervalMs: 0,
    ...extra,
  };
}

/** Every call on both clients, in the order they were sent: [service action, input]. */
function sent(): Array<[string, unknown]> {
  const all = [
    ...cfnMock.calls().map((call) => ({ call, service: 'CloudFormation' })),
    ...s3Mock.calls().map((call) => ({ call, service: 'S3' })),
  ];
  all.sort((a, b) => (a.call.calledBefore(b.call) ? -1 : 1));
  return all.map(({ call, service }) => {
    const command = call.args[0] as { input: unknown; constructor: { name: string } };
    return [`${service} ${command.constructor.name.replace(/Command$/, '')}`, command.input];
  });
}

const missingStack = () => notFound(`Stack with id ${STACK} does not exist`, 'ValidationError');

function event(id: string, logicalId: string, status: string, reason?: string, type = 'AWS::Lambda::Function'): StackEvent {
  return {
    EventId: id,
    StackId: STACK_ID,
    StackName: STACK,
    LogicalResourceId: logicalId,
    ResourceType: type,
    ResourceStatus: status as StackEvent['ResourceStatus'],
    ResourceStatusReason: reason,
    Timestamp: new Date('2025-01-01T10:00:00Z'),
  };
}

function stack(status: string, extra: Partial<Stack> = {}): Stack {
  return {
    StackName: STACK,
    StackId: STACK_ID,
    StackStatus: status as Stack['StackStatus'],
    CreationTime: new Date('2025-01-01T09:00:00Z'),
    ...extra,
  };
}

const deployedStack = (status: string) =>
  stack(status, {
    Parameters: [
      { ParameterKey: 'CodeBucket', ParameterValue: BUCKET },
      { ParameterKey: 'CodeKey', ParameterValue: 'chat/lambda-0000000000000000.zip' },
      { ParameterKey: 'StageName', ParameterValue: 'dev' },
    ],
    Outputs: [{ OutputKey: 'WebSocketUrl', OutputValue: URL }],
  });

const changeSetInput = (type: 'CREATE' | 'UPDATE') => ({
  StackName: STACK,
  ChangeSetName: 'cs-1',
  ChangeSetType: type,
  TemplateBody: TEMPLATE,
  Parameters: [
    { ParameterKey: 'CodeBucket', ParameterValue: BUCKET },
    { ParameterKey: 'CodeKey', ParameterValue: codeKey },
    { ParameterKey: 'StageName', ParameterValue: 'dev' },
  ],
  Capabilities: ['CAPABILITY_IAM'],
  Tags: [{ Key: 'cloudsocket:stack', Value: STACK }],
});

describe('deploy aws', () => {
  it('first deploy: creates the bucket, uploads, creates the stack through a change set and prints the URL', async () => {
    cfnMock
      .on(DescribeStacksCommand, { StackName: STACK })
      .rejects(missingStack())
      .on(DescribeStacksCommand, { StackName: STACK_ID })
      .resolvesOnce({ Stacks: [stack('CREATE_IN_PROGRESS')] })
      .resolves({ Stacks: [deployedStack('CREATE_COMPLETE')] });
    cfnMock.on(CreateChangeSetCommand).resolves({ Id: CHANGE_SET_ID, StackId: STACK_ID });
    cfnMock
      .on(DescribeChangeSetCommand)
      .resolvesOnce({ Status: 'CREATE_PENDING' })
      .resolves({ Status: 'CREATE_COMPLETE', ExecutionStatus: 'AVAILABLE' });
    const review = event('e0', STACK, 'REVIEW_IN_PROGRESS', 'User Initiated', 'AWS::CloudFormation::Stack');
    const started = event('e1', 'ConnectionsTable', 'CREATE_IN_PROGRESS', undefined, 'AWS::DynamoDB::Table');
    const made = event('e2', 'ConnectionsTable', 'CREATE_COMPLETE', undefined, 'AWS::DynamoDB::Table');
    const done = event('e3', STACK, 'CREATE_COMPLETE', undefined, 'AWS::CloudFormation::Stack');
    cfnMock
      .on(DescribeStackEventsCommand, { StackName: STACK })
      .resolves({ StackEvents: [review] })
      .on(DescribeStackEventsCommand, { StackName: STACK_ID })
      .resolvesOnce({ StackEvents: [started, review] })
      .resolves({ StackEvents: [done, made, started, review] });
    cfnMock.on(ExecuteChangeSetCommand).resolves({});
    s3Mock.on(HeadBucketCommand).rejects(notFound('Not Found')).on(HeadObjectCommand).rejects(notFound('Not Found'));

    const result = await deployAws(target, options());

    expect(result).toEqual({ url: URL, changed: true });
    expect(sent()).toEqual([
      ['CloudFormation DescribeStacks', { StackName: STACK }],
      ['S3 HeadBucket', { Bucket: BUCKET }],
      ['S3 CreateBucket', { Bucket: BUCKET, ObjectOwnership: 'BucketOwnerEnforced', CreateBucketConfiguration: { LocationConstraint: REGION } }],
      [
        'S3 PutPublicAccessBlock',
        { Bucket: BUCKET, PublicAccessBlockConfiguration: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true } },
      ],
      ['S3 PutBucketEncryption', { Bucket: BUCKET, ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] } }],
      ['S3 PutBucketTagging', { Bucket: BUCKET, Tagging: { TagSet: [{ Key: 'cloudsocket:stack', Value: STACK }] } }],
      ['S3 HeadObject', { Bucket: BUCKET, Key: codeKey }],
      ['S3 PutObject', { Bucket: BUCKET, Key: codeKey, Body: zipBytes, ContentType: 'application/zip' }],
      ['CloudFormation CreateChangeSet', changeSetInput('CREATE')],
      ['CloudFormation DescribeChangeSet', { ChangeSetName: CHANGE_SET_ID, StackName: STACK }],
      ['CloudFormation DescribeChangeSet', { ChangeSetName: CHANGE_SET_ID, StackName: STACK }],
      ['CloudFormation DescribeStackEvents', { StackName: STACK }],
      ['CloudFormation ExecuteChangeSet', { ChangeSetName: CHANGE_SET_ID, StackName: STACK }],
      ['CloudFormation DescribeStacks', { StackName: STACK_ID }],
      ['CloudFormation DescribeStackEvents', { StackName: STACK_ID }],
      ['CloudFormation DescribeStacks', { StackName: STACK_ID }],
      ['CloudFormation DescribeStackEvents', { StackName: STACK_ID }],
    ]);
    // Each event once, oldest first, nothing from before the change set ran.
    const eventLines = lines.filter((line) => line.startsWith('  10:00:00'));
    expect(eventLines).toEqual([
      '  10:00:00  CREATE_IN_PROGRESS  ConnectionsTable (AWS::DynamoDB::Table)',
      '  10:00:00  CREATE_COMPLETE  ConnectionsTable (AWS::DynamoDB::Table)',
      '  10:00:00  CREATE_COMPLETE  chat (AWS::CloudFormation::Stack)',
    ]);
    expect(lines.at(-1)).toBe(URL);
  });

  it('update: reuses the stack bucket, uploads the changed bundle and updates through a change set', async () => {
    cfnMock
      .on(DescribeStacksCommand, { StackName: STACK })
      .resolves({ Stacks: [deployedStack('UPDATE_COMPLETE')] })
      .on(DescribeStacksCommand, { StackName: STACK_ID })
      .resolves({ Stacks: [deployedStack('UPDATE_COMPLETE')] });
    cfnMock.on(CreateChangeSetCommand).resolves({ Id: CHANGE_SET_ID, StackId: STACK_ID });
    cfnMock.on(DescribeChangeSetCommand).resolves({ Status: 'CREATE_COMPLETE' });
    const old = event('old', STACK, 'UPDATE_COMPLETE', undefined, 'AWS::CloudFormation::Stack');
    const updated = event('u1', 'MessageFunction', 'UPDATE_COMPLETE');
    cfnMock
      .on(DescribeStackEventsCommand, { StackName: STACK })
      .resolves({ StackEvents: [old] })
      .on(DescribeStackEventsCommand, { StackName: STACK_ID })
      .resolves({ StackEvents: [updated, old] });
    cfnMock.on(ExecuteChangeSetCommand).resolves({});
    s3Mock.on(HeadBucketCommand).resolves({}).on(HeadObjectCommand).rejects(notFound('Not Found'));

    const result = await deployAws(target, options());

    expect(result).toEqual({ url: URL, changed: true });
    expect(sent()).toEqual([
      ['CloudFormation DescribeStacks', { StackName: STACK }],
      ['S3 HeadBucket', { Bucket: BUCKET }],
      ['S3 HeadObject', { Bucket: BUCKET, Key: codeKey }],
      ['S3 PutObject', { Bucket: BUCKET, Key: codeKey, Body: zipBytes, ContentType: 'application/zip' }],
      ['CloudFormation CreateChangeSet', changeSetInput('UPDATE')],
      ['CloudFormation DescribeChangeSet', { ChangeSetName: CHANGE_SET_ID, StackName: STACK }],
      ['CloudFormation DescribeStackEvents', { StackName: STACK }],
      ['CloudFormation ExecuteChangeSet', { ChangeSetName: CHANGE_SET_ID, StackName: STACK }],
      ['CloudFormation DescribeStacks', { StackName: STACK_ID }],
      ['CloudFormation DescribeStackEvents', { StackName: STACK_ID }],
    ]);
    expect(lines).toContain('  10:00:00  UPDATE_COMPLETE  MessageFunction (AWS::Lambda::Function)');
    expect(lines.some((line) => line.includes('UPDATE_COMPLETE  chat'))).toBe(false);
  });

  it('no-op update: skips the upload, deletes the empty change set and reports nothing changed', async () => {
    cfnMock.on(DescribeStacksCommand, { StackName: STACK }).resolves({ Stacks: [deployedStack('UPDATE_COMPLETE')] });
    cfnMock.on(CreateChangeSetCommand).resolves({ Id: CHANGE_SET_ID, StackId: STACK_ID });
    cfnMock.on(DescribeChangeSetCommand).resolves({
      Status: 'FAILED',
      StatusReason: "The submitted information didn't contain changes. Submit different information to create a change set.",
    });
    cfnMock.on(DeleteChangeSetCommand).resolves({});
    s3Mock.on(HeadBucketCommand).resolves({}).on(HeadObjectCommand).resolves({ ContentLength: zipBytes.byteLength });

    const result = await deployAws(target, options());

    expect(result).toEqual({ url: URL, changed: false });
    expect(sent()).toEqual([
      ['CloudFormation DescribeStacks', { StackName: STACK }],
      ['S3 HeadBucket', { Bucket: BUCKET }],
      ['S3 HeadObject', { Bucket: BUCKET, Key: codeKey }],
      ['CloudFormation CreateChangeSet', changeSetInput('UPDATE')],
      ['CloudFormation DescribeChangeSet', { ChangeSetName: CHANGE_SET_ID, StackName: STACK }],
      ['CloudFormation DeleteChangeSet', { ChangeSetName: CHANGE_SET_ID, StackName: STACK }],
    ]);
    expect(lines).toContain(`nothing changed: stack ${STACK} is up to date`);
  });

  it("failure: prints each failed resource's reason and rejects with deploy_failed", async () => {
    cfnMock
      .on(DescribeStacksCommand, { StackName: STACK })
      .rejects(missingStack())
      .on(DescribeStacksCommand, { StackName: STACK_ID })
      .resolves({ Stacks: [stack('ROLLBACK_COMPLETE')] });
    cfnMock.on(CreateChangeSetCommand).resolves({ Id: CHANGE_SET_ID, StackId: STACK_ID });
    cfnMock.on(DescribeChangeSetCommand).resolves({ Status: 'CREATE_COMPLETE' });
    cfnMock.on(ExecuteChangeSetCommand).resolves({});
    cfnMock
      .on(DescribeStackEventsCommand, { StackName: STACK })
      .resolves({ StackEvents: [] })
      .on(DescribeStackEventsCommand, { StackName: STACK_ID })
      .resolves({
        StackEvents: [
          event('f3', STACK, 'ROLLBACK_COMPLETE', undefined, 'AWS::CloudFormation::Stack'),
          event('f2', 'ConnectionsTable', 'CREATE_FAILED', 'Resource creation cancelled', 'AWS::DynamoDB::Table'),
          event('f1', 'ConnectFunction', 'CREATE_FAILED', 'Resource handler returned message: "Error occurred while GetObject. S3 Error Code: AccessDenied"'),
        ],
      });
    s3Mock.on(HeadBucketCommand).rejects(notFound('Not Found')).on(HeadObjectCommand).rejects(notFound('Not Found'));

    const failure = await deployAws(target, options()).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(CloudsocketError);
    expect((failure as CloudsocketError).code).toBe('deploy_failed');
    expect((failure as Error).message).toBe('stack chat ended in ROLLBACK_COMPLETE; the reasons are listed above');
    expect(lines).toContain('Failed resources:');
    expect(lines).toContain(
      '  ConnectFunction (AWS::Lambda::Function): Resource handler returned message: "Error occurred while GetObject. S3 Error Code: AccessDenied"',
    );
    expect(lines).toContain('the stack cannot be updated now; delete it first: cloudsocket remove aws --stack chat');
    expect(sent().at(-2)).toEqual(['CloudFormation DescribeStacks', { StackName: STACK_ID }]);
  });

  it('ROLLBACK_COMPLETE: refuses before touching S3, and says to remove the stack first', async () => {
    cfnMock.on(DescribeStacksCommand).resolves({ Stacks: [stack('ROLLBACK_COMPLETE')] });

    const failure = await deployAws(target, options()).catch((error: unknown) => error);

    expect((failure as CloudsocketError).code).toBe('stack_rollback_complete');
    expect((failure as Error).message).toContain('cloudsocket remove aws --stack chat');
    expect(sent()).toEqual([['CloudFormation DescribeStacks', { StackName: STACK }]]);
  });

  it('missing credentials: one line saying what to do, and no call is sent', async () => {
    clients(async () => {
      throw Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
    });
    let built = false;

    const failure = await deployAws(target, options({ build: async () => ((built = true), zipPath) })).catch((error: unknown) => error);

    expect((failure as CloudsocketError).code).toBe('missing_credentials');
    expect((failure as Error).message).toMatch(/^no AWS credentials found: run `aws configure`/);
    expect((failure as Error).message).not.toContain('\n');
    expect(built).toBe(false);
    expect(sent()).toEqual([]);
  });

  it('rejected credentials and unreachable regions become one-line errors', async () => {
    cfnMock.on(DescribeStacksCommand).rejectsOnce(Object.assign(new Error('The security token included in the request is invalid.'), { name: 'InvalidClientTokenId' }));
    const rejected = await deployAws(target, options()).catch((error: unknown) => error);
    expect((rejected as CloudsocketError).code).toBe('credentials_rejected');

    cfnMock.reset();
    cfnMock.on(DescribeStacksCommand).rejectsOnce(Object.assign(new Error('getaddrinfo ENOTFOUND cloudformation.eu-west-1.amazonaws.com'), { code: 'ENOTFOUND' }));
    const unreachable = await deployAws(target, options()).catch((error: unknown) => error);
    expect((unreachable as CloudsocketError).code).toBe('unknown_region');
  });
});

describe('remove aws', () => {
  it('deletes the stack, follows it to DELETE_COMPLETE and keeps the bucket by default', async () => {
    cfnMock
      .on(DescribeStacksCommand, { StackName: STACK })
      .resolves({ Stacks: [deployedStack('UPDATE_COMPLETE')] })
      .on(DescribeStacksCommand, { StackName: STACK_ID })
      .resolvesOnce({ Stacks: [deployedStack('DELETE_IN_PROGRESS')] })
      .resolves({ Stacks: [deployedStack('DELETE_COMPLETE')] });
    cfnMock
      .on(DescribeStackEventsCommand, { StackName: STACK })
      .resolves({ StackEvents: [event('old', STACK, 'UPDATE_COMPLETE', undefined, 'AWS::CloudFormation::Stack')] })
      .on(DescribeStackEventsCommand, { StackName: STACK_ID })
      .resolves({ StackEvents: [event('d1', 'WebSocketApi', 'DELETE_COMPLETE', undefined, 'AWS::ApiGatewayV2::Api')] });
    cfnMock.on(DeleteStackCommand).resolves({});

    await removeAws(target, { stack: STACK, deleteBucket: false, say: (line) => lines.push(line), pause: async () => {}, pollIntervalMs: 0 });

    expect(sent()).toEqual([
      ['CloudFormation DescribeStacks', { StackName: STACK }],
      ['CloudFormation DescribeStackEvents', { StackName: STACK }],
      ['CloudFormation DeleteStack', { StackName: STACK }],
      ['CloudFormation DescribeStacks', { StackName: STACK_ID }],
      ['CloudFormation DescribeStackEvents', { StackName: STACK_ID }],
      ['CloudFormation DescribeStacks', { StackName: STACK_ID }],
      ['CloudFormation DescribeStackEvents', { StackName: STACK_ID }],
    ]);
    expect(lines).toContain('  10:00:00  DELETE_COMPLETE  WebSocketApi (AWS::ApiGatewayV2::Api)');
    expect(lines.at(-1)).toBe(`kept deployment bucket ${BUCKET} (pass --delete-bucket to delete it)`);
  });

  it('with --delete-bucket empties and deletes only the bucket deploy tagged for this stack', async () => {
    cfnMock.on(DescribeStacksCommand).rejects(missingStack());
    s3Mock
      .on(GetBucketTaggingCommand)
      .resolves({ TagSet: [{ Key: 'cloudsocket:stack', Value: STACK }] })
      .on(ListObjectVersionsCommand)
      .resolves({ Versions: [{ Key: codeKey, VersionId: 'null' }], IsTruncated: false })
      .on(DeleteObjectsCommand)
      .resolves({})
      .on(DeleteBucketCommand)
      .resolves({});

    await removeAws(target, { stack: STACK, bucket: BUCKET, deleteBucket: true, say: (line) => lines.push(line), pause: async () => {}, pollIntervalMs: 0 });

    expect(sent()).toEqual([
      ['CloudFormation DescribeStacks', { StackName: STACK }],
      ['S3 GetBucketTagging', { Bucket: BUCKET }],
      ['S3 ListObjectVersions', { Bucket: BUCKET }],
      ['S3 DeleteObjects', { Bucket: BUCKET, Delete: { Objects: [{ Key: codeKey, VersionId: 'null' }], Quiet: true } }],
      ['S3 DeleteBucket', { Bucket: BUCKET }],
    ]);
  });
});

// Kept referenced so the imports above document every command deploy may send.
void [PutObjectCommand, CreateBucketCommand, PutPublicAccessBlockCommand, PutBucketEncryptionCommand, PutBucketTaggingCommand];
