/**
 * `cloudsocket deploy aws`: upload the Lambda bundle to S3 under a content-hash
 * key, then create or update the CloudFormation stack through a change set and
 * follow it to the end. An unchanged build therefore makes an empty change set,
 * which is reported as "nothing changed".
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  CreateChangeSetCommand,
  DeleteChangeSetCommand,
  DescribeChangeSetCommand,
  ExecuteChangeSetCommand,
  type Capability,
  type Stack,
} from '@aws-sdk/client-cloudformation';
import {
  CreateBucketCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutBucketEncryptionCommand,
  PutBucketTaggingCommand,
  PutObjectCommand,
  PutPublicAccessBlockCommand,
  type BucketLocationConstraint,
} from '@aws-sdk/client-s3';
import { awsErrorName, awsStatus, STACK_TAG, type AwsTarget } from './aws-target.js';
import { call, findStack, latestEventId, outputOf, parameterOf, printFailures, probe, watchStack, type Reporter } from './aws-stack.js';
import {
  ArtifactMissingError,
  BucketUnavailableError,
  ChangeSetFailedError,
  DeployFailedError,
  StackBusyError,
  StackRollbackCompleteError,
} from './errors.js';

export interface AwsDeployOptions extends Reporter {
  stack: string;
  stage: string;
  /** An existing bucket to upload to; without it deploy uses (and creates) its own. */
  bucket?: string;
  templatePath: string;
  /** Builds every target and resolves to the path of lambda.zip. */
  build(): Promise<string>;
  /** Name of the change set; unique per run. */
  changeSetName?: string;
  /** Suffix that makes a new bucket name globally unique when the account id is unknown. */
  randomSuffix?: () => string;
}

export interface AwsDeployResult {
  url: string | undefined;
  changed: boolean;
}

/** CloudFormation takes inline templates up to this size; larger ones go through S3. */
const TEMPLATE_BODY_LIMIT = 51_200;

const BUSY = /_IN_PROGRESS$/;

async function readArtifact(path: string): Promise<Buffer> {
  return readFile(path).catch(() => {
    throw new ArtifactMissingError(path);
  });
}

function contentHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/** IAM resources with explicit names need the NAMED capability; any IAM resource needs the plain one. */
export function capabilitiesFor(template: string): Capability[] {
  if (!/AWS::IAM::/.test(template)) return [];
  const named = /^\s+(RoleName|UserName|GroupName|ManagedPolicyName|InstanceProfileName):/m.test(template);
  const capabilities: Capability[] = [named ? 'CAPABILITY_NAMED_IAM' : 'CAPABILITY_IAM'];
  if (/^Transform:/m.test(template)) capabilities.push('CAPABILITY_AUTO_EXPAND');
  return capabilities;
}

/** A bucket name S3 accepts: lower case, 3-63 characters, no leading/trailing hyphen. */
export function deploymentBucketName(stack: string, region: string, accountId: string | undefined, suffix: () => string): string {
  const tail = accountId ? `${accountId}-${region}` : `${region}-${suffix()}`;
  const head = stack.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63 - tail.length - '-deploy-'.length);
  return `${head}-deploy-${tail}`.replace(/^-+/, '');
}

async function bucketState(target: AwsTarget, bucket: string): Promise<'mine' | 'missing' | 'foreign'> {
  try {
    await target.s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return 'mine';
  } catch (error) {
    const status = awsStatus(error);
    if (status === 404 || awsErrorName(error) === 'NotFound' || awsErrorName(error) === 'NoSuchBucket') return 'missing';
    if (status === 403) return 'foreign';
    return call(target, 'S3 HeadBucket', () => Promise.reject(error));
  }
}

async function createDeploymentBucket(target: AwsTarget, bucket: string, stack: string): Promise<void> {
  await call(target, 'S3 CreateBucket', () =>
    target.s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        ObjectOwnership: 'BucketOwnerEnforced',
        // us-east-1 is the one region that rejects an explicit location constraint.
        ...(target.region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: target.region as BucketLocationConstraint } }),
      }),
    ),
  ).catch((error: unknown) => {
    if (/BucketAlreadyExists/.test(String((error as Error).message))) {
      throw new BucketUnavailableError(bucket, 'the name is taken by another account; pass --bucket with a bucket of yours');
    }
    throw error;
  });
  await call(target, 'S3 PutPublicAccessBlock', () =>
    target.s3.send(
      new PutPublicAccessBlockCommand({
        Bucket: bucket,
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true },
      }),
    ),
  );
  await call(target, 'S3 PutBucketEncryption', () =>
    target.s3.send(
      new PutBucketEncryptionCommand({
        Bucket: bucket,
        ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      }),
    ),
  );
  await call(target, 'S3 PutBucketTagging', () =>
    target.s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: [{ Key: STACK_TAG, Value: stack }] } })),
  );
}

/** The bucket given with --bucket, else the one the stack already uses, else a new private one. */
async function ensureBucket(target: AwsTarget, options: AwsDeployOptions, stack: Stack | undefined, say: (line: string) => void): Promise<string> {
  if (options.bucket) {
    const state = await bucketState(target, options.bucket);
    if (state === 'missing') throw new BucketUnavailableError(options.bucket, 'does not exist; create it or leave out --bucket');
    if (state === 'foreign') throw new BucketUnavailableError(options.bucket, 'exists but these credentials may not use it');
    return options.bucket;
  }
  const { accountId } = await target.identity();
  const bucket =
    parameterOf(stack, 'CodeBucket') ??
    deploymentBucketName(options.stack, target.region, accountId, options.randomSuffix ?? (() => randomBytes(4).toString('hex')));
  const state = await bucketState(target, bucket);
  if (state === 'foreign') throw new BucketUnavailableError(bucket, 'the name is taken by another account; pass --bucket with a bucket of yours');
  if (state === 'missing') {
    say(`creating deployment bucket ${bucket} (private, encrypted)`);
    await createDeploymentBucket(target, bucket, options.stack);
  }
  return bucket;
}

/** Uploads unless an object with the same content-hash key is already there. */
async function upload(target: AwsTarget, bucket: string, key: string, body: Buffer, contentType: string, say: (line: string) => void): Promise<void> {
  const present = await probe(
    target,
    'S3 HeadObject',
    () => target.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })),
    (error) => awsStatus(error) === 404 || awsErrorName(error) === 'NotFound',
  );
  if (present) {
    say(`s3://${bucket}/${key} is already uploaded`);
    return;
  }
  say(`uploading s3://${bucket}/${key} (${body.byteLength} bytes)`);
  await call(target, 'S3 PutObject', () => target.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType })));
}

function isEmptyChange(reason: string | undefined): boolean {
  return /didn't contain changes|No updates are to be performed/i.test(reason ?? '');
}

export async function deployAws(target: AwsTarget, options: AwsDeployOptions): Promise<AwsDeployResult> {
  const { say } = options;
  // Credentials first: missing ones should not wait for a build to be reported.
  await target.identity();
  const zipPath = await options.build();
  const code = await readArtifact(zipPath);
  const template = await readArtifact(options.templatePath);
  say(`stack ${options.stack} in ${target.region}, stage ${options.stage}`);
  const existing = await findStack(target, options.stack);
  const status = existing?.StackStatus;
  if (status === 'ROLLBACK_COMPLETE') throw new StackRollbackCompleteError(options.stack);
  if (status && BUSY.test(status) && status !== 'REVIEW_IN_PROGRESS') throw new StackBusyError(options.stack, status);

  const bucket = await ensureBucket(target, options, existing, say);
  const codeKey = `${options.stack}/lambda-${contentHash(code)}.zip`;
  await upload(target, bucket, codeKey, code, 'application/zip', say);

  const templateText = template.toString('utf8');
  let templateSource: { TemplateBody: string } | { TemplateURL: string } = { TemplateBody: templateText };
  if (template.byteLength > TEMPLATE_BODY_LIMIT) {
    const templateKey = `${options.stack}/template-${contentHash(template)}.yaml`;
    await upload(target, bucket, templateKey, template, 'application/x-yaml', say);
    templateSource = { TemplateURL: `https://${bucket}.s3.${target.region}.amazonaws.com/${templateKey}` };
  }

  // A stack left in REVIEW_IN_PROGRESS has never been created: its next change set still creates it.
  const changeSetType = existing && status !== 'REVIEW_IN_PROGRESS' ? 'UPDATE' : 'CREATE';
  const changeSetName = options.changeSetName ?? `cloudsocket-${Date.now()}`;
  const created = await call(target, 'CloudFormation CreateChangeSet', () =>
    target.cloudformation.send(
      new CreateChangeSetCommand({
        StackName: options.stack,
        ChangeSetName: changeSetName,
        ChangeSetType: changeSetType,
        ...templateSource,
        Parameters: [
          { ParameterKey: 'CodeBucket', ParameterValue: bucket },
          { ParameterKey: 'CodeKey', ParameterValue: codeKey },
          { ParameterKey: 'StageName', ParameterValue: options.stage },
        ],
        Capabilities: capabilitiesFor(templateText),
        Tags: [{ Key: STACK_TAG, Value: options.stack }],
      }),
    ),
  );
  const changeSetId = created.Id ?? changeSetName;
  say(`${changeSetType === 'CREATE' ? 'creating' : 'updating'} stack ${options.stack} (change set ${changeSetName})`);

  for (;;) {
    const described = await call(target, 'CloudFormation DescribeChangeSet', () =>
      target.cloudformation.send(new DescribeChangeSetCommand({ ChangeSetName: changeSetId, StackName: options.stack })),
    );
    if (described.Status === 'CREATE_COMPLETE') break;
    if (described.Status === 'FAILED') {
      if (isEmptyChange(described.StatusReason)) {
        await call(target, 'CloudFormation DeleteChangeSet', () =>
          target.cloudformation.send(new DeleteChangeSetCommand({ ChangeSetName: changeSetId, StackName: options.stack })),
        );
        const url = outputOf(existing, 'WebSocketUrl');
        say(`nothing changed: stack ${options.stack} is up to date`);
        if (url) say(url);
        return { url, changed: false };
      }
      throw new ChangeSetFailedError(options.stack, described.StatusReason ?? 'no reason given');
    }
    await options.pause(options.pollIntervalMs);
  }

  const since = await latestEventId(target, options.stack);
  await call(target, 'CloudFormation ExecuteChangeSet', () =>
    target.cloudformation.send(new ExecuteChangeSetCommand({ ChangeSetName: changeSetId, StackName: options.stack })),
  );
  const { stack, failures } = await watchStack(target, created.StackId ?? options.stack, since, options);
  const finalStatus = stack?.StackStatus ?? 'UNKNOWN';
  if (finalStatus !== 'CREATE_COMPLETE' && finalStatus !== 'UPDATE_COMPLETE') {
    printFailures(failures, say);
    if (finalStatus === 'ROLLBACK_COMPLETE') say(`the stack cannot be updated now; delete it first: cloudsocket remove aws --stack ${options.stack}`);
    throw new DeployFailedError(`stack ${options.stack}`, finalStatus);
  }
  const url = outputOf(stack, 'WebSocketUrl');
  say(`stack ${options.stack}: ${finalStatus}`);
  if (url) say(url);
  return { url, changed: true };
}
