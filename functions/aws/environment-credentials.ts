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

/** How long before their expiration credentials are looked up again: the margin of the SDK's own memoizeIdentityProvider (isIdentityExpired). */
const REFRESH_BEFORE_EXPIRATION_MS = 300_000;

/**
 * The export the SDK clients' runtime configuration imports from
 * `@aws-sdk/credential-provider-node`. The SDK marks what a default provider
 * gives as memoized and asks it on every request, since the SDK's own
 * defaultProvider memoizes; so does this one: the environment is read once,
 * and again only once the credentials are near their expiration (or when it
 * held none, which is not remembered).
 */
export const defaultProvider = (_init?: unknown): (() => Promise<EnvironmentCredentials>) => {
  let found: EnvironmentCredentials | undefined;
  return async () => {
    if (!found || (found.expiration && found.expiration.getTime() - Date.now() < REFRESH_BEFORE_EXPIRATION_MS)) found = credentialsFromEnvironment();
    return found;
  };
};
