import { existsSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { createLogger, LOG_LEVELS } from '../../shared/log.js';
import { readChoice } from '../../shared/settings.js';
import { buildAll, isStale } from '../build.js';
import { loadProject, type Project } from '../project.js';
import { integerFlag, parseFlags, probabilityFlag, UsageError, type Command } from '../cli-args.js';
import { PortInUseError } from '../emulator/errors.js';
import { formatCostReport } from '../emulator/cost-meter.js';
import { CloudbaseCostMeter, formatCloudbaseCostReport } from '../cloudbase-cost-meter.js';
import { startEmulator, type RunningEmulator } from '../emulator/index.js';
import { startFleet, type RunningCloudbase } from '../cloudbase-fleet.js';
import { startRedisServer, type LocalRedis } from '../redis-server.js';
import { FunctionExitedError, portIsTaken, runArtifact, type ExitStatus } from '../run-artifact.js';

const TARGETS = ['all', 'aws', 'cloudbase'] as const;
type Target = (typeof TARGETS)[number];

/** Flags that only one target reads: given for a run without that target, they would do nothing. */
const AWS_FLAGS = ['aws-port', 'stage', 'idle-timeout', 'max-duration', 'callback-rate', 'connect-rate', 'drop-disconnects', 'cold-start'] as const;
const CLOUDBASE_FLAGS = ['port', 'instances', 'concurrency', 'redis'] as const;
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
  help: `Usage: cloudsocket dev [--target all|aws|cloudbase] [--template PATH] [--port N] [--aws-port N] [--stage NAME]
                       [--idle-timeout SECONDS] [--max-duration SECONDS] [--no-build]
                       [--callback-rate N] [--connect-rate N] [--drop-disconnects P]
                       [--cold-start MS] [--cost]
                       [--instances N [--concurrency C] [--redis]]

Builds dist/ when sources changed, then starts, side by side:
  cloudbase  the CloudBase function from dist/cloudbase through its own
             scf_bootstrap, exactly as CloudBase would    ws://127.0.0.1:9000/
  aws        the emulated API Gateway WebSocket API, Lambda and DynamoDB,
             running the built dist/aws handlers as read
             from infra/aws/template.yaml                  ws://127.0.0.1:3001/dev
Ctrl+C closes every client (1012 on CloudBase, 1001 on AWS) and stops both;
so do SIGTERM and SIGHUP. Killed outright (SIGKILL), dev takes the CloudBase
function with it: the function stops itself when dev is gone.
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
  --callback-rate N
                 @connections requests per second, account-wide, past which the
                 emulator answers 429 LimitExceededException (default: no limit)
  --connect-rate N
                 new connections per second past which handshakes are refused
                 with 429 (API Gateway's quota is 500; default: no limit)
  --drop-disconnects P
                 lose each $disconnect with probability P, 0 to 1 (API Gateway
                 delivers it on a best-effort basis; default 0)
  --cold-start MS
                 delay each new Lambda execution environment's init by MS
                 (default 0)
  --cost         meter what the traffic would cost at list prices and print it
                 per million chat messages on exit and on SIGUSR2; each target
                 answers it at GET /_emulator/cost on its own port. AWS: API
                 Gateway messages and connection minutes, Lambda, DynamoDB.
                 CloudBase: invocations (one per connection) and GB-s of
                 instance time, with the traffic to clients counted
  --instances N  run N CloudBase instances (each its own process through
                 scf_bootstrap) behind a front door on --port that gives each new
                 WebSocket to an instance as CloudBase does: C per instance, then
                 the next one; with all full, 503
  --concurrency C
                 connections per instance (default 1, CloudBase's own default);
                 with --instances only
  --redis        start Debian's redis-server on a free port and give every
                 instance its REDIS_URL, so rooms span instances (without Redis
                 they cannot; if it dies, dev says so and starts it again,
                 empty); with --instances only
  --no-build     run dist/ as it is
  --template PATH  run an existing app's CloudFormation or SAM template and its
                 code (CodeUri folders, else the template's folder) on the
                 emulator alone, with nothing of cloudsocket in the functions
  --no-watch     do not rebuild and restart the targets when a source file changes
                 (by default every file of the last build is watched, the config too)
  -h, --help     show this help

--port, --instances, --concurrency and --redis apply with the CloudBase target only; --aws-port, --stage,
--idle-timeout, --max-duration, --callback-rate, --connect-rate, --drop-disconnects and --cold-start
with the AWS target only.

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
      'callback-rate': { type: 'string' },
      'connect-rate': { type: 'string' },
      'drop-disconnects': { type: 'string' },
      'cold-start': { type: 'string' },
      cost: { type: 'boolean' },
      'no-build': { type: 'boolean' },
      'no-watch': { type: 'boolean' },
      template: { type: 'string' },
      instances: { type: 'string' },
      concurrency: { type: 'string' },
      redis: { type: 'boolean' },
    });
    if (values.help) {
      console.log(devCommand.help);
      return 0;
    }
    // An existing API Gateway app: its own template and code, on the emulator alone.
    const templatePath = values.template === undefined ? undefined : resolve(values.template);
    if (templatePath !== undefined && !existsSync(templatePath)) throw new UsageError(`dev: --template ${values.template}: no such file`);
    if (templatePath !== undefined && values.target !== undefined && values.target !== 'aws') {
      throw new UsageError('dev: --template runs the AWS emulator only; leave out --target or say --target aws');
    }
    const target = (templatePath ? 'aws' : (values.target ?? 'all')) as Target;
    if (!TARGETS.includes(target)) throw new UsageError(`dev: --target must be one of ${TARGETS.join(', ')}, got ${JSON.stringify(values.target)}`);
    const runsCloudbase = target !== 'aws';
    const runsAws = target !== 'cloudbase';
    const unused = [...(runsAws ? [] : AWS_FLAGS), ...(runsCloudbase ? [] : CLOUDBASE_FLAGS)].find((flag) => values[flag] !== undefined);
    if (unused !== undefined) {
      throw new UsageError(
        unused === 'port'
          ? 'dev: --port is the CloudBase target\'s port and --target aws does not run it; the emulator\'s is --aws-port'
          : (CLOUDBASE_FLAGS as readonly string[]).includes(unused)
            ? `dev: --${unused} applies to the CloudBase target and --target aws does not run it`
            : `dev: --${unused} applies to the AWS emulator and --target cloudbase does not run it`,
      );
    }
    const port = integerFlag('dev', 'port', values.port ?? process.env.PORT, 9000);
    const awsPort = integerFlag('dev', 'aws-port', values['aws-port'], 3001);
    const idleTimeoutMs = integerFlag('dev', 'idle-timeout', values['idle-timeout'], 600, 1, MAX_SECONDS) * 1000;
    const maxConnectionMs = integerFlag('dev', 'max-duration', values['max-duration'], 7200, 1, MAX_SECONDS) * 1000;
    const optionalInteger = (flag: 'callback-rate' | 'connect-rate' | 'cold-start', max: number) =>
      values[flag] === undefined ? undefined : integerFlag('dev', flag, values[flag], 0, flag === 'cold-start' ? 0 : 1, max);
    const chaos = {
      callbackRatePerSecond: optionalInteger('callback-rate', 1_000_000),
      connectRatePerSecond: optionalInteger('connect-rate', 1_000_000),
      coldStartMs: optionalInteger('cold-start', 60_000),
      disconnectDropRate: probabilityFlag('dev', 'drop-disconnects', values['drop-disconnects']),
    };
    const instances = values.instances === undefined ? undefined : integerFlag('dev', 'instances', values.instances, 1, 1, 100);
    if (instances === undefined && (values.concurrency !== undefined || values.redis)) {
      throw new UsageError(`dev: --${values.redis ? 'redis' : 'concurrency'} applies with --instances N only`);
    }
    const concurrency = integerFlag('dev', 'concurrency', values.concurrency, 1, 1, 100);
    const project = await loadProject();
    const configuredRedis = process.env.REDIS_URL || project.cloudbase.env.REDIS_URL || project.cloudbase.redisUrl || project.env.REDIS_URL;
    if (values.redis && configuredRedis) {
      throw new UsageError('dev: --redis starts a Redis of its own, but REDIS_URL is already set (in the shell or the config); drop one of them');
    }
    // A project's own template names its stage; the emulator reads it from there.
    const stage = values.stage ?? (templatePath || project.aws.template ? undefined : project.aws.stage);
    if (stage !== undefined && !/^[A-Za-z0-9_-]{1,128}$/.test(stage)) {
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
    if (!values['no-build'] && !templatePath && (await anyStale(project, artifacts))) {
      console.log('building dist/ ...');
      await buildAll(project, (line) => console.log(line));
    }

    let redis: LocalRedis | undefined;
    let keepRedis = true;
    if (values.redis) {
      redis = await startRedisServer({ stopWithThisProcess: true });
      console.log(`started redis-server on 127.0.0.1:${redis.port} for the instances (--redis); it keeps nothing on disk`);
      keepRunning(redis, () => keepRedis);
    }
    // What the generated cloudbaserc.json gives the function in the cloud; the shell's own values win locally.
    const cloudbaseEnv = (current: Project) =>
      ({
        ...current.env,
        ...current.cloudbase.env,
        ...(current.cloudbase.redisUrl ? { REDIS_URL: current.cloudbase.redisUrl } : {}),
        ACCESS_PATH: current.cloudbase.path,
        ...process.env,
        ...(redis ? { REDIS_URL: redis.url } : {}),
      }) as Record<string, string>;
    // Metered, the target always runs behind the front door, which is where the traffic is counted.
    const cloudbaseMeter = values.cost && runsCloudbase ? new CloudbaseCostMeter(project.cloudbase.memory) : undefined;
    const startCloudbase = (current: Project): Promise<RunningCloudbase> =>
      (instances === undefined && !cloudbaseMeter
        ? runArtifact(join(current.outDir, 'cloudbase'), { port, env: cloudbaseEnv(current), onLine: (line) => console.log(line) })
        : startFleet({
            directory: join(current.outDir, 'cloudbase'),
            port,
            host: process.env.HOST || '0.0.0.0',
            instances: instances ?? 1,
            // Without --instances one process serves every connection, as dev always does; each is billed as its own instance.
            concurrency: instances === undefined ? Number.POSITIVE_INFINITY : concurrency,
            billEachConnection: instances === undefined,
            costMeter: cloudbaseMeter,
            env: cloudbaseEnv(current),
            onLine: (line) => console.log(line),
            onExit: (index, status) =>
              console.error(`cloudsocket: dev: CloudBase instance ${index + 1} ${status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`}; the others go on`),
          })
      ).catch(nameFlagOfTakenPort('port'));
    const functionEnv = Object.fromEntries(FUNCTION_SETTINGS.flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : [])));
    const logLevel = readChoice(process.env, 'LOG_LEVEL', LOG_LEVELS, 'info');
    const startAws = (current: Project) =>
      startEmulator({
        port: awsPort,
        host: AWS_HOST,
        stage,
        idleTimeoutMs,
        maxConnectionMs,
        chaos,
        meterCost: values.cost === true,
        functionEnv,
        // --template: the template's own code folders (CodeUri), else the folder it is in.
        ...(templatePath ? { templatePath, distDir: dirname(templatePath) } : { distDir: join(current.outDir, 'aws') }),
        logger: createLogger(logLevel, (line) => process.stdout.write(line)),
      }).catch(nameFlagOfTakenPort('aws-port'));

    let cloudbase: RunningCloudbase | undefined;
    let aws: RunningEmulator | undefined;
    try {
      if (runsCloudbase) cloudbase = await startCloudbase(project);
      if (runsAws) aws = await startAws(project);
    } catch (error) {
      await cloudbase?.stop();
      keepRedis = false;
      await redis?.stop();
      throw error;
    }

    // Before the URLs are printed: whoever reads them may signal at once. Ctrl+C reaches the CloudBase
    // child directly (same process group); it is forwarded anyway, for `kill -INT`.
    // A closed terminal (SIGHUP) stops dev as SIGTERM does; the function is told SIGTERM, the signal it handles.
    const signalled = new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
      process.once('SIGHUP', () => resolve('SIGTERM'));
    });

    console.log('');
    if (cloudbase) {
      const page = project.page === false ? 'no page' : `page: http://127.0.0.1:${cloudbase.port}/ and ${project.cloudbase.path}`;
      console.log(`cloudsocket CloudBase target  ws://127.0.0.1:${cloudbase.port}/  (listening on ${process.env.HOST || '0.0.0.0'}:${cloudbase.port}, ${page})`);
      if (instances !== undefined) {
        const redisUrl = redis?.url ?? cloudbaseEnv(project).REDIS_URL;
        const spread = `a front door for ${instances} instance(s), ${concurrency} connection(s) each`;
        console.log(
          redisUrl
            ? `  ${spread}; rooms span instances over Redis (${redisUrl.replace(/:[^:@/]*@/, ':***@')})`
            : `  ${spread}; without Redis users on different instances cannot see each other (set REDIS_URL or pass --redis)`,
        );
      }
    }
    if (aws) console.log(`cloudsocket AWS emulator      ${aws.url}  (page: ${aws.httpUrl}/, @connections: ${aws.httpsUrl ?? aws.httpUrl}/${aws.stage}/@connections)`);
    console.log('');

    // Only the CloudBase child can die on its own; a restart's own stop is not a death.
    let restarting = false;
    let died: (status: ExitStatus) => void = () => {};
    const death = new Promise<ExitStatus>((resolve) => (died = resolve));
    const watchDeath = (target: RunningCloudbase | undefined) =>
      void target?.exitStatus.then((status) => {
        if (!restarting && target === cloudbase) died(status);
      });
    watchDeath(cloudbase);

    let rebuilding = Promise.resolve();
    const rebuild = (changed: string) => {
      rebuilding = rebuilding.then(async () => {
        console.log(`changed ${relative(process.cwd(), changed) || changed}: rebuilding`);
        let current: Project;
        try {
          current = { ...(await loadProject()), outDir: distDir };
          const result = await buildAll(current, (line) => console.log(line));
          watcher?.watch(result.inputs);
        } catch (error) {
          console.error(`cloudsocket: dev: the build failed, the targets keep running the previous one: ${error instanceof Error ? error.message : String(error)}`);
          return;
        }
        restarting = true;
        try {
          if (cloudbase) {
            await cloudbase.stop('SIGTERM');
            cloudbase = await startCloudbase(current);
            watchDeath(cloudbase);
          }
          if (aws) {
            await aws.stop();
            aws = await startAws(current);
          }
        } finally {
          restarting = false;
        }
        console.log(`rebuilt and restarted ${[cloudbase && 'the CloudBase target', aws && 'the AWS emulator'].filter(Boolean).join(' and ')}`);
      });
    };
    const inputs = templatePath ? [] : await readInputs(distDir);
    const watcher = values['no-watch'] || inputs.length === 0 ? undefined : new SourceWatcher(rebuild);
    watcher?.watch(inputs);

    const printCost = () => {
      const report = aws?.costReport();
      if (report) console.log(formatCostReport(report));
      if (cloudbaseMeter) console.log(formatCloudbaseCostReport(cloudbaseMeter.report()));
    };
    if (values.cost) process.on('SIGUSR2', printCost);
    const reason = await Promise.race<NodeJS.Signals | ExitStatus>([signalled, death]);
    watcher?.close();
    await rebuilding.catch(() => undefined);
    if (typeof reason !== 'string') {
      await aws?.stop();
      await cloudbase?.stop('SIGKILL');
      keepRedis = false;
      await redis?.stop();
      throw new FunctionExitedError('dev: the CloudBase target', reason, cloudbase!.stderrTail(), 'while dev was running');
    }
    printCost();
    const [code] = await Promise.all([cloudbase ? cloudbase.stop(reason) : Promise.resolve(0), aws?.stop()]);
    keepRedis = false;
    await redis?.stop();
    return code ?? 0;
  },
};

/**
 * The redis-server of --redis, started again (empty, on its port) when it dies
 * while dev runs, and said so: without it the instances share no rooms and
 * admit no one (503 registry_unavailable).
 */
function keepRunning(redis: LocalRedis, wanted: () => boolean): void {
  redis.child.once('exit', (code, signal) => {
    if (!wanted()) return;
    console.error(`cloudsocket: dev: the redis-server of --redis ${signal ? `was killed by ${signal}` : `exited with code ${code}`}; starting it again, empty, on port ${redis.port}`);
    redis.restart().then(
      () => {
        console.error('cloudsocket: dev: redis-server is back; the instances reconnect and write their connections back');
        keepRunning(redis, wanted);
      },
      (error: unknown) => console.error(`cloudsocket: dev: redis-server could not be started again: ${error instanceof Error ? error.message : String(error)}`),
    );
  });
}

/** The sources of the last build, as the build recorded them. */
async function readInputs(distDir: string): Promise<string[]> {
  return readFile(join(distDir, '.inputs.json'), 'utf8').then((text) => JSON.parse(text) as string[], () => []);
}

/**
 * Watches the folders of a build's source files (editors often replace a
 * file rather than write it, which a watch on the file itself would miss) and
 * reports a change to one of those files, once per burst of events.
 */
class SourceWatcher {
  private files = new Set<string>();
  private readonly watchers = new Map<string, FSWatcher>();
  private pending: NodeJS.Timeout | undefined;

  constructor(private readonly onChange: (file: string) => void) {}

  watch(files: readonly string[]): void {
    this.files = new Set(files);
    for (const folder of new Set(files.map((file) => dirname(file)))) {
      if (this.watchers.has(folder)) continue;
      try {
        const watcher = watch(folder, (_event, name) => {
          const file = name ? join(folder, name.toString()) : undefined;
          if (!file || !this.files.has(file)) return;
          clearTimeout(this.pending);
          this.pending = setTimeout(() => this.onChange(file), 100);
        });
        watcher.on('error', () => this.watchers.delete(folder));
        this.watchers.set(folder, watcher);
      } catch {
        // A folder that vanished since the build has nothing left to watch.
      }
    }
  }

  close(): void {
    clearTimeout(this.pending);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }
}

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
