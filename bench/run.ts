/**
 * Runs the scenarios of a plan one after another, each server alone on the
 * machine while it is measured, and gathers the figures and their ratios.
 */
import { runHostile, type HostileRun } from './hostile.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { buildVariants, measureColdStarts, type ColdStartRun } from './aws-cold-start.js';
import { runAwsMessageCost, runAwsRooms, type AwsMessageCost, type AwsRoomRun } from './aws.js';
import { runAwsResume, type AwsResumeRun } from './aws-resume.js';
import { runAwsChurn, type AwsChurnRun } from './aws-churn.js';
import { runAwsLog, type AwsLogRun } from './aws-log.js';
import { BROADCAST_SERVERS, runBroadcastCase, type BroadcastRun } from './broadcast.js';
import { runCluster, type ClusterReport } from './cluster.js';
import { IDLE_SERVERS, runIdleCase, type IdleRun } from './idle.js';
import { LoadPool } from './load/pool.js';
import { machineInfo, type MachineInfo } from './machine.js';
import type { BenchPlan, ScenarioName } from './plan.js';
import { buildPrograms } from './programs.js';
import { broadcastRatios, broadcastTargets, idleRatios, idleTargets, ratio, type BroadcastRatios, type IdleRatios, type TargetCheck } from './ratios.js';

export type { BroadcastRatios, IdleRatios, TargetCheck };

export interface BenchReport {
  generatedAt: string;
  mode: BenchPlan['mode'];
  machine: MachineInfo;
  loadAverageAtEnd: number;
  durationSeconds: number;
  notes: string[];
  /** `runs`: per case and server, the round with the median capacity; `rounds`: every round. */
  broadcast?: { runs: BroadcastRun[]; rounds: BroadcastRun[]; ratios: BroadcastRatios[] };
  /** One room over three processes sharing it through Redis, against one process. */
  cluster?: ClusterReport;
  /** `runs`: per server, the round with the median RSS; `rounds`: every round. */
  idle?: { runs: IdleRun[]; rounds: IdleRun[]; ratios: IdleRatios };
  aws?: { rooms: AwsRoomRun[]; coldStart: ColdStartRun[]; resume: AwsResumeRun; cost?: AwsMessageCost };
  /** The room log's DynamoDB cost per append and per replay, by layout. */
  awsLog?: AwsLogRun[];
  hostile?: HostileRun[];
  awsChurn?: AwsChurnRun;
  /** Scenarios that could not run, and why. */
  failures: Partial<Record<ScenarioName, string>>;
  targets: TargetCheck[];
}

export interface RunOptions {
  plan: BenchPlan;
  scenarios: readonly ScenarioName[];
  /** Writes each broadcast run's server CPU profile (.cpuprofile) here. */
  profileDir?: string;
  progress: (line: string) => void;
}

export async function runBench(options: RunOptions): Promise<BenchReport> {
  const { plan, progress } = options;
  const startedAt = Date.now();
  const report: BenchReport = {
    generatedAt: new Date().toISOString(),
    mode: plan.mode,
    machine: machineInfo(),
    loadAverageAtEnd: 0,
    durationSeconds: 0,
    notes: [...plan.notes],
    failures: {},
    targets: [],
  };
  progress(`building the CloudBase artifact and the bench programs ...`);
  const programs = await buildPrograms();
  const pool = await LoadPool.start(programs.loadWorker, 2);
  try {
    if (options.scenarios.includes('broadcast')) {
      await attempt(report, 'broadcast', async () => {
        const runs: BroadcastRun[] = [];
        const rounds: BroadcastRun[] = [];
        for (const spec of plan.broadcast) {
          const caseRuns: BroadcastRun[] = [];
          for (let round = 0; round < plan.broadcastRounds; round++) {
            for (const server of rotate(BROADCAST_SERVERS, round)) {
              progress(`broadcast: ${server}, ${spec.clients} clients × ${spec.ratePerClient}/s for ${spec.durationMs / 1000} s (round ${round + 1}/${plan.broadcastRounds}) ...`);
              const profileFile = options.profileDir ? join(options.profileDir, `broadcast-${spec.clients}-${server}-${round + 1}.cpuprofile`) : undefined;
              if (options.profileDir) await mkdir(options.profileDir, { recursive: true });
              caseRuns.push({ ...(await runBroadcastCase(programs, pool, spec, server, {}, profileFile)), round: round + 1 });
            }
          }
          rounds.push(...caseRuns);
          for (const server of BROADCAST_SERVERS) runs.push(medianRun(caseRuns.filter((run) => run.server === server)));
        }
        report.broadcast = { runs, rounds, ratios: plan.broadcast.map((spec) => broadcastRatios(runs, rounds, spec.clients)) };
      });
    }
    if (options.scenarios.includes('cluster')) {
      await attempt(report, 'cluster', async () => {
        report.cluster = await runCluster(programs, pool, plan.broadcast[0]!, plan.broadcastRounds, progress, options.profileDir);
      });
    }
    if (options.scenarios.includes('idle')) {
      await attempt(report, 'idle', async () => {
        const connections = idleConnectionsWithinLimits(plan.idleConnections, report);
        const rounds: IdleRun[] = [];
        for (let round = 0; round < plan.idleRounds; round++) {
          for (const server of rotate(IDLE_SERVERS, round)) {
            progress(`idle: ${connections} connections to ${server} (round ${round + 1}/${plan.idleRounds}) ...`);
            const holdMs = round === 0 && server === 'cloudsocket' ? plan.idleHoldMs : 0;
            if (holdMs > 0) progress(`idle: holding them ${holdMs / 1000} s ...`);
            rounds.push(await runIdleCase(programs, pool, connections, server, holdMs));
          }
        }
        const runs = IDLE_SERVERS.map((server) => median(rounds.filter((run) => run.server === server), (run) => run.rssBytesPerConnection));
        report.idle = { runs, rounds, ratios: idleRatios(runs, rounds) };
      });
    }
    if (options.scenarios.includes('aws')) {
      await attempt(report, 'aws', async () => {
        progress('aws: building the handlers (shipped, unminified, SDK external) ...');
        const variants = await buildVariants();
        try {
          progress('aws: cold-start imports ...');
          const coldStart = await measureColdStarts(variants, plan.aws.coldStartSamples);
          progress(`aws: rooms of ${plan.aws.roomSizes.join(', ')} through the emulator (${plan.aws.messagesPerRoom} messages, ${plan.aws.warmupMessages} more to warm the functions, ${plan.aws.messagesPerRoom} measured warm) ...`);
          const awsPool = await LoadPool.start(programs.loadWorker, 1);
          try {
            const rooms = await runAwsRooms(awsPool, { roomSizes: plan.aws.roomSizes, messagesPerRoom: plan.aws.messagesPerRoom, warmupMessages: plan.aws.warmupMessages, distDir: variants.shippedDirectory });
            progress(`aws: resumes after 2 and ${plan.aws.resumeMessages} chats, then ${plan.aws.resumeMessages} chats, through the emulator ...`);
            const resume = await runAwsResume({ distDir: variants.shippedDirectory, messages: plan.aws.resumeMessages });
            progress('aws: a room of 100 once more, through an emulator that meters what AWS would bill ...');
            const cost = await runAwsMessageCost(awsPool, { roomSize: 100, messages: plan.aws.messagesPerRoom, distDir: variants.shippedDirectory });
            report.aws = { rooms, coldStart, resume, cost };
          } finally {
            await awsPool.stop();
          }
        } finally {
          await variants.remove();
        }
      });
    }
    if (options.scenarios.includes('aws-log')) {
      await attempt(report, 'aws-log', async () => {
        progress(`aws-log: ${plan.awsLog.appends} appends to one room's log per layout, against dynalite ...`);
        report.awsLog = await runAwsLog(plan.awsLog);
      });
    }
    if (options.scenarios.includes('hostile')) {
      await attempt(report, 'hostile', async () => {
        report.hostile = await runHostile(plan.hostile, progress);
      });
    }
    if (options.scenarios.includes('aws-churn')) {
      await attempt(report, 'aws-churn', async () => {
        report.awsChurn = await runAwsChurn(programs.churnWorker, plan.awsChurn, progress);
      });
    }
  } finally {
    await pool.stop();
    await programs.remove();
  }
  report.targets = checkTargets(report);
  report.loadAverageAtEnd = Math.round(loadavg()[0]! * 100) / 100;
  report.durationSeconds = Math.round((Date.now() - startedAt) / 100) / 10;
  return report;
}

export async function writeReport(report: BenchReport, file: string): Promise<void> {
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, JSON.stringify(report, null, 2) + '\n');
}

async function attempt(report: BenchReport, scenario: ScenarioName, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    report.failures[scenario] = error instanceof Error ? error.message : String(error);
  }
}

/** Each connection is a file descriptor in the server and in a load process; leave room for the rest. */
function idleConnectionsWithinLimits(wanted: number, report: BenchReport): number {
  const limit = report.machine.openFileLimit;
  const headroom = 256;
  if (limit === null || wanted + headroom <= limit) return wanted;
  const connections = Math.max(100, limit - headroom);
  report.notes.push(`idle: the open-file limit (ulimit -n = ${limit}) allows ${connections} connections, not ${wanted}; raise it with \`ulimit -n ${wanted + headroom}\` before the run`);
  return connections;
}

/** Round r starts at server r, so no server is always measured first (or right after the same one). */
function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/** A whole measured run, not a mix of figures from different rounds. */
function medianRun(runs: BroadcastRun[]): BroadcastRun {
  return median(runs, (run) => run.capacityPerCpuSecond ?? 0);
}

function median<T>(runs: readonly T[], by: (run: T) => number): T {
  const sorted = [...runs].sort((a, b) => by(a) - by(b));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function checkTargets(report: BenchReport): TargetCheck[] {
  const checks: TargetCheck[] = [];
  if (report.broadcast) checks.push(...broadcastTargets(report.broadcast.ratios));
  if (report.cluster) {
    const { capacityVsSocketio, p99VsSingle } = report.cluster.ratios;
    checks.push({ target: '3 instances over Redis: capacity ≥ 1.5× Socket.IO + redis-adapter', measured: `${capacityVsSocketio ?? 'n/a'}×`, met: capacityVsSocketio !== null && capacityVsSocketio >= 1.5 });
    checks.push({ target: '3 instances over Redis: p99 ≤ 2× one instance', measured: `${p99VsSingle ?? 'n/a'}×`, met: p99VsSingle !== null && p99VsSingle <= 2 });
  }
  if (report.idle) checks.push(...idleTargets(report.idle.ratios));
  for (const run of report.hostile ?? []) {
    const sent = run.categories.reduce((total, c) => total + c.sent, 0);
    const right = run.categories.reduce((total, c) => total + c.rightAnswers, 0);
    checks.push({
      target: `${run.target}: ${sent.toLocaleString('en-US')} malformed inputs answered as they should, server up, sockets and registry back, 0 lost for bystanders`,
      measured: `${right}/${sent} right answers, ${run.alive ? 'up' : 'DOWN'}, sockets ${run.socketsBefore}→${run.socketsAfter} (all fds ${run.fdsBefore}→${run.fdsAfter}), room ${run.roomBefore}→${run.roomAfter}, bystanders ${run.bystanderReceived}/${run.bystanderSent}`,
      // A few sockets may come and go with keep-alive connections to the emulator's own DynamoDB. Other descriptors
      // grow with the Lambda environments the emulator keeps warm (each thread its own event loop), as Lambda keeps them.
      met: right === sent && run.alive && run.socketsAfter <= run.socketsBefore + 10 && run.roomAfter === run.roomBefore && run.bystanderReceived === run.bystanderSent,
    });
  }
  if (report.aws) {
    const scans = report.aws.rooms.reduce((total, room) => total + room.scans, 0);
    const most = Math.max(...report.aws.rooms.map((room) => room.dynamoRequestsPerMessage));
    const largest = Math.max(...report.aws.rooms.map((room) => room.roomSize));
    checks.push({ target: 'AWS: no Scan per chat message', measured: `${scans} Scans`, met: scans === 0 });
    const { resume } = report.aws;
    const overall = Math.max(most, resume.perMessage.dynamoRequests);
    checks.push({
      target: 'AWS: ≤ 3 DynamoDB requests per chat message, the room log included',
      measured: `${most} at most in rooms up to ${largest} (${report.aws.rooms[0]?.messages ?? 0} messages each); ${resume.perMessage.dynamoRequests} over ${resume.messages} messages, ${resume.slotsStarted} of them starting the log's next slot (a PutItem in place of the UpdateItem)`,
      met: overall <= 3,
    });
    for (const [roomSize, limitMs] of FANOUT_TARGETS) {
      const room = report.aws.rooms.find((run) => run.roomSize === roomSize);
      checks.push({
        target: `AWS emulator: fan-out to ${roomSize} members ≤ ${limitMs} ms (median, warm functions)`,
        measured: room
          ? `${room.fanoutMedianMs ?? 'n/a'} ms (max ${room.fanoutMaxMs ?? 'n/a'} ms; the room's first messages ${room.firstFanoutMedianMs ?? 'n/a'} ms, max ${room.firstFanoutMaxMs ?? 'n/a'} ms), ${room.cpuMicrosPerManagementCall ?? 'n/a'} µs of emulator CPU per @connections call`
          : `not measured (rooms of ${report.aws.rooms.map((run) => run.roomSize).join(', ')})`,
        met: room !== undefined && room.incompleteMessages === 0 && room.fanoutMedianMs !== null && room.fanoutMedianMs <= limitMs,
      });
    }
  }
  if (report.aws) {
    const shipped = report.aws.coldStart.find((run) => run.variant === 'shipped');
    const nodeMapped = report.aws.coldStart.find((run) => run.variant === 'shipped-node-source-maps');
    checks.push({
      target: 'AWS: message-handler cold import ≤ 50 ms',
      measured: shipped ? `median ${shipped.importMedianMs} ms${nodeMapped ? ` (${nodeMapped.importMedianMs} ms with NODE_OPTIONS=--enable-source-maps)` : ''}` : 'not measured',
      met: shipped !== undefined && shipped.importMedianMs <= 50,
    });
  }
  if (report.awsChurn) checks.push(...churnTargets(report.awsChurn, report.mode === 'full'));
  return checks;
}

/** Room size → the longest median fan-out the emulator may take to it. */
const FANOUT_TARGETS: ReadonlyArray<readonly [number, number]> = [
  [100, 40],
  [1000, 200],
];

/** The targets hold for the full plan's sizes; a quick run says what it measured but meets nothing. */
function churnTargets(run: AwsChurnRun, full: boolean): TargetCheck[] {
  const { join, broadcast, churn } = run;
  const sized = (met: boolean) => full && met;
  return [
    { target: 'AWS emulator: 1,000 clients join one room at ≥ 200 connections/s', measured: `${join.connected} in ${join.seconds.toFixed(1)} s = ${join.perSecond}/s (${join.failed} failed)`, met: sized(join.connected === 1000 && join.perSecond >= 200) },
    { target: 'AWS emulator: a room of 1,000 gets 10 broadcasts, every member all 10 exactly once', measured: `${broadcast.exactlyOnce}/${broadcast.members * broadcast.messages} exactly once, ${broadcast.missing} missing, ${broadcast.duplicated} duplicated`, met: sized(broadcast.members === 1000 && broadcast.messages === 10 && broadcast.exactlyOnce === 10_000) },
    // A churner whose handshake did not finish within 10 s never churned: the churn the two lived through was smaller.
    { target: 'AWS emulator: 3,000 churning connections in 30 s cost 2 live clients 0 messages', measured: `${churn.liveReceived}/${churn.liveExpected} delivered, ${churn.liveDuplicated} duplicated; ${churn.churned} churned, ${churn.churnFailed} stuck`, met: sized(churn.liveReceived === churn.liveExpected && churn.liveDuplicated === 0 && churn.churned === 3000) },
    { target: 'AWS emulator: 0 registry entries 30 s after the churners left', measured: `${run.registryEntriesAfter} entries`, met: sized(run.registryEntriesAfter === 0) },
    { target: 'AWS emulator: a newcomer is welcomed within 2 s throughout the churn', measured: `max ${churn.welcomeMaxMs ?? 'n/a'} ms, median ${churn.welcomeMedianMs ?? 'n/a'} ms over ${churn.probes} newcomers, ${churn.probeFailures} never welcomed`, met: sized(churn.probeFailures === 0 && churn.welcomeMaxMs !== null && churn.welcomeMaxMs <= 2000) },
  ];
}
