/**
 * Runs the built handlers the way Lambda does. Each function gets execution
 * environments (worker threads) with a private process.env: the template's
 * variables plus Lambda's own and the local endpoints. An environment serves
 * one invocation at a time and stays warm for the next; concurrent
 * invocations get more environments, up to a cap, then wait their turn.
 * A timed-out or crashed environment is discarded, so the next invocation
 * starts cold, as on Lambda.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../shared/log.js';
import type { FunctionSpec } from './stack.js';

export interface FunctionError {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

export type Outcome = { ok: true; result: unknown } | { ok: false; error: FunctionError };

export interface LambdaRuntimeOptions {
  functions: Map<string, FunctionSpec>;
  /** Variables every environment gets on top of the function's own (endpoints, region, credentials). */
  environment: Record<string, string>;
  /** Environments per function at most. */
  maxEnvironments: number;
  logger: Logger;
  /** Each line a handler writes to stdout or stderr. */
  onOutput: (functionName: string, line: string) => void;
}

const WORKER_URL = new URL('./lambda-worker.mjs', import.meta.url);

/** The errorType of an invocation its caller gave up on while it waited for an environment: it never ran. */
export const ABANDONED = 'Emulator.Abandoned';
/** The errorType of an asynchronous event dropped for its age, as Lambda drops it (to an on-failure destination, if any). */
export const EXPIRED = 'Emulator.EventExpired';

interface Pending {
  event: unknown;
  resolve: (outcome: Outcome) => void;
  queuedAt: number;
  /** Asynchronous events only: dropped unless an environment takes them by then. */
  expiresAt?: number;
}

/** How one function's invocations went: what to look at when the emulator falls behind. */
export interface FunctionStats {
  invocations: number;
  /** Given up by their callers (a client that left mid-handshake, a gateway past its integration timeout) before an environment took them. */
  abandoned: number;
  /** Asynchronous events older than the function's maximum event age when an environment was free: dropped, as Lambda drops them. */
  expired: number;
  coldStarts: number;
  peakEnvironments: number;
  peakQueued: number;
  /** From the call to an environment taking it. */
  queueWaitMs: { mean: number; max: number };
  /** From an environment taking it to its outcome. */
  durationMs: { mean: number; max: number };
}

class ExecutionEnvironment {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  private current: { id: string; resolve: (outcome: Outcome) => void; timer: NodeJS.Timeout } | undefined;
  dead = false;

  constructor(
    private readonly spec: FunctionSpec,
    environment: Record<string, string>,
    onOutput: (line: string) => void,
    private readonly onDead: (environment: ExecutionEnvironment) => void,
  ) {
    const logStreamName = `${new Date().toISOString().slice(0, 10).replace(/-/g, '/')}/[$LATEST]${randomUUID().replace(/-/g, '')}`;
    const logGroupName = `/aws/lambda/${spec.name}`;
    this.worker = new Worker(WORKER_URL, {
      env: { ...environment, AWS_LAMBDA_LOG_GROUP_NAME: logGroupName, AWS_LAMBDA_LOG_STREAM_NAME: logStreamName },
      workerData: {
        file: spec.file,
        exportName: spec.exportName,
        functionName: spec.name,
        functionVersion: '$LATEST',
        invokedFunctionArn: spec.arn,
        memoryLimitInMB: spec.memoryMb,
        runtime: spec.runtime,
        coldStartMs: spec.coldStartMs ?? 0,
        logGroupName,
        logStreamName,
      },
      stdout: true,
      stderr: true,
    });
    for (const stream of [this.worker.stdout, this.worker.stderr]) createInterface({ input: stream }).on('line', onOutput);
    this.ready = new Promise((resolve, reject) => {
      this.worker.once('message', () => resolve());
      this.worker.once('error', reject);
      this.worker.once('exit', () => reject(new Error('the environment exited during init')));
    });
    this.ready.catch(() => undefined);
    this.worker.on('message', (message: { type: string; id?: string; ok?: boolean; result?: unknown; error?: FunctionError }) => {
      if (message.type !== 'result' || !this.current || message.id !== this.current.id) return;
      this.finish(message.ok ? { ok: true, result: message.result } : { ok: false, error: message.error! });
    });
    this.worker.on('error', (error) => this.die({ errorType: 'Runtime.ExitError', errorMessage: error.message, trace: String(error.stack ?? '').split('\n') }));
    this.worker.on('exit', (code) => this.die({ errorType: 'Runtime.ExitError', errorMessage: `RequestId: the environment exited with code ${code}`, trace: [] }));
  }

  async invoke(event: unknown): Promise<Outcome> {
    try {
      await this.ready;
    } catch (error) {
      return { ok: false, error: { errorType: 'Runtime.ExitError', errorMessage: (error as Error).message, trace: [] } };
    }
    return new Promise((resolve) => {
      const id = randomUUID();
      const { timeoutMs } = this.spec;
      const timer = setTimeout(() => {
        this.die({ errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`, trace: [] });
      }, timeoutMs);
      this.current = { id, resolve, timer };
      this.worker.postMessage({ id, event, awsRequestId: id, deadline: Date.now() + timeoutMs });
    });
  }

  private finish(outcome: Outcome): void {
    const current = this.current;
    this.current = undefined;
    if (!current) return;
    clearTimeout(current.timer);
    current.resolve(outcome);
  }

  /** Fails the invocation in flight (if any) and throws the environment away. */
  die(error: FunctionError): void {
    this.finish({ ok: false, error });
    if (this.dead) return;
    this.dead = true;
    void this.worker.terminate();
    this.onDead(this);
  }
}

function abandonedOutcome(): Outcome {
  return { ok: false, error: { errorType: ABANDONED, errorMessage: 'the caller left before an environment took the invocation', trace: [] } };
}

function freshCounts() {
  return { invocations: 0, abandoned: 0, expired: 0, coldStarts: 0, peakEnvironments: 0, peakQueued: 0, queueWaitMs: 0, maxQueueWaitMs: 0, durationMs: 0, maxDurationMs: 0 };
}

export interface InvokeOptions {
  /** Fires when the caller no longer wants the outcome: if no environment has taken the invocation yet, it never runs. */
  abandoned?: AbortSignal;
  /** Dropped unless an environment takes it within this long (asynchronous events). */
  maximumAgeMs?: number;
}

class FunctionPool {
  private readonly idle: ExecutionEnvironment[] = [];
  private readonly all = new Set<ExecutionEnvironment>();
  private readonly queue: Pending[] = [];
  private counts = freshCounts();

  constructor(
    private readonly spec: FunctionSpec,
    private readonly environment: Record<string, string>,
    private readonly maxEnvironments: number,
    private readonly onOutput: (line: string) => void,
  ) {}

  invoke(event: unknown, { abandoned, maximumAgeMs }: InvokeOptions): Promise<Outcome> {
    return new Promise((resolve) => {
      if (abandoned?.aborted) {
        this.counts.abandoned++;
        return resolve(abandonedOutcome());
      }
      const queuedAt = performance.now();
      const pending: Pending = { event, resolve, queuedAt, ...(maximumAgeMs === undefined ? {} : { expiresAt: queuedAt + maximumAgeMs }) };
      this.queue.push(pending);
      this.counts.peakQueued = Math.max(this.counts.peakQueued, this.queue.length);
      abandoned?.addEventListener(
        'abort',
        () => {
          const at = this.queue.indexOf(pending);
          if (at < 0) return;
          this.queue.splice(at, 1);
          this.counts.abandoned++;
          resolve(abandonedOutcome());
        },
        { once: true },
      );
      this.dispatch();
    });
  }

  /** With `reset`, counting starts afresh after this reading. */
  stats(reset = false): FunctionStats {
    if (reset) {
      const stats = this.stats();
      this.counts = freshCounts();
      return stats;
    }
    const { invocations, abandoned, expired, coldStarts, peakEnvironments, peakQueued } = this.counts;
    const mean = (total: number) => (invocations ? Math.round((total / invocations) * 10) / 10 : 0);
    return {
      invocations,
      abandoned,
      expired,
      coldStarts,
      peakEnvironments,
      peakQueued,
      queueWaitMs: { mean: mean(this.counts.queueWaitMs), max: Math.round(this.counts.maxQueueWaitMs) },
      durationMs: { mean: mean(this.counts.durationMs), max: Math.round(this.counts.maxDurationMs) },
    };
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let environment = this.idle.pop();
      if (!environment) {
        if (this.all.size >= this.maxEnvironments) return;
        environment = new ExecutionEnvironment(this.spec, this.environment, this.onOutput, (dead) => {
          this.all.delete(dead);
          const at = this.idle.indexOf(dead);
          if (at >= 0) this.idle.splice(at, 1);
          this.dispatch();
        });
        this.all.add(environment);
        this.counts.coldStarts++;
        this.counts.peakEnvironments = Math.max(this.counts.peakEnvironments, this.all.size);
      }
      const pending = this.queue.shift()!;
      const takenAt = performance.now();
      if (pending.expiresAt !== undefined && takenAt > pending.expiresAt) {
        this.idle.push(environment);
        this.counts.expired++;
        pending.resolve({ ok: false, error: { errorType: EXPIRED, errorMessage: `the event waited ${Math.round(takenAt - pending.queuedAt)} ms, past the function's maximum event age`, trace: [] } });
        continue;
      }
      const chosen = environment;
      this.counts.invocations++;
      this.counts.queueWaitMs += takenAt - pending.queuedAt;
      this.counts.maxQueueWaitMs = Math.max(this.counts.maxQueueWaitMs, takenAt - pending.queuedAt);
      void chosen.invoke(pending.event).then((outcome) => {
        const duration = performance.now() - takenAt;
        this.counts.durationMs += duration;
        this.counts.maxDurationMs = Math.max(this.counts.maxDurationMs, duration);
        pending.resolve(outcome);
        if (!chosen.dead) this.idle.push(chosen);
        this.dispatch();
      });
    }
  }

  async stop(): Promise<void> {
    // Waiting callers are answered, not forgotten: a handshake held on its `$connect` would otherwise never be answered.
    for (const pending of this.queue.splice(0)) {
      pending.resolve({ ok: false, error: { errorType: 'ServiceException', errorMessage: 'the emulator is stopping', trace: [] } });
    }
    await Promise.all([...this.all].map((environment) => environment.worker.terminate()));
    this.all.clear();
    this.idle.splice(0);
  }
}

export class LambdaRuntime {
  private readonly pools = new Map<string, FunctionPool>();
  private readonly inFlightEvents = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(private readonly options: LambdaRuntimeOptions) {
    for (const spec of options.functions.values()) {
      const environment: Record<string, string> = {
        ...spec.environment,
        ...options.environment,
        AWS_LAMBDA_FUNCTION_NAME: spec.name,
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(spec.memoryMb),
        AWS_EXECUTION_ENV: `AWS_Lambda_${spec.runtime}`,
        _HANDLER: `${spec.file.replace(/^.*[\\/]/, '').replace(/\.[cm]?js$/, '')}.${spec.exportName}`,
        LAMBDA_TASK_ROOT: spec.file.replace(/[\\/][^\\/]*$/, ''),
      };
      this.pools.set(spec.name, new FunctionPool(spec, environment, options.maxEnvironments, (line) => options.onOutput(spec.name, line)));
    }
  }

  /** A function by name, full ARN or partial ARN, as Lambda's Invoke accepts; undefined when unknown. */
  resolve(nameOrArn: string): string | undefined {
    let name: string | undefined;
    if (nameOrArn.startsWith('arn:')) name = nameOrArn.split(':')[6];
    else if (nameOrArn.includes(':function:')) name = nameOrArn.split(':function:')[1]!.split(':')[0];
    else name = nameOrArn.split(':')[0];
    return name !== undefined && this.pools.has(name) ? name : undefined;
  }

  /** A synchronous (RequestResponse) invocation. */
  invoke(functionName: string, event: unknown, options: InvokeOptions = {}): Promise<Outcome> {
    const pool = this.pools.get(functionName);
    if (!pool || this.stopped) {
      return Promise.resolve({ ok: false, error: { errorType: 'ResourceNotFoundException', errorMessage: `Function not found: ${functionName}`, trace: [] } });
    }
    return pool.invoke(event, options);
  }

  /**
   * An asynchronous (Event) invocation: queued and run after the caller got
   * its 202, failures only logged, and dropped if it waits for an environment
   * past the function's maximum event age. Lambda would retry a failure twice; we do not.
   */
  invokeLater(functionName: string, event: unknown): void {
    const maximumAgeMs = this.options.functions.get(functionName)?.maximumEventAgeMs;
    const run = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.invoke(functionName, event, { maximumAgeMs }))
      .then((outcome) => {
        if (outcome.ok || this.stopped) return;
        if (outcome.error.errorType === EXPIRED) this.options.logger.warn('async_event_expired', { functionName, error: outcome.error });
        else this.options.logger.error('async_invocation_failed', { functionName, error: outcome.error });
      });
    this.inFlightEvents.add(run);
    void run.finally(() => this.inFlightEvents.delete(run));
  }

  /** Per function name; with `reset`, counting starts afresh after this reading. */
  stats(reset = false): Record<string, FunctionStats> {
    return Object.fromEntries([...this.pools].map(([name, pool]) => [name, pool.stats(reset)]));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.pools.values()].map((pool) => pool.stop()));
  }
}
