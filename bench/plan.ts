/** How much each scenario does in a full run and in a quick one. */
import type { AwsChurnPlan } from './aws-churn.js';
import type { AwsLogPlan } from './aws-log.js';
import type { BroadcastCase } from './broadcast.js';
import type { HostilePlan } from './hostile.js';

export type ScenarioName = 'broadcast' | 'cluster' | 'idle' | 'aws' | 'aws-log' | 'aws-churn' | 'hostile';
export const SCENARIOS: readonly ScenarioName[] = ['broadcast', 'cluster', 'idle', 'aws', 'aws-log', 'aws-churn', 'hostile'];

export interface BenchPlan {
  mode: 'full' | 'quick';
  broadcast: BroadcastCase[];
  /** Each broadcast case runs this many times per server, in rotating order; the median run counts. */
  broadcastRounds: number;
  idleConnections: number;
  /** Each server's idle memory is read this many times, in rotating order; the median RSS counts (one reading moves by ±4%). */
  idleRounds: number;
  /** How long cloudsocket holds its idle connections once, counting the ones it closes meanwhile (heartbeats go on). */
  idleHoldMs: number;
  /** resumeMessages: chats a resuming client misses in the long resume, and chats counted after it. */
  aws: { roomSizes: number[]; messagesPerRoom: number; warmupMessages: number; coldStartSamples: number; resumeMessages: number };
  /** Appends to one room's log per layout; more than ROOM_LOG_SIZE, so the ring has gone round before the full replay. */
  awsLog: AwsLogPlan;
  /** Malformed inputs per target and kind; 10,000 a target in a full run. */
  hostile: { cloudbase: HostilePlan; aws: HostilePlan };
  awsChurn: AwsChurnPlan;
  /** Said in the output, so a quick run's figures are never mistaken for a full run's. */
  notes: string[];
}

/**
 * Offered rates are 50,000 deliveries/s in every case: a load every server
 * sustains on a 2-core machine, and each client stays under cloudsocket's
 * default rate limit (10 frames/s), so no setting is changed for the run.
 */
export const FULL_PLAN: BenchPlan = {
  mode: 'full',
  broadcast: [
    { clients: 100, ratePerClient: 5, durationMs: 10_000, warmupMs: 2_000, contentBytes: 64 },
    { clients: 1000, ratePerClient: 0.05, durationMs: 10_000, warmupMs: 2_000, contentBytes: 64 },
  ],
  broadcastRounds: 3,
  idleConnections: 10_000,
  idleRounds: 3,
  idleHoldMs: 60_000,
  aws: { roomSizes: [10, 100, 1000], messagesPerRoom: 9, warmupMessages: 25, coldStartSamples: 15, resumeMessages: 200 },
  awsLog: { appends: 3000, chunkSizesKiB: [8, 16, 32] },
  // Every framing error costs the AWS target a $connect, so it gets more of the inputs that need no handshake.
  hostile: {
    cloudbase: { garbage: 2500, targets: 2500, framing: 2500, json: 2500 },
    aws: { garbage: 3000, targets: 3000, framing: 1000, json: 3000 },
  },
  awsChurn: { joiners: 1000, broadcasts: 10, churners: 3000, churnSeconds: 30, settleSeconds: 30 },
  notes: [],
};

export const QUICK_PLAN: BenchPlan = {
  mode: 'quick',
  broadcast: [
    { clients: 100, ratePerClient: 5, durationMs: 2_500, warmupMs: 500, contentBytes: 64 },
    { clients: 300, ratePerClient: 0.5, durationMs: 2_500, warmupMs: 500, contentBytes: 64 },
  ],
  broadcastRounds: 1,
  idleConnections: 5_000,
  idleRounds: 1,
  idleHoldMs: 10_000,
  aws: { roomSizes: [10, 100], messagesPerRoom: 3, warmupMessages: 10, coldStartSamples: 3, resumeMessages: 60 },
  awsLog: { appends: 1200, chunkSizesKiB: [8, 16] },
  hostile: {
    cloudbase: { garbage: 250, targets: 250, framing: 250, json: 250 },
    aws: { garbage: 300, targets: 300, framing: 100, json: 300 },
  },
  awsChurn: { joiners: 200, broadcasts: 3, churners: 300, churnSeconds: 10, settleSeconds: 30 },
  notes: [
    'quick mode: broadcast rooms of 100 and 300 (not 1000) for 2.5 s each, one round (not the median of three), 5,000 idle connections (not 10,000) held 10 s (not 60 s), AWS rooms of 10 and 100 (not 1000) and resumes across 60 chats (not 200), the room log with 1,200 appends in slots of 8 and 16 KiB (not 3,000 in slots of 8 to 32 KiB), aws-churn with 200 joiners and 300 churners in 10 s (not 1,000 and 3,000 in 30 s); run `npm run bench` for the full figures',
    'quick mode is noisy: with one short round, a ratio is one sample, and p99 ratios have moved from 1.25× to 1.80× between quick runs of the same code; the full run gives the median of three rounds and the range between them',
  ],
};
