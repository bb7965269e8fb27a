/**
 * cloudsocket's broadcast and idle figures as ratios to each baseline, in
 * one run, and the targets they are held to.
 */
import type { BroadcastRun } from './broadcast.js';
import type { IdleRun } from './idle.js';
import type { ServerName } from './servers/launch.js';

/** The servers cloudsocket is compared with, from the floor of a Node broadcast up. */
export const BROADCAST_BASELINES = ['floor', 'ws-frame-once', 'raw-ws', 'socketio'] as const satisfies readonly ServerName[];
export type Baseline = (typeof BROADCAST_BASELINES)[number];

export const BASELINE_LABELS: Record<Baseline, string> = {
  floor: 'floor (one socket.write per recipient)',
  'ws-frame-once': 'ws, framed once',
  'raw-ws': 'raw ws (idiomatic)',
  socketio: 'Socket.IO',
};

export interface BaselineRatios {
  vs: Baseline;
  /** Capacity (deliveries per server CPU-second), ours ÷ theirs, median runs: above 1 is better. */
  capacity: number | null;
  /** Latency, ours ÷ theirs, median runs: below 1 is better. */
  p50: number | null;
  p99: number | null;
  /** Lowest and highest over the rounds, each round's ours ÷ the same round's theirs: how far one run can be from another. */
  capacityRange: [number, number] | null;
  p99Range: [number, number] | null;
}

export interface BroadcastRatios {
  clients: number;
  baselines: BaselineRatios[];
}

export interface IdleRatios {
  connections: number;
  rssVsRawWs: number | null;
  heapVsRawWs: number | null;
  /** cloudsocket's connections held open once after a reading, and how many of them closed meanwhile. */
  held?: { connections: number; ms: number; unexpectedCloses: number };
}

export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean;
}

export function ratio(ours: number | null | undefined, theirs: number | null | undefined): number | null {
  if (ours == null || theirs == null || theirs === 0) return null;
  return Math.round((ours / theirs) * 100) / 100;
}

/** `runs`: the median run per server; `rounds`: every run, each with its round. */
export function broadcastRatios(runs: readonly BroadcastRun[], rounds: readonly BroadcastRun[], clients: number): BroadcastRatios {
  const of = (list: readonly BroadcastRun[], server: ServerName) => list.filter((run) => run.server === server && run.clients === clients);
  const [ours] = of(runs, 'cloudsocket');
  const roundsOf = (server: ServerName) => new Map(of(rounds, server).map((run) => [run.round, run]));
  const oursByRound = roundsOf('cloudsocket');
  return {
    clients,
    baselines: BROADCAST_BASELINES.map((vs) => {
      const [theirs] = of(runs, vs);
      const theirsByRound = roundsOf(vs);
      const perRound = (key: 'capacityPerCpuSecond' | 'p99Ms') =>
        range([...oursByRound].map(([round, run]) => ratio(run[key], theirsByRound.get(round)?.[key])));
      return {
        vs,
        capacity: ratio(ours?.capacityPerCpuSecond, theirs?.capacityPerCpuSecond),
        p50: ratio(ours?.p50Ms, theirs?.p50Ms),
        p99: ratio(ours?.p99Ms, theirs?.p99Ms),
        capacityRange: perRound('capacityPerCpuSecond'),
        p99Range: perRound('p99Ms'),
      };
    }),
  };
}

function range(values: Array<number | null>): [number, number] | null {
  const known = values.filter((value): value is number => value !== null);
  return known.length < 2 ? null : [Math.min(...known), Math.max(...known)];
}

export function idleRatios(runs: readonly IdleRun[], rounds: readonly IdleRun[] = runs): IdleRatios {
  const ours = runs.find((run) => run.server === 'cloudsocket');
  const raw = runs.find((run) => run.server === 'raw-ws');
  const held = rounds.find((run) => run.server === 'cloudsocket' && run.hold);
  return {
    connections: Math.min(ours?.connections ?? 0, raw?.connections ?? 0),
    rssVsRawWs: ratio(ours?.rssBytesPerConnection, raw?.rssBytesPerConnection),
    heapVsRawWs: ratio(ours?.heapBytesPerConnection, raw?.heapBytesPerConnection),
    ...(held?.hold ? { held: { connections: held.connections, ...held.hold } } : {}),
  };
}

const IDLE_TARGET_CONNECTIONS = 10_000;

export function broadcastTargets(ratios: readonly BroadcastRatios[]): TargetCheck[] {
  const clients = ratios.map((r) => r.clients).join(' and ');
  const values = (vs: Baseline, key: 'capacity' | 'p99') => ratios.map((r) => r.baselines.find((b) => b.vs === vs)?.[key] ?? null);
  const check = (vs: Baseline, key: 'capacity' | 'p99', bound: number): TargetCheck => {
    const found = values(vs, key);
    const known = found.every((value) => value !== null) && found.length > 0;
    // Capacity must be at least the bound in every case, latency at most.
    const worst = known ? (key === 'capacity' ? Math.min(...(found as number[])) : Math.max(...(found as number[]))) : null;
    const what = key === 'capacity' ? `broadcast capacity ≥ ${bound}×` : `broadcast p99 ≤ ${bound.toFixed(1)}×`;
    return {
      target: `${what} ${BASELINE_LABELS[vs]}, ${clients} clients`,
      measured: `${found.map((value) => (value === null ? 'n/a' : `${value}×`)).join(', ')} (worst ${worst ?? 'n/a'}×)`,
      met: worst !== null && (key === 'capacity' ? worst >= bound : worst <= bound),
    };
  };
  return [check('floor', 'capacity', 0.9), check('raw-ws', 'capacity', 1.25), check('socketio', 'capacity', 1.7), check('raw-ws', 'p99', 1.0)];
}

const HELD_TARGET_MS = 60_000;

function heldTarget(held: IdleRatios['held']): TargetCheck {
  const target = `CloudBase: ${IDLE_TARGET_CONNECTIONS.toLocaleString('en-US')} idle connections held ${HELD_TARGET_MS / 1000} s, 0 unexpected closes`;
  if (!held) return { target, measured: 'not held', met: false };
  const enough = held.connections >= IDLE_TARGET_CONNECTIONS && held.ms >= HELD_TARGET_MS;
  return {
    target,
    measured: `${held.unexpectedCloses} closed of ${held.connections.toLocaleString('en-US')} held ${held.ms / 1000} s${enough ? '' : ', too few or too short to judge'}`,
    met: enough && held.unexpectedCloses === 0,
  };
}

export function idleTargets(ratios: IdleRatios): TargetCheck[] {
  const { rssVsRawWs, heapVsRawWs, connections } = ratios;
  const enough = connections >= IDLE_TARGET_CONNECTIONS;
  return [
    {
      target: `idle RSS per connection ≤ 1.0× raw ws at ${IDLE_TARGET_CONNECTIONS.toLocaleString('en-US')} connections`,
      measured: `${rssVsRawWs ?? 'n/a'}× (V8 heap ${heapVsRawWs ?? 'n/a'}×) at ${connections.toLocaleString('en-US')} connections${enough ? '' : ', too few to judge'}`,
      met: enough && rssVsRawWs !== null && rssVsRawWs <= 1.0,
    },
    heldTarget(ratios.held),
  ];
}
