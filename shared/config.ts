/**
 * The shape of `cloudsocket.config.ts`, the one file that describes a
 * project: which module holds the app, and how each target runs it. Every
 * field is optional; docs/config.md explains each and its default.
 */

export interface CloudbaseTargetConfig {
  /** CloudBase environment id (`deploy cloudbase --env` wins over it). */
  envId?: string;
  /** Function name; default the project's name. */
  functionName?: string;
  /** CloudBase runtime name, e.g. "Nodejs20.19". */
  runtime?: string;
  /** Connections one instance serves, 1-100. CloudBase's own default is 1; ours is 100. */
  concurrency?: number;
  /** Seconds without traffic before CloudBase closes a connection, 10-7200. */
  idleTimeout?: number;
  /** Function timeout in seconds, at least idleTimeout, at most 900: no connection outlives it. */
  timeout?: number;
  /** Memory of an instance in MB. */
  memory?: number;
  /** HTTP access path, e.g. "/chat"; default "/" + the function name. */
  path?: string;
  /** Environment variables of this target only, over `env`. */
  env?: Record<string, string>;
  /**
   * Where connections live: "memory" (each instance its own; users on
   * different instances cannot see each other) or "redis" (one registry and
   * backplane for every instance). Default "redis" when redisUrl is set.
   */
  registry?: 'memory' | 'redis';
  /** The Redis the instances share, e.g. "redis://:password@10.0.0.12:6379" (becomes REDIS_URL). */
  redisUrl?: string;
  /** The VPC the function runs in, to reach a TencentDB for Redis instance there. */
  vpc?: CloudbaseVpcConfig;
}

export interface CloudbaseVpcConfig {
  /** e.g. "vpc-abcd1234". */
  vpcId: string;
  /** e.g. "subnet-abcd1234"; a subnet of vpcId. */
  subnetId: string;
}

export interface AwsTargetConfig {
  /** CloudFormation stack name; default the project's name. */
  stackName?: string;
  /** Region; default AWS_REGION, AWS_DEFAULT_REGION, then the profile's. */
  region?: string;
  /** API Gateway stage; default "dev". */
  stage?: string;
  /** Lambda memory in MB, 128-10240; default 256. */
  memory?: number;
  /** Lambda architecture; default "arm64". */
  architecture?: 'arm64' | 'x86_64';
  /** Lambda runtime; default "nodejs22.x". */
  runtime?: 'nodejs20.x' | 'nodejs22.x' | 'nodejs24.x';
  /** Your own CloudFormation template (relative to the project), used as it is instead of the generated one. */
  template?: string;
  /** Environment variables of this target only, over `env`. */
  env?: Record<string, string>;
  /** Where connections live: "dynamodb" (the template's table). */
  registry?: 'dynamodb';
}

export interface CloudsocketConfig {
  /** Names the stack and function unless they are named; default package.json's name, else the folder's. */
  name?: string;
  /** The module whose default export (or export named `app`) is the app, relative to this file. Absent: the built-in chat. */
  app?: string;
  /** "chat" (the built-in chat page), the path of your own HTML file, or false. Default: "chat" when `app` is absent, else false. */
  page?: string | false;
  /** Build output, relative to the project; default "dist". */
  outDir?: string;
  /** Environment variables every function gets, on both targets. */
  env?: Record<string, string>;
  cloudbase?: CloudbaseTargetConfig;
  aws?: AwsTargetConfig;
}

/** Typing help for the config file: `export default defineConfig({ ... })`. */
export function defineConfig(config: CloudsocketConfig): CloudsocketConfig {
  return config;
}
