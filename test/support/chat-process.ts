/**
 * `cloudsocket chat` as a child process with piped stdin and stdout, the way
 * a script drives it: write lines, await the output lines they cause.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot as projectRoot } from '../../scripts/package-root.js';

export class ChatProcess {
  readonly lines: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  private cursor = 0;
  private waiters: Array<() => void> = [];

  private constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      this.wake();
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.stderr.push(chunk));
    this.exited = new Promise((resolve) => child.once('exit', (code) => {
      this.wake();
      resolve(code);
    }));
  }

  static start(args: string[], env: Record<string, string> = {}): ChatProcess {
    const child = spawn(process.execPath, [join(projectRoot, 'bin/cloudsocket.js'), 'chat', ...args], {
      cwd: projectRoot,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new ChatProcess(child);
  }

  write(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  endInput(): void {
    this.child.stdin!.end();
  }

  /** The next unread stdout line matching `pattern`, skipping others; rejects on exit or timeout. */
  async line(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.cursor < this.lines.length) {
        const line = this.lines[this.cursor++]!;
        if (pattern.test(line)) return line;
      }
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`chat exited (${this.child.exitCode ?? this.child.signalCode}) before printing ${pattern}; output:\n${this.output()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${this.output()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  output(): string {
    return [...this.lines, ...this.stderr].join('\n');
  }

  /** Stops the process if a test left it running. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
