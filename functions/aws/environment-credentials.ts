/**
 * What the AWS handler bundles use instead of the SDK's default credential
 * chain (`@aws-sdk/credential-provider-node`, aliased to this module by
 * `cloudsocket build`). Lambda hands a function its execution role's keys in
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN
 * (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
 * the first place the default chain looks; the rest of the chain (SSO,
 * profiles, web identity, instance metadata, with the STS and SSO clients
 * they carry) is about a sixth of a handler bundle that a Lambda never runs.
 */
import { CloudsocketError } from '../../shared/errors.js';

/** The shape of the SDK's EnvironmentCredentials. */
export interface EnvironmentCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

/** Thrown when the environment holds no keys: the function is not running where Lambda (or the emulator) set them. */
export class MissingEnvironmentCredentialsError extends CloudsocketError {
  constructor() {
    super('aws_credentials_missing', "no AWS credentials in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), where Lambda puts the execution role's");
  }
}

export function credentialsFromEnvironment(env: NodeJS.ProcessEnv = process.env): EnvironmentCredentials {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) throw new MissingEnvironmentCredentialsError();
  const credentials: EnvironmentCredentials = { accessKeyId, secretAccessKey };
  if (env.AWS_SESSION_TOKEN) credentials.sessionToken = env.AWS_SESSION_TOKEN;
  if (env.AWS_CREDENTIAL_EXPIRATION) credentials.expiration = new Date(env.AWS_CREDENTIAL_EXPIRATION);
  return credentials;
}

/** The export the SDK clients' runtime configuration imports from `@aws-sdk/credential-provider-node`. */
export const defaultProvider = (_init?: unknown): () => Promise<EnvironmentCredentials> => async () => credentialsFromEnvironment();
