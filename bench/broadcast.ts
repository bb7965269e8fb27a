/**
 * Scenario 1: N clients in one room, each sending chat frames at a fixed
 * rate; every frame goes to the whole room, sender included. Measures, for
 * cloudsocket and the two baselines, one server at a time with the same load
 * processes: deliveries per second, end-to-end latency (send time stamped in
 * the content, read back in the load process) and the server's CPU time per
 * delivery.
 *
 * Why CPU per delivery: on a small machine the load processes share the
 * cores with the server, so driving a server to saturation measures the
 * load generator as much as the server. At a rate every server sustains,
 * the CPU each one spends is its own cost, and deliveries per CPU-second is
 * its capacity on one core.
 */
import { writeFile } from 'node:fs/promises';
import type { LoadPool } from './load/pool.js';
import type { BenchPrograms } from './programs.js';
import { launchServers, type LaunchOptions, type ServerName, type ServerUnderTest } from './servers/launch.js';

export interface BroadcastCase {
  clients: number;
  ratePerClient: number;
  durationMs: number;
  warmupMs: number;
  contentBytes: number;
}

export interface BroadcastRun {
  server: ServerName;
  /** Which round of its case this run was (1-based); rounds are compared with each other, not across. */
  round?: number;
  /** Processes of the server, sharing the room over Redis when more than one. */
  instances: number;
  clients: number;
  ratePerClient: number;
  /** Deliveries per second asked for: clients × rate × room size. */
  offeredPerSecond: number;
  deliveredPerSecond: number;
  /** Server CPU time (user + system) per delivery. */
  cpuMicrosPerDelivery: number | null;
  /** Deliveries one fully busy core would sustain at that cost. */
  capacityPerCpuSecond: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  sent: number;
  /** sent × room size: what a server that keeps up delivers in the end. */
  expected: number;
  received: number;
  droppedConnections: number;
  connectFailures: number;
}

export const BROADCAST_SERVERS: readonly ServerName[] = ['floor', 'raw-ws', 'cloudsocket', 'ws-frame-once', 'socketio'];

export async function runBroadcastCase(
  programs: BenchPrograms,
  pool: LoadPool,
  spec: BroadcastCase,
  server: ServerName,
  launch: LaunchOptions = {},
  /** When set, the server's CPU profile of the measured part is written here. */
  profileFile?: string,
): Promise<BroadcastRun> {
  const target = await launchServers(server, programs, launch);
  try {
    const connection = await pool.connect({ urls: target.urls, dialect: target.dialect, count: spec.clients, roomSize: 0 });
    if (connection.connected === 0) throw new Error(`${server}: no client could connect (${connection.firstError ?? 'no error'})`);
    await settle(target, pool);
    if (profileFile) await target.startProfile();
    const cpuBefore = await target.cpuMicros();
    const sent = await pool.send({
      ratePerClient: spec.ratePerClient,
      durationMs: spec.durationMs,
      warmupMs: spec.warmupMs,
      contentBytes: spec.contentBytes,
    });
    const expected = sent * connection.connected;
    const tally = await pool.drain(expected, 2000);
    const cpuMicros = (await target.cpuMicros()) - cpuBefore;
    if (profileFile) await writeFile(profileFile, await target.stopProfile());
    const cpuMicrosPerDelivery = tally.received > 0 ? cpuMicros / tally.received : null;
    await pool.closeClients();
    return {
      server,
      instances: target.urls.length,
      clients: connection.connected,
      ratePerClient: spec.ratePerClient,
      offeredPerSecond: spec.clients * spec.ratePerClient * spec.clients,
      deliveredPerSecond: tally.windowMs > 0 ? Math.round(tally.receivedInWindow / (tally.windowMs / 1000)) : 0,
      cpuMicrosPerDelivery,
      capacityPerCpuSecond: cpuMicrosPerDelivery ? Math.round(1e6 / cpuMicrosPerDelivery) : null,
      p50Ms: tally.latency.quantile(0.5) ?? null,
      p99Ms: tally.latency.quantile(0.99) ?? null,
      sent,
      expected,
      received: tally.received,
      droppedConnections: tally.dropped,
      connectFailures: connection.failed,
    };
  } finally {
    await target.stop();
  }
}

/**
 * Joining N clients to one room sends N²/2 `user_joined` frames; waits until
 * the server has sent them all (its CPU use drops) and the load processes
 * have read them all (their frame count stops moving), so they do not count
 * against the measured messages.
 */
async function settle(target: ServerUnderTest, pool: LoadPool, maxMs = 20_000): Promise<void> {
  const sliceMs = 250;
  const deadline = Date.now() + maxMs;
  let cpu = await target.cpuMicros();
  let frames = (await pool.tally()).frames;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, sliceMs));
    const [cpuNow, tally] = await Promise.all([target.cpuMicros(), pool.tally()]);
    if (cpuNow - cpu < sliceMs * 1000 * 0.1 && tally.frames === frames) return;
    cpu = cpuNow;
    frames = tally.frames;
  }
}
