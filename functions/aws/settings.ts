import { ConfigError } from '../../shared/errors.js';
import { DEFAULT_CONNECTION_TTL_SECONDS } from '../../shared/dynamodb-registry.js';
import { LOG_LEVELS, type LogLevel } from '../../shared/log.js';
import { readChoice, readCoreSettings, readNumber, type CoreSettings, type Env } from '../../shared/settings.js';

export interface AwsSettings {
  /** CONNECTIONS_TABLE: the DynamoDB table of the registry. */
  tableName: string;
  /** CONNECTION_TTL: seconds a registry entry outlives its last refresh. */
  connectionTtlSeconds: number;
  /** WELCOME_FUNCTION: name or ARN of the function $connect invokes; only $connect needs it. */
  welcomeFunction: string | undefined;
  logLevel: LogLevel;
  /** AUTH_TOKEN: shared secret for the built-in chat (`?token=`); unset lets everyone in. */
  authToken: string | undefined;
  core: CoreSettings;
}

export function readAwsSettings(env: Env): AwsSettings {
  const tableName = env.CONNECTIONS_TABLE?.trim();
  if (!tableName) throw new ConfigError('CONNECTIONS_TABLE must name the DynamoDB table of the connection registry');
  return {
    tableName,
    connectionTtlSeconds: readNumber(env, 'CONNECTION_TTL', DEFAULT_CONNECTION_TTL_SECONDS, { min: 1, integer: true }),
    welcomeFunction: env.WELCOME_FUNCTION?.trim() || undefined,
    logLevel: readChoice(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    authToken: env.AUTH_TOKEN || undefined,
    core: readCoreSettings(env),
  };
}
