/**
 * Scenario aws-churn: the AWS target under a crowd and under churn, through
 * the emulator (the built handlers, the @connections API, dynalite), with the
 * clients in a separate load process:
 *   1. 1,000 clients join one room, 50 handshakes in flight: connections/s to welcome;
 *   2. that room receives 10 broadcasts: every member must get each exactly once;
 *   3. 3,000 connections come and go in 30 s in one room beside 2 clients
 *      that chat throughout: what those two lost, and the newcomers' time to
 *      welcome (one a second); then the registry entries left 30 s later.
 * Also the emulator's RSS growth and the CPU time it spent in each phase (it
 * runs in this process: the gateway, dynalite's thread and every Lambda
 * environment's), and how each function's invocations waited and ran.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { fork, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { CLAIM_KEY_PREFIX, CONNECTION_KEY_PREFIX, PARTITION_KEY } from '../registries/dynamodb-registry.js';
import { buildAws } from '../scripts/build.js';
import { LOCAL_CREDENTIALS } from '../scripts/emulator/dynamo.js';
import { startEmulator, type RunningEmulator } from '../scripts/emulator/index.js';
import type { FunctionStats } from '../scripts/emulator/lambda-runtime.js';
import { silentLogger } from '../shared/log.js';
import type { ChurnAnswers, ChurnOrder } from './load/churn-worker.js';

export interface AwsChurnPlan {
  joiners: number;
  broadcasts: number;
  churners: number;
  churnSeconds: number;
  /** How long after the churn the registry must be empty. */
  settleSeconds: number;
}

export interface AwsChurnRun {
  join: ChurnAnswers['join'] & { perSecond: number };
  broadcast: ChurnAnswers['broadcast'];
  churn: Omit<ChurnAnswers['churn'], 'welcomesMs'> & { welcomeMaxMs: number | null; welcomeMedianMs: number | null; probes: number };
  /** Connection and clientId-claim items left in the table settleSeconds after the last client left (the rooms' logs not counted). */
  registryEntriesAfter: number;
  emulatorRssGrowthMiB: number;
  /** CPU seconds of the emulator's process (all its threads) while the crowd joined, and while the churn ran. */
  emulatorCpuSeconds: { join: number; churn: number };
  /** Per function, for the joins (crowd) and for the churn. */
  functionStats: { join: Record<string, FunctionStats>; churn: Record<string, FunctionStats> };
  /** Function errors the handlers logged (timeouts, failures), by event name. */
  functionErrors: Record<string, number>;
}

export async function runAwsChurn(workerScript: string, plan: AwsChurnPlan, progress: (line: string) => void): Promise<AwsChurnRun> {
  const out = await mkdtemp(join(tmpdir(), 'cloudsocket-bench-churn-'));
  const functionErrors: Record<string, number> = {};
  const countErrors = (_fn: string, line: string) => {
    const match = /"level":"error","event":"([^"]+)"/.exec(line) ?? /"event":"([^"]+)","level":"error"/.exec(line);
    if (match) functionErrors[match[1]!] = (functionErrors[match[1]!] ?? 0) + 1;
  };
  let emulator: RunningEmulator | undefined;
  let worker: ChildProcess | undefined;
  try {
    const { directory } = await buildAws(join(out, 'dist'));
    const logger = { ...silentLogger, error: (event: string) => void (functionErrors[event] = (functionErrors[event] ?? 0) + 1) };
    emulator = await startEmulator({ port: 0, distDir: directory, logger, onLog: countErrors });
    const rssBefore = process.memoryUsage().rss;
    worker = fork(workerScript, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    const ask = askOf(worker);

    progress(`aws-churn: ${plan.joiners} clients join one room ...`);
    emulator.functionStats(true);
    let cpuBefore = process.cpuUsage();
    const joined = await ask({ kind: 'join', url: emulator.url, room: 'crowd', count: plan.joiners, concurrency: 50 });
    const joinCpu = cpuSeconds(process.cpuUsage(cpuBefore));
    const joinStats = emulator.functionStats(true);
    progress(`aws-churn: ${plan.broadcasts} broadcasts to the room of ${joined.connected} ...`);
    const broadcast = await ask({ kind: 'broadcast', messages: plan.broadcasts, timeoutMs: 60_000 });
    const rssAfterCrowd = process.memoryUsage().rss;
    await ask({ kind: 'close' });
    await waitForEmptyRegistry(emulator, 60_000);

    progress(`aws-churn: ${plan.churners} connections come and go in ${plan.churnSeconds} s beside 2 live clients ...`);
    emulator.functionStats(true);
    cpuBefore = process.cpuUsage();
    const churn = await ask({ kind: 'churn', url: emulator.url, room: 'churn', connections: plan.churners, durationMs: plan.churnSeconds * 1000, chatsPerSecond: 2, settleMs: 2000 });
    const churnCpu = cpuSeconds(process.cpuUsage(cpuBefore));
    const churnStats = emulator.functionStats(true);
    progress(`aws-churn: waiting up to ${plan.settleSeconds} s for the registry to empty ...`);
    const registryEntriesAfter = await waitForEmptyRegistry(emulator, plan.settleSeconds * 1000);
    progress(`aws-churn: ${registryEntriesAfter} registry entries left; stopping the emulator ...`);

    const sorted = [...churn.welcomesMs].sort((a, b) => a - b);
    const { welcomesMs: _, ...churnRest } = churn;
    return {
      join: { ...joined, perSecond: round(joined.connected / joined.seconds) },
      broadcast,
      churn: {
        ...churnRest,
        probes: sorted.length + churn.probeFailures,
        welcomeMaxMs: sorted.length ? round(sorted[sorted.length - 1]!) : null,
        welcomeMedianMs: sorted.length ? round(sorted[Math.floor((sorted.length - 1) / 2)]!) : null,
      },
      registryEntriesAfter,
      emulatorRssGrowthMiB: round((rssAfterCrowd - rssBefore) / 2 ** 20),
      emulatorCpuSeconds: { join: joinCpu, churn: churnCpu },
      functionStats: { join: joinStats, churn: churnStats },
      functionErrors,
    };
  } finally {
    if (worker?.connected) worker.disconnect();
    await emulator?.stop();
    await rm(out, { recursive: true, force: true });
  }
}

function askOf(worker: ChildProcess) {
  return <K extends ChurnOrder['kind']>(order: Extract<ChurnOrder, { kind: K }>): Promise<ChurnAnswers[K]> =>
    new Promise((resolve, reject) => {
      const onMessage = (message: { kind: string; answer?: unknown; message?: string }) => {
        if (message.kind === 'fatal') done(() => reject(new Error(`aws-churn load process: ${message.message}`)));
        else if (message.kind === order.kind) done(() => resolve(message.answer as ChurnAnswers[K]));
      };
      const onExit = (code: number | null) => done(() => reject(new Error(`aws-churn load process exited with code ${code}`)));
      const done = (settle: () => void) => {
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        settle();
      };
      worker.on('message', onMessage);
      worker.once('exit', onExit);
      worker.send(order);
    });
}

/**
 * Polls the table (a Scan: the bench inspecting, not a request path) until
 * it holds no connection and no clientId claim, or `maxMs` passed; the ones
 * left. The rooms' logs share the table and are kept by design (for
 * ROOM_LOG_MAX_AGE), so they are not counted.
 */
async function waitForEmptyRegistry(emulator: RunningEmulator, maxMs: number): Promise<number> {
  const dynamo = new DynamoDBClient({ endpoint: emulator.dynamoEndpoint, region: emulator.stack.region, credentials: LOCAL_CREDENTIALS });
  const deadline = Date.now() + maxMs;
  const countRegistryItems = async () => {
    let count = 0;
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await dynamo.send(
        new ScanCommand({
          TableName: emulator.stack.table!.name,
          Select: 'COUNT',
          FilterExpression: 'begins_with(#pk, :connection) OR begins_with(#pk, :claim)',
          ExpressionAttributeNames: { '#pk': PARTITION_KEY },
          ExpressionAttributeValues: { ':connection': { S: CONNECTION_KEY_PREFIX }, ':claim': { S: CLAIM_KEY_PREFIX } },
          ExclusiveStartKey: startKey,
        }),
      );
      count += page.Count ?? 0;
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return count;
  };
  try {
    for (;;) {
      const count = await countRegistryItems();
      if (count === 0 || Date.now() > deadline) return count;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } finally {
    dynamo.destroy();
  }
}

function cpuSeconds({ user, system }: NodeJS.CpuUsage): number {
  return round((user + system) / 1e6);
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
