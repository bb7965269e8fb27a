import { DEFAULT_CONNECTION_TTL_SECONDS } from '../../registries/dynamodb-registry.js';
import { LOG_LEVELS, type LogLevel } from '../../shared/log.js';
import { readChoice, readCoreSettings, readNumber, type CoreSettings, type Env, type SettingsOverrides } from '../../shared/settings.js';

export interface AwsSettings {
  /** CONNECTIONS_TABLE: the DynamoDB table of the registry (needed unless the app brings its own registry). */
  tableName: string | undefined;
  /** CONNECTION_TTL: seconds a registry entry outlives its last refresh. */
  connectionTtlSeconds: number;
  /** WELCOME_FUNCTION: name or ARN of the function $connect invokes; only $connect needs it. */
  welcomeFunction: string | undefined;
  logLevel: LogLevel;
  core: CoreSettings;
}

export type AwsSettingsOverrides = SettingsOverrides<AwsSettings>;

export function readAwsSettings(env: Env): AwsSettings {
  return {
    tableName: env.CONNECTIONS_TABLE?.trim() || undefined,
    connectionTtlSeconds: readNumber(env, 'CONNECTION_TTL', DEFAULT_CONNECTION_TTL_SECONDS, { min: 1, integer: true }),
    welcomeFunction: env.WELCOME_FUNCTION?.trim() || undefined,
    logLevel: readChoice(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    core: readCoreSettings(env),
  };
}
