/**
 * The bench side of the load processes: forks them, splits clients between
 * them, and adds up what they count.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { LatencyHistogram } from './histogram.js';
import type { ConnectOrder, Dialect, Order, SendOrder, Tally, WorkerEvent } from './messages.js';

export interface PoolTally extends Omit<Tally, 'latency'> {
  latency: LatencyHistogram;
}

export class LoadPool {
  private constructor(private readonly workers: ChildProcess[]) {}

  /** Forks `size` load processes from the bundled worker script. */
  static async start(workerScript: string, size: number): Promise<LoadPool> {
    const workers = Array.from({ length: size }, () =>
      fork(workerScript, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' }),
    );
    await Promise.all(workers.map((worker) => new Promise<void>((resolve, reject) => {
      worker.once('spawn', () => resolve());
      worker.once('error', reject);
    })));
    return new LoadPool(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Opens `count` clients spread over the processes; resolves when each is in its room. */
  async connect(options: { urls: string[]; dialect: Dialect; count: number; roomSize: number; concurrency?: number }): Promise<{ connected: number; failed: number; firstError?: string }> {
    const shares = split(options.count, this.workers.length);
    let firstIndex = 0;
    const replies = await Promise.all(
      this.workers.map((worker, index) => {
        const order: ConnectOrder = {
          kind: 'connect',
          urls: options.urls,
          dialect: options.dialect,
          count: shares[index]!,
          firstIndex,
          roomSize: options.roomSize,
          concurrency: options.concurrency ?? 50,
        };
        firstIndex += shares[index]!;
        return this.ask(worker, order, 'connected');
      }),
    );
    const firstError = replies.find((reply) => reply.firstError)?.firstError;
    return {
      connected: sum(replies.map((r) => r.connected)),
      failed: sum(replies.map((r) => r.failed)),
      ...(firstError ? { firstError } : {}),
    };
  }

  /** Every process sends for `durationMs` from a common start; resolves with the frames sent. */
  async send(options: Omit<SendOrder, 'kind' | 'startAt'>): Promise<number> {
    const order: SendOrder = { kind: 'send', startAt: Date.now() + 100, ...options };
    const replies = await Promise.all(this.workers.map((worker) => this.ask(worker, order, 'sent')));
    return sum(replies.map((reply) => reply.sent));
  }

  /** Fan-out timing needs one clock, so it runs in the first process only (give it every client). */
  async fanout(messages: number, contentBytes: number, timeoutMs: number): Promise<{ completionsMs: number[]; incomplete: number }> {
    const { completionsMs, incomplete } = await this.ask(this.workers[0]!, { kind: 'fanout', messages, contentBytes, timeoutMs }, 'fanned');
    return { completionsMs, incomplete };
  }

  async tally(): Promise<PoolTally> {
    const replies = await Promise.all(this.workers.map((worker) => this.ask(worker, { kind: 'report' }, 'tally')));
    const latency = new LatencyHistogram();
    for (const reply of replies) latency.addSparse(reply.latency);
    return {
      sent: sum(replies.map((r) => r.sent)),
      received: sum(replies.map((r) => r.received)),
      receivedInWindow: sum(replies.map((r) => r.receivedInWindow)),
      windowMs: Math.max(...replies.map((r) => r.windowMs)),
      dropped: sum(replies.map((r) => r.dropped)),
      frames: sum(replies.map((r) => r.frames)),
      latency,
    };
  }

  /**
   * Polls until `expected` frames have arrived or nothing new arrived for
   * `quietMs`: a server that lost frames is reported, not waited for forever.
   */
  async drain(expected: number, quietMs: number): Promise<PoolTally> {
    let last = await this.tally();
    let lastChange = Date.now();
    while (last.received < expected && Date.now() - lastChange < quietMs) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const now = await this.tally();
      if (now.received !== last.received) lastChange = Date.now();
      last = now;
    }
    return last;
  }

  async closeClients(): Promise<void> {
    await Promise.all(this.workers.map((worker) => this.ask(worker, { kind: 'close' }, 'closed')));
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map((worker) => {
        if (worker.exitCode !== null || worker.signalCode !== null) return Promise.resolve();
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        worker.disconnect();
        return exited;
      }),
    );
  }

  private ask<K extends WorkerEvent['kind']>(worker: ChildProcess, order: Order, answer: K): Promise<Extract<WorkerEvent, { kind: K }>> {
    return new Promise((resolve, reject) => {
      const onMessage = (event: WorkerEvent) => {
        if (event.kind === 'fatal') {
          cleanup();
          reject(new Error(`load process failed: ${event.message}`));
        } else if (event.kind === answer) {
          cleanup();
          resolve(event as Extract<WorkerEvent, { kind: K }>);
        }
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`load process exited with code ${code}`));
      };
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.once('exit', onExit);
      worker.send(order);
    });
  }
}

function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, index) => Math.floor(total / parts) + (index < total % parts ? 1 : 0));
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
