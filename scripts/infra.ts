/**
 * The infrastructure of a project, generated from its config: the
 * CloudFormation template of the AWS stack (ours, with the project's
 * functions' settings and environment, unless the project keeps its own) and
 * the cloudbaserc.json of the CloudBase function.
 */
import { readFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { DEFAULT_TEMPLATE_PATH, loadTemplate } from './aws-template.js';
import type { Project } from './project.js';

export async function awsTemplateFor(project: Project): Promise<string> {
  if (project.aws.template) return readFile(project.aws.template, 'utf8');
  const template = await loadTemplate(DEFAULT_TEMPLATE_PATH);
  const env: Record<string, string> = { ...project.env, ...project.aws.env };
  // The stage the config names is the template's default, so the emulator and a deploy without --stage agree.
  const stageParameter = template.Parameters?.StageName;
  if (stageParameter) stageParameter.Default = project.aws.stage;
  // The template passes these two through parameters; the config sets the parameters' defaults.
  for (const [variable, parameter] of [['LOG_LEVEL', 'LogLevel'], ['CONNECTION_TTL', 'ConnectionTtlSeconds']] as const) {
    const value = env[variable];
    const declared = template.Parameters?.[parameter];
    if (value === undefined || !declared) continue;
    declared.Default = declared.Type === 'Number' ? Number(value) : value;
    delete env[variable];
  }
  template.Description = `${project.name}: a cloudsocket app on API Gateway WebSockets, Lambda and DynamoDB. Upload lambda.zip to CodeBucket/CodeKey, then deploy this stack; the WebSocketUrl output is the address clients connect to.`;
  for (const resource of Object.values(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const properties = (resource.Properties ??= {});
    properties.MemorySize = project.aws.memory;
    properties.Architectures = [project.aws.architecture];
    properties.Runtime = project.aws.runtime;
    const environment = (properties.Environment ??= { Variables: {} }) as { Variables: Record<string, unknown> };
    // The template's own variables (table, welcome function) win: the handlers cannot run without them.
    environment.Variables = { ...env, ...environment.Variables };
  }
  // Long-form intrinsics (`Fn::Sub:`) are what the parser produced; CloudFormation reads them as it reads `!Sub`.
  return stringify(template, { lineWidth: 0 });
}

export function cloudbasercFor(project: Project): Record<string, unknown> {
  const cb = project.cloudbase;
  return {
    version: '2.0',
    envId: cb.envId ?? '{{env.ENV_ID}}',
    functionRoot: '.',
    functions: [
      {
        name: cb.functionName,
        dir: 'cloudbase',
        type: 'HTTP',
        runtime: cb.runtime,
        memorySize: cb.memory,
        timeout: cb.timeout,
        protocolType: 'WS',
        protocolParams: { wsParams: { idleTimeOut: cb.idleTimeout } },
        instanceConcurrencyConfig: { dynamicEnabled: 'FALSE', maxConcurrency: cb.concurrency },
        installDependency: false,
        // The function reaches a TencentDB for Redis only from inside its VPC (docs/cloudbase.md).
        ...(cb.vpc ? { vpc: { vpcId: cb.vpc.vpcId, subnetId: cb.vpc.subnetId } } : {}),
        envVariables: {
          LOG_LEVEL: 'info',
          HEARTBEAT_TIMEOUT: '300',
          CLEANUP_INTERVAL: '30',
          ...project.env,
          ...cb.env,
          ...(cb.redisUrl ? { REDIS_URL: cb.redisUrl } : {}),
          ACCESS_PATH: cb.path,
        },
      },
    ],
  };
}
