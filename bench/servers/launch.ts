/**
 * Starts a server under test as a child process with the memory probe
 * preloaded: ours from the built CloudBase artifact through its own
 * scf_bootstrap (what ships), the baselines from their bundles.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseLogLine, runArtifact } from '../../scripts/run-artifact.js';
import type { BenchPrograms } from '../programs.js';
import type { Dialect } from '../load/messages.js';

export type ServerName = 'cloudsocket' | 'raw-ws' | 'ws-frame-once' | 'floor' | 'socketio';

export interface MemoryUsage {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export interface ServerUnderTest {
  name: ServerName;
  dialect: Dialect;
  url: string;
  /** Every instance's URL; clients are spread over them. */
  urls: string[];
  /** Memory after a full GC, as the server process reports it. */
  memory(): Promise<MemoryUsage>;
  /** CPU time the server process has used so far, in microseconds (user + system). */
  cpuMicros(): Promise<number>;
  /** Writes a heap snapshot in the server's temp dir; resolves to its path. */
  heapSnapshot(): Promise<string>;
  startProfile(): Promise<void>;
  /** Stops the CPU profiler and returns the .cpuprofile JSON text. */
  stopProfile(): Promise<string>;
  stop(): Promise<void>;
}

export interface LaunchOptions {
  /** Extra environment of the server (cloudsocket settings such as RATE_LIMIT). */
  env?: Record<string, string>;
  /** Processes of the server; more than one share the room through `redisUrl`. */
  instances?: number;
  redisUrl?: string;
}

/**
 * One server, or several processes of it sharing rooms over Redis (ours
 * through REDIS_URL, Socket.IO through @socket.io/redis-adapter): measured as
 * one, its CPU the sum of theirs.
 */
export async function launchServers(name: ServerName, programs: BenchPrograms, options: LaunchOptions = {}): Promise<ServerUnderTest> {
  const count = options.instances ?? 1;
  if (count === 1) return launchServer(name, programs, options);
  if (!options.redisUrl) throw new Error(`${name}: ${count} instances need a redisUrl`);
  const env = { ...options.env, REDIS_URL: options.redisUrl, REDIS_PREFIX: `bench${Date.now()}:` };
  const members = await Promise.all(Array.from({ length: count }, () => launchServer(name, programs, { env })));
  const sum = async (each: (member: ServerUnderTest) => Promise<number>) => (await Promise.all(members.map(each))).reduce((a, b) => a + b, 0);
  return {
    ...members[0]!,
    urls: members.map((member) => member.url),
    cpuMicros: () => sum((member) => member.cpuMicros()),
    stop: async () => {
      await Promise.all(members.map((member) => member.stop()));
    },
  };
}

const START_TIMEOUT_MS = 15_000;
/** Output lines of a server kept to say what it did last, when its probe stops answering. */
const RECENT_LINES = 20;

export async function launchServer(name: ServerName, programs: BenchPrograms, options: LaunchOptions = {}): Promise<ServerUnderTest> {
  const nodeOptions = `--expose-gc --import=${programs.probeUrl}`;
  const env = { ...options.env, NODE_OPTIONS: nodeOptions };
  let onProbe: (port: number) => void = () => {};
  const probeSeen = new Promise<number>((resolve) => (onProbe = resolve));
  const recent: string[] = [];
  const onLine = (line: string) => {
    recent.push(line);
    if (recent.length > RECENT_LINES) recent.shift();
    const event = parseLogLine(line);
    if (event?.event === 'bench_probe' && typeof event.port === 'number') onProbe(event.port);
  };

  let port: number;
  let child: ChildProcess;
  let stderrTail = () => '';
  if (name === 'cloudsocket') {
    const running = await runArtifact(programs.cloudbaseDirectory, {
      port: 0,
      env: { HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
      onLine,
      startTimeoutMs: START_TIMEOUT_MS,
    });
    port = running.port;
    child = running.child;
    stderrTail = running.stderrTail;
  } else {
    child = spawn(process.execPath, [baselineProgram(name, programs)], {
      env: { ...process.env, ...env, PORT: '0' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    port = await waitForListening(child, onLine);
  }
  const probePort = await withTimeout(probeSeen, START_TIMEOUT_MS, `${name}: the memory probe did not start`);

  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  /** A request to the probe; when it fails, the error says whether the server is still running and what it printed last. */
  const askProbe = async (path: string): Promise<Response> => {
    try {
      return await fetch(`http://127.0.0.1:${probePort}${path}`);
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      const state = child.exitCode !== null || child.signalCode !== null ? `it exited (${child.signalCode ?? `code ${child.exitCode}`})` : 'it is still running';
      const stderr = stderrTail();
      throw new Error(
        `${name} (pid ${child.pid}): its probe did not answer ${path} (${(error as Error).message}${cause ? `, ${cause}` : ''}); ${state}. Its last output:\n${[...recent, ...(stderr ? [stderr] : [])].join('\n') || '(none)'}`,
      );
    }
  };
  return {
    name,
    dialect: name === 'socketio' ? 'socketio' : 'chat',
    url: `ws://127.0.0.1:${port}/`,
    urls: [`ws://127.0.0.1:${port}/`],
    memory: async () => (await (await askProbe('/memory')).json()) as MemoryUsage,
    heapSnapshot: async () => ((await (await askProbe('/heap-snapshot')).json()) as { path: string }).path,
    startProfile: async () => {
      await (await askProbe('/profile/start')).text();
    },
    stopProfile: async () => (await askProbe('/profile/stop')).text(),
    cpuMicros: async () => {
      const response = await askProbe('/cpu');
      const { user, system } = (await response.json()) as { user: number; system: number };
      return user + system;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function baselineProgram(name: Exclude<ServerName, 'cloudsocket'>, programs: BenchPrograms): string {
  const program = { 'raw-ws': programs.rawWs, 'ws-frame-once': programs.wsFrameOnce, floor: programs.floor, socketio: programs.socketio };
  return program[name];
}

function waitForListening(child: ChildProcess, onLine: (line: string) => void): Promise<number> {
  return withTimeout(
    new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`server exited with code ${code} before listening`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        onLine(line);
        const event = parseLogLine(line);
        if (event?.event === 'listening' && typeof event.port === 'number') resolve(event.port);
      });
    }),
    START_TIMEOUT_MS,
    'server did not start',
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]);
}
