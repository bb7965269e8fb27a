import { parseFlags, perTargetCommand, type Command } from '../cli-args.js';
import { removeAws } from '../deploy/aws-remove.js';
import { removeCloudbase } from '../deploy/cloudbase.js';
import { awsTargetFor, checkBucket, checkFunctionName, checkStack, cloudbaseManagerFor, reporter, requireEnvId } from '../deploy/flags.js';
import { loadProject } from '../project.js';

const AWS_HELP = `Usage: cloudsocket remove aws [--stack NAME] [--region R] [--delete-bucket] [--bucket B] [--dry-run]

Deletes the CloudFormation stack (API, functions, table, roles), printing
stack events until it is gone. The deployment bucket is kept unless
--delete-bucket is given, and then only a bucket deploy created for this stack
is emptied and deleted.

Options:
  --stack NAME      stack name (default aws.stackName of cloudsocket.config.ts, else its name)
  --region R        AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the profile's region)
  --delete-bucket   also empty and delete the deployment bucket
  --bucket B        the deployment bucket, when the stack is already gone
  --dry-run         print every API call the removal would make; sends nothing
  -h, --help        show this help`;

const CLOUDBASE_HELP = `Usage: cloudsocket remove cloudbase --env ENV_ID [--name NAME] [--dry-run]

Deletes the function's HTTP access paths, then the function.

Options:
  --env ENV_ID   CloudBase environment id (required unless cloudbase.envId is set)
  --name NAME    function name (default cloudbase.functionName, else the project's name)
  --dry-run      print every API call the removal would make; sends nothing
  -h, --help     show this help`;

const DRY_RUN_NOTE = 'dry run: nothing is sent; the plan assumes everything deploy makes exists and every call succeeds';

async function removeFromAws(argv: string[]): Promise<number> {
  const { values } = parseFlags('remove aws', argv, {
    stack: { type: 'string' },
    region: { type: 'string' },
    bucket: { type: 'string' },
    'delete-bucket': { type: 'boolean' },
    'dry-run': { type: 'boolean' },
  });
  if (values.help) {
    console.log(AWS_HELP);
    return 0;
  }
  const say = (line: string) => console.log(line);
  const project = await loadProject();
  const stack = checkStack('remove aws', values.stack ?? project.aws.stackName);
  const bucket = values.bucket === undefined ? undefined : checkBucket('remove aws', values.bucket);
  const dryRun = values['dry-run'] === true;
  const target = await awsTargetFor(values.region ?? project.aws.region, say, dryRun ? { notes: [DRY_RUN_NOTE], assumeExisting: true } : undefined);
  await removeAws(target, { ...reporter(say, dryRun ? 0 : 5000), stack, bucket, deleteBucket: values['delete-bucket'] === true });
  return 0;
}

async function removeFromCloudbase(argv: string[]): Promise<number> {
  const { values } = parseFlags('remove cloudbase', argv, {
    env: { type: 'string' },
    name: { type: 'string' },
    'dry-run': { type: 'boolean' },
  });
  if (values.help) {
    console.log(CLOUDBASE_HELP);
    return 0;
  }
  const say = (line: string) => console.log(line);
  const project = await loadProject();
  const envId = requireEnvId('remove cloudbase', values.env ?? project.cloudbase.envId);
  const name = checkFunctionName('remove cloudbase', values.name ?? project.cloudbase.functionName);
  const manager = cloudbaseManagerFor(envId, say, values['dry-run'] ? { notes: [DRY_RUN_NOTE], assumeExisting: true } : undefined);
  await removeCloudbase(manager, { envId, name, say });
  return 0;
}

export const removeCommand: Command = perTargetCommand(
  'remove',
  'tear down what `deploy` made on AWS or CloudBase',
  `Usage: cloudsocket remove aws|cloudbase [options]

${AWS_HELP}

${CLOUDBASE_HELP}`,
  { aws: removeFromAws, cloudbase: removeFromCloudbase },
);
