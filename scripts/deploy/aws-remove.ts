/**
 * `cloudsocket remove aws`: delete the stack and follow the deletion. The
 * deployment bucket stays unless asked for, and even then only a bucket that
 * deploy created for this stack (it carries the stack tag) is emptied and deleted.
 */
import { DeleteStackCommand } from '@aws-sdk/client-cloudformation';
import {
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetBucketTaggingCommand,
  ListObjectVersionsCommand,
  type ObjectIdentifier,
} from '@aws-sdk/client-s3';
import { awsErrorName, STACK_TAG, type AwsTarget } from './aws-target.js';
import { call, findStack, latestEventId, parameterOf, printFailures, probe, watchStack, type Reporter } from './aws-stack.js';
import { DeployFailedError, StackBusyError } from './errors.js';

export interface AwsRemoveOptions extends Reporter {
  stack: string;
  /** Also empty and delete the deployment bucket. */
  deleteBucket: boolean;
  /** The bucket to delete when the stack no longer names it. */
  bucket?: string;
}

async function emptyAndDeleteBucket(target: AwsTarget, bucket: string, stack: string, say: (line: string) => void): Promise<void> {
  const tags = await probe(
    target,
    'S3 GetBucketTagging',
    () => target.s3.send(new GetBucketTaggingCommand({ Bucket: bucket })),
    (error) => awsErrorName(error) === 'NoSuchTagSet' || awsErrorName(error) === 'NoSuchBucket',
  );
  if (!tags) {
    say(`bucket ${bucket} is gone or untagged; left alone`);
    return;
  }
  if (!tags.TagSet?.some((tag) => tag.Key === STACK_TAG && tag.Value === stack)) {
    say(`bucket ${bucket} was not created by cloudsocket for stack ${stack}; left in place`);
    return;
  }
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  for (;;) {
    const page = await call(target, 'S3 ListObjectVersions', () =>
      target.s3.send(new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionIdMarker })),
    );
    const objects: ObjectIdentifier[] = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((o) => ({ Key: o.Key!, VersionId: o.VersionId }));
    if (objects.length > 0) {
      await call(target, 'S3 DeleteObjects', () => target.s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } })));
    }
    if (!page.IsTruncated) break;
    keyMarker = page.NextKeyMarker;
    versionIdMarker = page.NextVersionIdMarker;
  }
  await call(target, 'S3 DeleteBucket', () => target.s3.send(new DeleteBucketCommand({ Bucket: bucket })));
  say(`deleted bucket ${bucket}`);
}

export async function removeAws(target: AwsTarget, options: AwsRemoveOptions): Promise<void> {
  const { say } = options;
  await target.identity();
  const stack = await findStack(target, options.stack);
  const bucket = options.bucket ?? parameterOf(stack, 'CodeBucket');
  if (!stack) {
    say(`stack ${options.stack} does not exist in ${target.region}; nothing to delete`);
  } else {
    if (stack.StackStatus?.endsWith('_IN_PROGRESS') && stack.StackStatus !== 'REVIEW_IN_PROGRESS') {
      throw new StackBusyError(options.stack, stack.StackStatus);
    }
    const since = await latestEventId(target, options.stack);
    say(`deleting stack ${options.stack} in ${target.region}`);
    await call(target, 'CloudFormation DeleteStack', () => target.cloudformation.send(new DeleteStackCommand({ StackName: options.stack })));
    const result = await watchStack(target, stack.StackId ?? options.stack, since, options);
    const status = result.stack?.StackStatus ?? 'DELETE_COMPLETE';
    if (status !== 'DELETE_COMPLETE') {
      printFailures(result.failures, say);
      throw new DeployFailedError(`deleting stack ${options.stack}`, status);
    }
    say(`stack ${options.stack}: DELETE_COMPLETE`);
  }
  if (!bucket) return;
  if (options.deleteBucket) await emptyAndDeleteBucket(target, bucket, options.stack, say);
  else say(`kept deployment bucket ${bucket} (pass --delete-bucket to delete it)`);
}
