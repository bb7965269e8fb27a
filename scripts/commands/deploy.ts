import { parseFlags, perTargetCommand, type Command } from '../cli-args.js';
import { deployAws } from '../deploy/aws.js';
import { deployCloudbase } from '../deploy/cloudbase.js';
import {
  awsTargetFor,
  buildForAws,
  cloudbaseManagerFor,
  buildForCloudbase,
  checkAccessPath,
  checkBucket,
  checkFunctionName,
  checkStack,
  checkStage,
  cloudbasercPathOf,
  reporter,
  requireEnvId,
  templatePathOf,
} from '../deploy/flags.js';
import { loadProject } from '../project.js';

const AWS_HELP = `Usage: cloudsocket deploy aws [--stack NAME] [--region R] [--stage S] [--bucket B] [--dry-run]

Builds the project (cloudsocket.config.ts, or the built-in chat without one),
uploads dist/aws/lambda.zip to S3 under a content-hash key, then creates or
updates the CloudFormation stack of dist/aws/template.yaml through a change
set, printing stack events as they happen, and finally the wss:// URL.
Credentials come from the AWS default chain (AWS_PROFILE, AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, SSO, ~/.aws/config and credentials).

Options:
  --stack NAME   stack name (default aws.stackName of the config, else its name)
  --region R     AWS region (default: aws.region, AWS_REGION, AWS_DEFAULT_REGION, then the profile's region)
  --stage S      API Gateway stage name (default aws.stage, else dev)
  --bucket B     upload to this existing bucket instead of a private deployment
                 bucket that deploy creates (named after the stack and region)
  --dry-run      print every API call the deploy would make; sends nothing
  -h, --help     show this help`;

const CLOUDBASE_HELP = `Usage: cloudsocket deploy cloudbase --env ENV_ID [--name NAME] [--path /chat] [--dry-run]

Builds the project into dist/cloudbase.zip, creates or updates the HTTP function
of dist/cloudbaserc.json (WebSocket on, idle timeout, timeout, runtime,
per-instance concurrency, environment variables), routes an HTTP access path
to it, and prints the wss:// URL.
Credentials: TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY (and
TENCENTCLOUD_SESSIONTOKEN for temporary keys); TCB_REGION or
TENCENTCLOUD_REGION pins the region of the environment.

Options:
  --env ENV_ID   CloudBase environment id (required unless cloudbase.envId is set)
  --name NAME    function name (default cloudbase.functionName, else the project's name)
  --path PATH    HTTP access path (default cloudbase.path, else /NAME; /chat for the chat)
  --dry-run      print every API call the deploy would make; sends nothing
  -h, --help     show this help`;

const DRY_RUN_NOTE = 'dry run: nothing is sent; the plan assumes nothing exists yet and every call succeeds';
const AWS_POLL_NOTE = 'a real run repeats DescribeChangeSet, DescribeStacks and DescribeStackEvents every 5 s until each operation ends';
const CLOUDBASE_POLL_NOTE = 'each manager call below sends one or more SCF/TCB API requests; createFunction and waitFunctionActive poll GetFunction until the function is Active';

async function deployToAws(argv: string[]): Promise<number> {
  const { values } = parseFlags('deploy aws', argv, {
    stack: { type: 'string' },
    region: { type: 'string' },
    stage: { type: 'string' },
    bucket: { type: 'string' },
    'dry-run': { type: 'boolean' },
  });
  if (values.help) {
    console.log(AWS_HELP);
    return 0;
  }
  const say = (line: string) => console.log(line);
  const project = await loadProject();
  const stack = checkStack('deploy aws', values.stack ?? project.aws.stackName);
  const stage = checkStage('deploy aws', values.stage ?? project.aws.stage);
  const bucket = values.bucket === undefined ? undefined : checkBucket('deploy aws', values.bucket);
  const dryRun = values['dry-run'] === true;
  const target = await awsTargetFor(
    values.region ?? project.aws.region,
    say,
    dryRun ? { notes: [DRY_RUN_NOTE, 'AWS credentials: the SDK default chain (not resolved in a dry run)', AWS_POLL_NOTE], assumeExisting: false } : undefined,
  );
  await deployAws(target, {
    ...reporter(say, dryRun ? 0 : 5000),
    stack,
    stage,
    bucket,
    templatePath: templatePathOf(project),
    build: () => buildForAws(project, say),
  });
  return 0;
}

async function deployToCloudbase(argv: string[]): Promise<number> {
  const { values } = parseFlags('deploy cloudbase', argv, {
    env: { type: 'string' },
    name: { type: 'string' },
    path: { type: 'string' },
    'dry-run': { type: 'boolean' },
  });
  if (values.help) {
    console.log(CLOUDBASE_HELP);
    return 0;
  }
  const say = (line: string) => console.log(line);
  const configured = await loadProject();
  const envId = requireEnvId('deploy cloudbase', values.env ?? configured.cloudbase.envId);
  const name = values.name === undefined ? undefined : checkFunctionName('deploy cloudbase', values.name);
  const defaultPath = name === undefined || configured.builtInChat ? configured.cloudbase.path : `/${name}`;
  const path = checkAccessPath('deploy cloudbase', values.path ?? defaultPath);
  // The flags win over the config in the build too, so the function's ACCESS_PATH is the path that is routed.
  const project = { ...configured, cloudbase: { ...configured.cloudbase, path, functionName: name ?? configured.cloudbase.functionName } };
  const manager = cloudbaseManagerFor(envId, say, values['dry-run'] ? { notes: [DRY_RUN_NOTE, CLOUDBASE_POLL_NOTE], assumeExisting: false } : undefined);
  await deployCloudbase(manager, { envId, name, path, configPath: cloudbasercPathOf(project), build: () => buildForCloudbase(project, say), say });
  return 0;
}

export const deployCommand: Command = perTargetCommand(
  'deploy',
  'deploy to AWS (CloudFormation) or Tencent CloudBase and print the wss:// URL',
  `Usage: cloudsocket deploy aws|cloudbase [options]

${AWS_HELP}

${CLOUDBASE_HELP}`,
  { aws: deployToAws, cloudbase: deployToCloudbase },
);
