/**
 * Errors of `cloudsocket deploy` and `cloudsocket remove`. Each message is one
 * line that says what to do next; docs/errors.md and docs/deploy.md list them.
 */
import { CloudsocketError } from '../../shared/errors.js';

export class MissingCredentialsError extends CloudsocketError {
  constructor(hint: string) {
    super('missing_credentials', hint);
  }
}

export class CredentialsRejectedError extends CloudsocketError {
  constructor(cloud: string, detail: string) {
    super('credentials_rejected', `${cloud} rejected the credentials (${detail}); check that they are current and belong to the right account`);
  }
}

export class AccessDeniedError extends CloudsocketError {
  constructor(action: string, detail: string) {
    super('access_denied', `not allowed to call ${action} (${detail}); grant the permissions listed in docs/deploy.md`);
  }
}

export class MissingRegionError extends CloudsocketError {
  constructor() {
    super('missing_region', 'no AWS region: pass --region (e.g. --region us-east-1), set AWS_REGION, or set region in your AWS profile');
  }
}

export class UnknownRegionError extends CloudsocketError {
  constructor(region: string) {
    super('unknown_region', `AWS region "${region.slice(0, 64)}" is unknown or unreachable; pass --region with a region such as us-east-1`);
  }
}

export class ArtifactMissingError extends CloudsocketError {
  constructor(path: string) {
    super('artifact_missing', `${path} is missing after the build; run \`cloudsocket build\` and check its output`);
  }
}

export class StackRollbackCompleteError extends CloudsocketError {
  constructor(stack: string) {
    super('stack_rollback_complete', `stack ${stack} is in ROLLBACK_COMPLETE (its first deploy failed) and cannot be updated; delete it first: cloudsocket remove aws --stack ${stack}`);
  }
}

export class StackBusyError extends CloudsocketError {
  constructor(stack: string, status: string) {
    super('stack_busy', `stack ${stack} is ${status}; wait until that operation finishes, then run the command again`);
  }
}

export class ChangeSetFailedError extends CloudsocketError {
  constructor(stack: string, reason: string) {
    super('change_set_failed', `CloudFormation could not prepare the change for stack ${stack}: ${reason}`);
  }
}

export class DeployFailedError extends CloudsocketError {
  constructor(what: string, status: string) {
    super('deploy_failed', `${what} ended in ${status}; the reasons are listed above`);
  }
}

export class BucketUnavailableError extends CloudsocketError {
  constructor(bucket: string, reason: string) {
    super('bucket_unavailable', `deployment bucket ${bucket}: ${reason}`);
  }
}

export class InvalidEnvIdError extends CloudsocketError {
  constructor(envId: string) {
    super('invalid_env_id', `"${envId.slice(0, 64)}" is not a CloudBase environment id; copy the id from the CloudBase console (it looks like my-env-1a2b3c)`);
  }
}

export class EnvNotFoundError extends CloudsocketError {
  constructor(envId: string) {
    super('env_not_found', `CloudBase environment ${envId} was not found for these credentials; check --env and TENCENTCLOUD_REGION (or TCB_REGION)`);
  }
}

export class FunctionTypeMismatchError extends CloudsocketError {
  constructor(name: string, type: string) {
    super('function_type_mismatch', `function ${name} already exists as a ${type || 'non-HTTP'} function; pick another --name or delete it in the console`);
  }
}

export class AccessPathTakenError extends CloudsocketError {
  constructor(path: string, owner: string) {
    super('access_path_taken', `HTTP access path ${path} already routes to "${owner}"; pick another --path or delete that route`);
  }
}

/**
 * The cloud's API could not be talked to: no connection, no answer, or an answer
 * from something in between (a proxy's 502) rather than from the API.
 */
export class CloudUnreachableError extends CloudsocketError {
  constructor(cloud: string, where: string, cause: string) {
    super('cloud_unreachable', `cannot reach the ${cloud} API${where ? ` (${where})` : ''}: ${cause}`);
  }
}

/** What a socket said, with its error code in front unless the text already names it; never empty. */
export function networkCause(code: string | undefined, text: string): string {
  const cause = code && !text.includes(code) ? [code, text].filter(Boolean).join(': ') : text;
  return cause || 'the request failed without saying why';
}

/** A cloud API call failed for a reason none of the errors above covers. */
export class CloudApiError extends CloudsocketError {
  constructor(call: string, detail: string) {
    super('cloud_api_error', `${call} failed: ${detail}`);
  }
}

export class FunctionCreateFailedError extends CloudsocketError {
  constructor(name: string, envId: string) {
    super('function_create_failed', `function ${name} is left in CreateFailed from an earlier deploy and cannot be updated; delete it first: cloudsocket remove cloudbase --env ${envId} --name ${name}`);
  }
}
