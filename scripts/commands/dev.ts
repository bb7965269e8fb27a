import { join } from 'node:path';
import { createLogger, LOG_LEVELS } from '../../shared/log.js';
import { readChoice } from '../../shared/settings.js';
import { buildAll, isStale } from '../build.js';
import { loadProject, type Project } from '../project.js';
import { integerFlag, parseFlags, UsageError, type Command } from '../cli-args.js';
import { PortInUseError } from '../emulator/errors.js';
import { startEmulator, type RunningEmulator } from '../emulator/index.js';
import { FunctionExitedError, portIsTaken, runArtifact, type ExitStatus, type RunningArtifact } from '../run-artifact.js';

const TARGETS = ['all', 'aws', 'cloudbase'] as const;
type Target = (typeof TARGETS)[number];

/** Flags that only one target reads: given for a run without that target, they would do nothing. */
const AWS_FLAGS = ['aws-port', 'stage', 'idle-timeout', 'max-duration'] as const;
const CLOUDBASE_FLAGS = ['port'] as const;
const AWS_HOST = '127.0.0.1';
/** A day: far past API Gateway's own limits, still short enough for a timer. */
const MAX_SECONDS = 86_400;

/** The shell's values of the functions' settings reach the emulated Lambda functions too, as they reach the CloudBase function. */
const FUNCTION_SETTINGS = [
  'LOG_LEVEL',
  'AUTH_TOKEN',
  'HEARTBEAT_TIMEOUT',
  'CLEANUP_INTERVAL',
  'RATE_LIMIT',
  'RATE_BURST',
  'RATE_LIMIT_CLOSE_AFTER',
  'ALLOWED_ORIGINS',
  'FANOUT_CONCURRENCY',
  'CONNECTION_TTL',
];

export const devCommand: Command = {
  name: 'dev',
  summary: 'run the targets locally: the CloudBase function and the emulated AWS stack',
  help: `Usage: cloudsocket dev [--target all|aws|cloudbase] [--port N] [--aws-port N] [--stage NAME]
                       [--idle-timeout SECONDS] [--max-duration SECONDS] [--no-build]

Builds dist/ when sources changed, then starts, side by side:
  cloudbase  the CloudBase function from dist/cloudbase through its own
             scf_bootstrap, exactly as CloudBase would    ws://127.0.0.1:9000/
  aws        the emulated API Gateway WebSocket API, Lambda and DynamoDB,
             running the built dist/aws handlers as read
             from infra/aws/template.yaml                  ws://127.0.0.1:3001/dev
Ctrl+C closes every client (1012 on CloudBase, 1001 on AWS) and stops both.
A port another process holds stops dev before anything starts; a target that
dies while running stops the other. Either exits with code 1 and says why.

Options:
  --target T     all (default), aws or cloudbase
  --port N       port of the CloudBase target (default 9000, or $PORT)
  --aws-port N   port of the emulated AWS stack (default 3001); the WebSocket
                 API, @connections and the Lambda Invoke API all answer there
  --stage NAME   API Gateway stage, the path of the AWS URL (default aws.stage
                 of cloudsocket.config.ts, else dev)
  --idle-timeout SECONDS
                 the emulator closes a connection (1001) that sent no frame for
                 this long (default 600, API Gateway's 10 minutes)
  --max-duration SECONDS
                 the emulator closes every connection (1001) after this long
                 (default 7200, API Gateway's 2 hours)
  --no-build     run dist/ as it is
  -h, --help     show this help

--port applies with the CloudBase target only; --aws-port, --stage,
--idle-timeout and --max-duration with the AWS target only.

Environment variables of the functions (LOG_LEVEL, HEARTBEAT_TIMEOUT, AUTH_TOKEN,
RATE_LIMIT, ...) pass through to both targets. AWS_ENDPOINT_URL_DYNAMODB, when
set, replaces the embedded DynamoDB (dynalite).`,
  async run(argv) {
    const { values } = parseFlags('dev', argv, {
      target: { type: 'string' },
      port: { type: 'string' },
      'aws-port': { type: 'string' },
      stage: { type: 'string' },
      'idle-timeout': { type: 'string' },
      'max-duration': { type: 'string' },
      'no-build': { type: 'boolean' },
    });
    if (values.help) {
      console.log(devCommand.help);
      return 0;
    }
    const target = (values.target ?? 'all') as Target;
    if (!TARGETS.includes(target)) throw new UsageError(`dev: --target must be one of ${TARGETS.join(', ')}, got ${JSON.stringify(values.target)}`);
    const runsCloudbase = target !== 'aws';
    const runsAws = target !== 'cloudbase';
    const unused = [...(runsAws ? [] : AWS_FLAGS), ...(runsCloudbase ? [] : CLOUDBASE_FLAGS)].find((flag) => values[flag] !== undefined);
    if (unused !== undefined) {
      throw new UsageError(
        unused === 'port'
          ? 'dev: --port is the CloudBase target\'s port and --target aws does not run it; the emulator\'s is --aws-port'
          : `dev: --${unused} applies to the AWS emulator and --target cloudbase does not run it`,
      );
    }
    const port = integerFlag('dev', 'port', values.port ?? process.env.PORT, 9000);
    const awsPort = integerFlag('dev', 'aws-port', values['aws-port'], 3001);
    const idleTimeoutMs = integerFlag('dev', 'idle-timeout', values['idle-timeout'], 600, 1, MAX_SECONDS) * 1000;
    const maxConnectionMs = integerFlag('dev', 'max-duration', values['max-duration'], 7200, 1, MAX_SECONDS) * 1000;
    const project = await loadProject();
    const stage = values.stage ?? project.aws.stage;
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(stage)) {
      throw new UsageError(`dev: --stage must be 1-128 letters, digits, "-" or "_" (an API Gateway stage name), got ${JSON.stringify(stage)}`);
    }
    if (runsCloudbase && runsAws && port === awsPort && port !== 0) throw new UsageError(`dev: --port and --aws-port must differ, both are ${port}`);
    // Before building and before starting anything, so a taken port is the only thing said.
    // The CloudBase function listens on $HOST, by default on every address.
    if (runsCloudbase) await refuseTakenPort(port, process.env.HOST || '0.0.0.0', 'port');
    if (runsAws) await refuseTakenPort(awsPort, AWS_HOST, 'aws-port');

    const distDir = project.outDir;
    const artifacts = [
      ...(runsCloudbase ? [join(distDir, 'cloudbase.zip')] : []),
      ...(runsAws ? [join(distDir, 'aws/lambda.zip')] : []),
    ];
    if (!values['no-build'] && (await anyStale(project, artifacts))) {
      console.log('building dist/ ...');
      await buildAll(project, (line) => console.log(line));
    }

    let cloudbase: RunningArtifact | undefined;
    let aws: RunningEmulator | undefined;
    try {
      if (runsCloudbase) {
        cloudbase = await runArtifact(join(distDir, 'cloudbase'), {
          port,
          // What the generated cloudbaserc.json gives the function in the cloud; the shell's own values win locally.
          env: { ...project.env, ...project.cloudbase.env, ACCESS_PATH: project.cloudbase.path, ...process.env } as Record<string, string>,
          onLine: (line) => console.log(line),
        }).catch(nameFlagOfTakenPort('port'));
      }
      if (runsAws) {
        const functionEnv = Object.fromEntries(FUNCTION_SETTINGS.flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : [])));
        const logLevel = readChoice(process.env, 'LOG_LEVEL', LOG_LEVELS, 'info');
        aws = await startEmulator({
          port: awsPort,
          host: AWS_HOST,
          stage,
          idleTimeoutMs,
          maxConnectionMs,
          functionEnv,
          distDir: join(distDir, 'aws'),
          logger: createLogger(logLevel, (line) => process.stdout.write(line)),
        }).catch(nameFlagOfTakenPort('aws-port'));
      }
    } catch (error) {
      await cloudbase?.stop();
      throw error;
    }

    console.log('');
    if (cloudbase) {
      const page = project.page === false ? 'no page' : `page: http://127.0.0.1:${cloudbase.port}/ and ${project.cloudbase.path}`;
      console.log(`cloudsocket CloudBase target  ws://127.0.0.1:${cloudbase.port}/  (listening on ${process.env.HOST || '0.0.0.0'}:${cloudbase.port}, ${page})`);
    }
    if (aws) console.log(`cloudsocket AWS emulator      ${aws.url}  (page: ${aws.httpUrl}/, @connections: ${aws.httpUrl}/${aws.stage}/@connections)`);
    console.log('');

    // Ctrl+C reaches the CloudBase child directly (same process group); we forward it anyway for `kill -INT`.
    const stopped = new Promise<NodeJS.Signals | ExitStatus>((resolve) => {
      const onSignal = (signal: NodeJS.Signals) => resolve(signal);
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      void cloudbase?.exitStatus.then(resolve);
    });
    const reason = await stopped;
    if (typeof reason !== 'string') {
      await aws?.stop();
      throw new FunctionExitedError('dev: the CloudBase target', reason, cloudbase!.stderrTail(), 'while dev was running');
    }
    const [code] = await Promise.all([cloudbase ? cloudbase.stop(reason) : Promise.resolve(0), aws?.stop()]);
    return code ?? 0;
  },
};

function portInUse(port: number, flag: string): PortInUseError {
  return new PortInUseError(port, { command: 'dev', name: `--${flag}` });
}

async function refuseTakenPort(port: number, host: string, flag: string): Promise<void> {
  if (port !== 0 && (await portIsTaken(port, host))) throw portInUse(port, flag);
}

/** A port taken between our check and the target's own listen is still reported by its flag. */
function nameFlagOfTakenPort(flag: string): (error: unknown) => never {
  return (error) => {
    throw error instanceof PortInUseError ? portInUse(error.port, flag) : error;
  };
}

async function anyStale(project: Project, artifacts: string[]): Promise<boolean> {
  for (const artifact of artifacts) if (await isStale(project, artifact)) return true;
  return false;
}
