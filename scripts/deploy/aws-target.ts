/**
 * The AWS side of deploy/remove talks to two SDK clients through `send`. The
 * same logic drives the real clients, aws-sdk-client-mock in tests, and the
 * dry-run recorder below, which prints each command instead of sending it.
 */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { S3Client } from '@aws-sdk/client-s3';
import { CloudsocketError } from '../../shared/errors.js';
import {
  AccessDeniedError,
  CloudApiError,
  CloudUnreachableError,
  CredentialsRejectedError,
  MissingCredentialsError,
  MissingRegionError,
  networkCause,
  UnknownRegionError,
} from './errors.js';
import { formatCall } from './plan.js';

export interface AwsTarget {
  region: string;
  /** Resolves the credentials (failing when there are none) and tells the account when they carry it. */
  identity(): Promise<{ accountId?: string }>;
  cloudformation: Pick<CloudFormationClient, 'send'>;
  s3: Pick<S3Client, 'send'>;
}

const MISSING_CREDENTIALS =
  'no AWS credentials found: run `aws configure` (or `aws sso login`), set AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY';

/** Region shapes of every AWS partition (us-east-1, cn-north-1, us-gov-west-1, eu-isoe-west-1, ...). */
const REGION_SHAPE = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

function checkRegion(region: string): string {
  if (!REGION_SHAPE.test(region)) throw new UnknownRegionError(region);
  return region;
}

/** --region, then AWS_REGION, then AWS_DEFAULT_REGION (the CLI's name), then the profile's `region`. */
export async function resolveRegion(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const explicit = flag || env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (explicit) return checkRegion(explicit);
  // The SDK's own chain reads only local files here (shared config/credentials), never the network.
  const probe = new CloudFormationClient({});
  try {
    return checkRegion(await probe.config.region());
  } catch (error) {
    if (error instanceof CloudsocketError) throw error;
    return undefined;
  } finally {
    probe.destroy();
  }
}

export function awsTargetFromClients(region: string, cloudformation: CloudFormationClient, s3: S3Client): AwsTarget {
  return {
    region,
    cloudformation,
    s3,
    async identity() {
      try {
        const credentials = await cloudformation.config.credentials();
        return { accountId: credentials.accountId };
      } catch (error) {
        throw new MissingCredentialsError(MISSING_CREDENTIALS);
      }
    },
  };
}

/** Real clients on the SDK's default credential chain (env, SSO, profiles, process, IMDS). */
export async function createAwsTarget(regionFlag: string | undefined): Promise<AwsTarget> {
  const region = await resolveRegion(regionFlag);
  if (!region) throw new MissingRegionError();
  return awsTargetFromClients(region, new CloudFormationClient({ region }), new S3Client({ region }));
}

/** Tag on the buckets deploy creates; remove deletes only a bucket carrying it. */
export const STACK_TAG = 'cloudsocket:stack';

export type Responder = (action: string, input: Record<string, unknown>) => unknown;

function recordingClient<T>(service: string, print: (line: string) => void, respond: Responder): T {
  const send = async (command: { input: Record<string, unknown>; constructor: { name: string } }) => {
    const action = command.constructor.name.replace(/Command$/, '');
    print(formatCall(service, action, command.input));
    return respond(action, command.input);
  };
  return { send } as T;
}

export function notFound(message: string, name = 'NotFound'): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: name === 'ValidationError' ? 400 : 404 } });
}

/**
 * A target that prints every call and answers as if every step succeeded: for a
 * deploy nothing exists yet, for a remove the stack exists. It resolves no
 * credentials and opens no connection.
 */
export function createDryRunAwsTarget(region: string, print: (line: string) => void, stackExists = false): AwsTarget {
  let executed = stackExists;
  let deleted = false;
  let stackName = '';
  let stage = '<stage>';
  const stackArn = (name: unknown) => `arn:aws:cloudformation:${region}:<account>:stack/${String(name)}/<id>`;
  const cloudformation: Responder = (action, input) => {
    if (typeof input.StackName === 'string' && !input.StackName.startsWith('arn:')) stackName = input.StackName;
    switch (action) {
      case 'DescribeStacks':
        if (!executed) throw notFound(`Stack with id ${String(input.StackName)} does not exist`, 'ValidationError');
        return {
          Stacks: [
            {
              StackName: String(input.StackName),
              StackId: stackArn(input.StackName),
              StackStatus: deleted ? 'DELETE_COMPLETE' : 'CREATE_COMPLETE',
              Parameters: [{ ParameterKey: 'CodeBucket', ParameterValue: '<CodeBucket of the stack>' }],
              Outputs: [{ OutputKey: 'WebSocketUrl', OutputValue: `wss://<api-id>.execute-api.${region}.amazonaws.com/${stage}` }],
            },
          ],
        };
      case 'CreateChangeSet':
        stage = (input.Parameters as Array<{ ParameterKey?: string; ParameterValue?: string }> | undefined)?.find((p) => p.ParameterKey === 'StageName')?.ParameterValue ?? stage;
        return { Id: `arn:aws:cloudformation:${region}:<account>:changeSet/${String(input.ChangeSetName)}/<id>`, StackId: stackArn(input.StackName) };
      case 'DescribeChangeSet':
        return { Status: 'CREATE_COMPLETE', ExecutionStatus: 'AVAILABLE', StackId: stackArn(input.StackName) };
      case 'ExecuteChangeSet':
        executed = true;
        return {};
      case 'DeleteStack':
        deleted = true;
        return {};
      default:
        return action === 'DescribeStackEvents' ? { StackEvents: [] } : {};
    }
  };
  const s3: Responder = (action) => {
    if (action === 'HeadBucket' || action === 'HeadObject') throw notFound('Not Found');
    if (action === 'GetBucketTagging') return { TagSet: [{ Key: STACK_TAG, Value: stackName }] };
    return {};
  };
  return {
    region,
    async identity() {
      return {};
    },
    cloudformation: recordingClient('CloudFormation', print, cloudformation),
    s3: recordingClient('S3', print, s3),
  };
}

interface AwsErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export function awsErrorName(error: unknown): string {
  const shape = (error ?? {}) as AwsErrorShape;
  return shape.name ?? shape.code ?? 'Error';
}

export function awsStatus(error: unknown): number | undefined {
  return ((error ?? {}) as AwsErrorShape).$metadata?.httpStatusCode;
}

/** The SDK's names for an error answer that carried no AWS error code of its own. */
const NAMELESS = new Set(['Unknown', 'UnknownError']);

const REJECTED = new Set(['InvalidClientTokenId', 'SignatureDoesNotMatch', 'ExpiredToken', 'ExpiredTokenException', 'InvalidAccessKeyId', 'UnrecognizedClientException']);

/** Turns an SDK failure into one line that says what to do. */
export function explainAwsError(call: string, region: string, error: unknown): CloudsocketError {
  if (error instanceof CloudsocketError) return error;
  const name = awsErrorName(error);
  const message = ((error ?? {}) as AwsErrorShape).message?.split('\n')[0] ?? String(error);
  const code = ((error ?? {}) as AwsErrorShape).code;
  const status = awsStatus(error);
  const where = `${call} in ${region}`;
  if (name === 'CredentialsProviderError') return new MissingCredentialsError(MISSING_CREDENTIALS);
  if (REJECTED.has(name)) return new CredentialsRejectedError('AWS', name);
  // AWS names its errors; a bare status (a proxy's or gateway's 502) came from something in between.
  if (NAMELESS.has(name) && status !== undefined) return new CloudUnreachableError('AWS', where, `HTTP ${status}, an answer that names no AWS error`);
  if (name === 'AccessDenied' || name === 'AccessDeniedException' || status === 403) return new AccessDeniedError(call, name);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || /getaddrinfo/.test(message)) return new UnknownRegionError(region);
  // Every answer has a status; without one the request never got an answer.
  if (status === undefined && (code || name === 'TimeoutError')) return new CloudUnreachableError('AWS', where, networkCause(code, message));
  return new CloudApiError(call, `${name}: ${message || 'the API gave no reason'}`);
}
