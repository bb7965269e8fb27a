/**
 * Scenario 2: the broadcast room of scenario 1 spread over three processes
 * that share it through a real redis-server (Debian's, started here):
 * cloudsocket's CloudBase artifact with REDIS_URL, and Socket.IO 4 with
 * @socket.io/redis-adapter, clients dealt round-robin over the three; and
 * cloudsocket as one process, for the cost of crossing instances. Same load
 * processes, same case, CPU summed over the processes of a server.
 */
import type { BroadcastCase, BroadcastRun } from './broadcast.js';
import { runBroadcastCase } from './broadcast.js';
import type { LoadPool } from './load/pool.js';
import type { BenchPrograms } from './programs.js';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startRedisServer } from '../scripts/redis-server.js';

export interface ClusterReport {
  runs: BroadcastRun[];
  ratios: {
    /** Capacity of cloudsocket × 3 ÷ Socket.IO + redis-adapter × 3: above 1 is better. */
    capacityVsSocketio: number | null;
    /** p99 of cloudsocket × 3 ÷ cloudsocket × 1: below 1 is better. */
    p99VsSingle: number | null;
    /** Capacity of cloudsocket × 3 ÷ × 1: what crossing instances costs. */
    capacityVsSingle: number | null;
  };
}

const INSTANCES = 3;

/** With `profileDir`, each run's CPU profile of its first process (the one every third client is dealt to) is written there. */
export async function runCluster(
  programs: BenchPrograms,
  pool: LoadPool,
  spec: BroadcastCase,
  rounds: number,
  progress: (line: string) => void,
  profileDir?: string,
): Promise<ClusterReport> {
  const redis = await startRedisServer();
  const layouts = [
    { server: 'cloudsocket', instances: 1 },
    { server: 'cloudsocket', instances: INSTANCES },
    { server: 'socketio', instances: INSTANCES },
  ] as const;
  const all: BroadcastRun[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const { server, instances } of layouts) {
        progress(`cluster: ${server} × ${instances}${instances > 1 ? ' over Redis' : ''}, ${spec.clients} clients × ${spec.ratePerClient}/s (round ${round + 1}/${rounds}) ...`);
        const profileFile = profileDir ? join(profileDir, `cluster-${server}-${instances}-${round + 1}.cpuprofile`) : undefined;
        if (profileDir) await mkdir(profileDir, { recursive: true });
        all.push(await runBroadcastCase(programs, pool, spec, server, { instances, redisUrl: redis.url }, profileFile));
      }
    }
  } finally {
    await redis.stop();
  }
  const median = (server: string, instances: number) => {
    const runs = all.filter((run) => run.server === server && run.instances === instances).sort((a, b) => (a.capacityPerCpuSecond ?? 0) - (b.capacityPerCpuSecond ?? 0));
    return runs[Math.floor(runs.length / 2)];
  };
  const single = median('cloudsocket', 1);
  const ours = median('cloudsocket', INSTANCES);
  const theirs = median('socketio', INSTANCES);
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : null);
  return {
    runs: [single, ours, theirs].filter((run): run is BroadcastRun => run !== undefined),
    ratios: {
      capacityVsSocketio: ratio(ours?.capacityPerCpuSecond, theirs?.capacityPerCpuSecond),
      p99VsSingle: ratio(ours?.p99Ms, single?.p99Ms),
      capacityVsSingle: ratio(ours?.capacityPerCpuSecond, single?.capacityPerCpuSecond),
    },
  };
}
