/**
 * Starts a built CloudBase function folder exactly as CloudBase does: `bash
 * scf_bootstrap` in that folder. Used by `cloudsocket dev` and by the tests,
 * so what runs locally is what ships.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface RunningArtifact {
  child: ChildProcess;
  port: number;
  /** Every stdout line so far (the function's JSON logs). */
  lines: string[];
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export interface RunOptions {
  port: number;
  env?: Record<string, string>;
  /** Called with each stdout line as it arrives. */
  onLine?: (line: string) => void;
  /** Give up waiting for the "listening" log line after this long. */
  startTimeoutMs?: number;
}

export function runArtifact(directory: string, options: RunOptions): Promise<RunningArtifact> {
  const child = spawn('bash', [join(directory, 'scf_bootstrap')], {
    cwd: directory,
    env: { ...process.env, ...options.env, PORT: String(options.port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the function did not start within ${options.startTimeoutMs ?? 15000} ms: ${stderr.join('')}`));
    }, options.startTimeoutMs ?? 15000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the function exited with code ${code} before listening: ${stderr.join('').trim()}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      options.onLine?.(line);
      const event = parseLogLine(line);
      if (event?.event === 'listening' && typeof event.port === 'number') {
        clearTimeout(timer);
        resolve({
          child,
          port: event.port,
          lines,
          exited,
          stop: (signal = 'SIGTERM') => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    });
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
