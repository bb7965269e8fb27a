/**
 * Starts a built CloudBase function folder exactly as CloudBase does: `bash
 * scf_bootstrap` in that folder. Used by `cloudsocket dev` and by the tests,
 * so what runs locally is what ships.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { connect, createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';

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
}

export interface RunOptions {
  port: number;
  env?: Record<string, string>;
  /** Called with each stdout line as it arrives. */
  onLine?: (line: string) => void;
  /** Give up waiting for the port to accept connections after this long. */
  startTimeoutMs?: number;
}

export async function runArtifact(directory: string, options: RunOptions): Promise<RunningArtifact> {
  const port = options.port === 0 ? await freePort() : options.port;
  const child = spawn('bash', [join(directory, 'scf_bootstrap')], {
    cwd: directory,
    env: { ...process.env, ...options.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const lineWaiters = new Set<(line: string) => void>();
  const stderr: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    options.onLine?.(line);
    for (const waiter of lineWaiters) waiter(line);
  });

  // Readiness is the port accepting connections, not a log line: LOG_LEVEL may hide every line.
  const timeoutMs = options.startTimeoutMs ?? 15000;
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  while (!(await canConnect(port))) {
    if (exitCode !== undefined) throw new Error(`the function exited with code ${exitCode} before listening: ${stderr.join('').trim()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the function did not listen on port ${port} within ${timeoutMs} ms: ${stderr.join('').trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
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
    stop: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function parseLogLine(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
