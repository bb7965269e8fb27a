/**
 * The bench's counting, checked against the raw `ws` baseline with a handful
 * of clients: every frame sent reaches every member of the room exactly once
 * and is counted once. Nothing here is timed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContent, readStamp } from '../bench/load/dialects.js';
import { LatencyHistogram } from '../bench/load/histogram.js';
import { LoadPool } from '../bench/load/pool.js';
import { buildPrograms, type BenchPrograms } from '../bench/programs.js';
import { launchServer, type ServerUnderTest } from '../bench/servers/launch.js';

describe('bench load generator against the raw ws baseline', () => {
  let programs: BenchPrograms;
  let server: ServerUnderTest;
  let pool: LoadPool;

  beforeAll(async () => {
    programs = await buildPrograms();
    server = await launchServer('raw-ws', programs);
    pool = await LoadPool.start(programs.loadWorker, 2);
  });

  afterAll(async () => {
    await pool?.stop();
    await server?.stop();
    await programs?.remove();
  });

  it('counts every delivery: received = sent × room size', async () => {
    const clients = 6;
    const connection = await pool.connect({ urls: [server.url], dialect: server.dialect, count: clients, roomSize: 0 });
    expect(connection).toEqual({ connected: clients, failed: 0 });

    const sent = await pool.send({ ratePerClient: 2, durationMs: 1000, warmupMs: 0, contentBytes: 48 });
    expect(sent).toBeGreaterThan(0);
    const tally = await pool.drain(sent * clients, 5000);
    expect(tally.sent).toBe(sent);
    expect(tally.received).toBe(sent * clients);
    expect(tally.dropped).toBe(0);
    // Each process times only its own senders' frames, at each of its own recipients.
    expect(tally.latency.count).toBeGreaterThan(0);
    expect(tally.latency.count).toBeLessThanOrEqual(tally.received);

    const fanout = await pool.fanout(3, 48, 10_000);
    expect(fanout).toMatchObject({ incomplete: 0 });
    expect(fanout.completionsMs).toHaveLength(3);
    const after = await pool.drain(tally.received + 3 * clients, 5000);
    expect(after.received).toBe(tally.received + 3 * clients);

    await pool.closeClients();
  });

  it.each(['floor', 'ws-frame-once'] as const)('counts every delivery of the %s baseline, which frames each message once', async (name) => {
    const baseline = await launchServer(name, programs);
    try {
      const clients = 5;
      expect(await pool.connect({ urls: [baseline.url], dialect: baseline.dialect, count: clients, roomSize: 0 })).toEqual({ connected: clients, failed: 0 });
      const sent = await pool.send({ ratePerClient: 2, durationMs: 1000, warmupMs: 0, contentBytes: 200 });
      expect(sent).toBeGreaterThan(0);
      const tally = await pool.drain(sent * clients, 5000);
      expect(tally.received).toBe(sent * clients);
      expect(tally.dropped).toBe(0);
      await pool.closeClients();
    } finally {
      await baseline.stop();
    }
  });

  it('reads the server memory and CPU through the preloaded probe', async () => {
    const memory = await server.memory();
    expect(memory.rss).toBeGreaterThan(memory.heapUsed);
    expect(await server.cpuMicros()).toBeGreaterThan(0);
  });
});

describe('bench counting helpers', () => {
  it('reads back the stamp it wrote into a chat frame', () => {
    const content = makeContent(4242, 1234.567, 64);
    expect(content).toHaveLength(64);
    const frame = JSON.stringify({ type: 'chat', id: 'x', clientId: 'c1', room: 'bench', message: content, onlineCount: 2 });
    expect(readStamp(frame)).toEqual({ pid: 4242, intendedAtMs: 1234.567 });
    expect(readStamp('{"type":"chat","message":"hello"}')).toBeUndefined();
  });

  it('adds histograms across processes and finds quantiles by bucket', () => {
    const one = new LatencyHistogram();
    const two = new LatencyHistogram();
    for (const ms of [1, 1, 1, 1]) one.record(ms);
    for (const ms of [2, 2, 2, 250, 250]) two.record(ms);
    const total = new LatencyHistogram();
    total.addSparse(one.toSparse());
    total.addSparse(two.toSparse());
    expect(total.count).toBe(9);
    expect(total.quantile(0.4)).toBeCloseTo(1.01, 5);
    expect(total.quantile(0.5)).toBeCloseTo(2.01, 5);
    expect(total.quantile(1)).toBe(251);
  });
});
