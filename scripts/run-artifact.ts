/**
 * Starts a built CloudBase function folder exactly as CloudBase does: `bash
 * scf_bootstrap` in that folder. Used by `cloudsocket dev` and by the tests,
 * so what runs locally is what ships.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { CloudsocketError } from '../shared/errors.js';
import { PortInUseError } from './emulator/errors.js';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The function's process ended by itself: before it served, or later. */
export class FunctionExitedError extends CloudsocketError {
  constructor(
    subject: string,
    readonly status: ExitStatus,
    readonly stderrTail: string,
    when: string,
  ) {
    const how = status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
    super('function_exited', `${subject} ${how} ${when}${describeStderr(stderrTail)}`);
  }
}

/** The function's process runs but never answered its /healthz. */
export class FunctionStartTimeoutError extends CloudsocketError {
  constructor(port: number, timeoutMs: number, stderrTail: string) {
    super('function_start_timeout', `the function did not serve on port ${port} within ${timeoutMs} ms${describeStderr(stderrTail)}`);
  }
}

/** The folder holds no scf_bootstrap: nothing was built there. */
export class FunctionNotBuiltError extends CloudsocketError {
  constructor(file: string) {
    super('function_not_built', `${file} is missing; run \`cloudsocket build\` first`);
  }
}

/** The process could not be started at all (no bash, a folder that vanished, ...). */
export class FunctionSpawnError extends CloudsocketError {
  constructor(directory: string, cause: NodeJS.ErrnoException) {
    super('function_spawn_failed', `could not run bash scf_bootstrap in ${directory}: ${cause.code ?? cause.message}${cause.code === 'ENOENT' ? ' (is bash on PATH?)' : ''}`);
  }
}

/** functions/cloudbase/server.ts echoes it on /healthz, so readiness cannot be another process that holds the port. */
const INSTANCE_ID_VARIABLE = 'CLOUDSOCKET_INSTANCE_ID';

/** Enough of the end of stderr to show why a process died, without keeping all it ever wrote. */
const STDERR_TAIL_CHARS = 4096;
const STDERR_TAIL_LINES = 20;

/**
 * The function's end of a pipe only this process holds, and the preload that
 * stops the function when it reads end-of-file: so a runner killed with
 * SIGKILL leaves no function behind on the port. Local runs only; the built
 * artifact knows nothing of it.
 */
const PARENT_PIPE_FD = 3;
const PARENT_WATCH = fileURLToPath(new URL('./exit-with-parent.cjs', import.meta.url));

export interface RunningArtifact {
  child: ChildProcess;
  port: number;
  /** Every stdout line so far (the function's JSON logs). */
  lines: string[];
  /** Resolves with the first stdout line, past or future, that `matches` accepts. */
  waitForLine(matches: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
  exitStatus: Promise<ExitStatus>;
  /** The last lines the process wrote on stderr. */
  stderrTail(): string;
}

export interface RunOptions {
  port: number;
  env?: Record<string, string>;
  /** Called with each stdout line as it arrives. */
  onLine?: (line: string) => void;
  /** Give up waiting for the function to answer /healthz after this long. */
  startTimeoutMs?: number;
  /** Where `port: 0` takes each port it tries from; default freePort. */
  freePorts?: () => Promise<number>;
}

/** Ports tried for `port: 0` before a taken one is reported. */
const FREE_PORT_ATTEMPTS = 3;

/** Runs the function; with `port: 0`, on a port the OS calls free, and another when that one is taken before the function listens. */
export async function runArtifact(directory: string, options: RunOptions): Promise<RunningArtifact> {
  if (options.port !== 0) return runArtifactOn(directory, options.port, options);
  for (let attempt = 1; ; attempt++) {
    try {
      return await runArtifactOn(directory, await (options.freePorts ?? freePort)(), options);
    } catch (error) {
      if (!(error instanceof PortInUseError) || attempt === FREE_PORT_ATTEMPTS) throw error;
    }
  }
}

async function runArtifactOn(directory: string, port: number, options: RunOptions): Promise<RunningArtifact> {
  const bootstrap = join(directory, 'scf_bootstrap');
  if (!existsSync(bootstrap)) throw new FunctionNotBuiltError(bootstrap);
  const instance = randomUUID();
  const env: Record<string, string | undefined> = { ...process.env, ...options.env, PORT: String(port), [INSTANCE_ID_VARIABLE]: instance };
  const child = spawn('bash', [bootstrap], {
    cwd: directory,
    env: { ...env, NODE_OPTIONS: withPreload(env.NODE_OPTIONS, PARENT_WATCH), CLOUDSOCKET_PARENT_PIPE_FD: String(PARENT_PIPE_FD) },
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  let spawnError: NodeJS.ErrnoException | undefined;
  const spawned = new Promise<void>((resolve) => {
    child.once('spawn', resolve);
    // Kept for the child's life: a later failure (to signal it, say) must not crash the runner.
    child.on('error', (error) => {
      spawnError ??= error;
      resolve();
    });
  });
  await spawned;
  if (spawnError) throw new FunctionSpawnError(directory, spawnError);
  const lines: string[] = [];
  const lineWaiters = new Set<(line: string) => void>();
  let stderr = '';
  const stderrTail = () => stderr.trim().split('\n').slice(-STDERR_TAIL_LINES).join('\n');
  const exitStatus = new Promise<ExitStatus>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const exited = exitStatus.then(({ code }) => code);
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-STDERR_TAIL_CHARS)));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    options.onLine?.(line);
    for (const waiter of lineWaiters) waiter(line);
  });

  // Readiness is /healthz echoing our instance id. Not a log line: LOG_LEVEL may hide every line.
  // Not the port accepting connections: another process holding it would pass for our child.
  const timeoutMs = options.startTimeoutMs ?? 15000;
  const deadline = Date.now() + timeoutMs;
  let exit: ExitStatus | undefined;
  void exitStatus.then((status) => (exit = status));
  while (!(await servesInstance(port, instance))) {
    if (exit) {
      if (/\bEADDRINUSE\b/.test(stderr)) throw new PortInUseError(port);
      throw new FunctionExitedError('the function', exit, stderrTail(), `before it served on port ${port}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new FunctionStartTimeoutError(port, timeoutMs, stderrTail());
    }
    await Promise.race([new Promise((resolve) => setTimeout(resolve, 25)), exitStatus]);
  }
  return {
    child,
    port,
    lines,
    waitForLine: (matches, timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        const seen = lines.find(matches);
        if (seen !== undefined) return resolve(seen);
        const timer = setTimeout(() => {
          lineWaiters.delete(waiter);
          reject(new Error(`no matching output line within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = (line: string) => {
          if (!matches(line)) return;
          clearTimeout(timer);
          lineWaiters.delete(waiter);
          resolve(line);
        };
        lineWaiters.add(waiter);
      }),
    exited,
    exitStatus,
    stderrTail,
    stop: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** NODE_OPTIONS with `--require FILE` added: a value with spaces goes in double quotes, a backslash escapes (nodejs/node#24065). */
function withPreload(nodeOptions: string | undefined, file: string): string {
  const quoted = `"${file.replace(/[\\"]/g, (character) => `\\${character}`)}"`;
  return [nodeOptions, `--require ${quoted}`].filter(Boolean).join(' ');
}

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return listenBriefly(0, '127.0.0.1');
}

/**
 * Whether another process listens on `port` where listening at `host` would collide with it.
 * Only EADDRINUSE counts: any other refusal (EACCES, ...) is left for the real listener to report.
 */
export function portIsTaken(port: number, host: string): Promise<boolean> {
  return listenBriefly(port, host).then(
    () => false,
    (error: NodeJS.ErrnoException) => error.code === 'EADDRINUSE',
  );
}

function listenBriefly(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: bound } = server.address() as AddressInfo;
      server.close(() => resolve(bound));
    });
  });
}

/** Whether the process on `port` is the one given `instance`; anything else, or no answer, is no. */
function servesInstance(port: number, instance: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = get({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 1000 }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => {
        body += chunk;
        if (body.length > 4096) request.destroy();
      });
      response.once('end', () => resolve(parseLogLine(body)?.instance === instance));
      response.once('close', () => resolve(false));
    });
    request.once('timeout', () => request.destroy());
    request.once('error', () => resolve(false));
  });
}

function describeStderr(tail: string): string {
  if (tail === '') return ' (nothing on stderr)';
  return `; its stderr ended with:\n${tail
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n')}`;
}

export function parseLogLine(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
