/**
 * Scenario 2: many idle connections (rooms of ten, nothing sent after the
 * handshake), and what each costs the server in memory: the growth of its
 * RSS and V8 heap, both read after a full GC, divided by the connections.
 * Once, the connections are then held open a while, the server pinging them
 * as it does any: any of them closed meanwhile is a connection a real
 * client would have lost.
 */
import type { LoadPool } from './load/pool.js';
import type { BenchPrograms } from './programs.js';
import { launchServer, type MemoryUsage, type ServerName, type ServerUnderTest } from './servers/launch.js';

export interface IdleRun {
  server: ServerName;
  connections: number;
  connectFailures: number;
  firstError?: string;
  rssBytesPerConnection: number;
  heapBytesPerConnection: number;
  /** Buffers outside the V8 heap (socket buffers held by `ws`, ...). */
  externalBytesPerConnection: number;
  before: MemoryUsage;
  after: MemoryUsage;
  /** When the connections were held open after the readings. */
  hold?: IdleHold;
}

export interface IdleHold {
  ms: number;
  /** Connections that closed while held, none of them told to. */
  unexpectedCloses: number;
}

export const IDLE_SERVERS: readonly ServerName[] = ['raw-ws', 'cloudsocket'];
const ROOM_SIZE = 10;
/** Connections opened and closed before the first reading, so code loaded on first use is in both readings. */
const WARMUP_CONNECTIONS = 100;

export async function runIdleCase(programs: BenchPrograms, pool: LoadPool, connections: number, server: ServerName, holdMs = 0): Promise<IdleRun> {
  const target = await launchServer(server, programs);
  try {
    await pool.connect({ urls: [target.url], dialect: target.dialect, count: WARMUP_CONNECTIONS, roomSize: ROOM_SIZE });
    await pool.closeClients();
    await quiet(target);
    const before = await target.memory();
    const result = await pool.connect({ urls: [target.url], dialect: target.dialect, count: connections, roomSize: ROOM_SIZE, concurrency: 100 });
    await quiet(target);
    const after = await target.memory();
    const hold = holdMs > 0 ? await holdOpen(pool, holdMs) : undefined;
    await pool.closeClients();
    const per = (key: keyof MemoryUsage) => (result.connected > 0 ? Math.round((after[key] - before[key]) / result.connected) : 0);
    return {
      server,
      connections: result.connected,
      connectFailures: result.failed,
      ...(result.firstError ? { firstError: result.firstError } : {}),
      rssBytesPerConnection: per('rss'),
      heapBytesPerConnection: per('heapUsed'),
      externalBytesPerConnection: per('external'),
      before,
      after,
      ...(hold ? { hold } : {}),
    };
  } finally {
    await target.stop();
  }
}

async function holdOpen(pool: LoadPool, ms: number): Promise<IdleHold> {
  const { dropped } = await pool.tally();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return { ms, unexpectedCloses: (await pool.tally()).dropped - dropped };
}

/** Waits until the server stops working on the handshakes (CPU use below a tenth of a core). */
async function quiet(target: ServerUnderTest, maxMs = 10_000): Promise<void> {
  const sliceMs = 250;
  const deadline = Date.now() + maxMs;
  let before = await target.cpuMicros();
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, sliceMs));
    const now = await target.cpuMicros();
    if (now - before < sliceMs * 1000 * 0.1) return;
    before = now;
  }
}
