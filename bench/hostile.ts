/**
 * The hostile-input drill: thousands of malformed inputs thrown at each
 * target as it ships (the CloudBase function through its scf_bootstrap, the
 * AWS emulator under `cloudsocket dev`), beside a pair of clients chatting.
 * Counts what was answered as it should be, and compares the server's open
 * file descriptors and the room's registry with their values before.
 * Loopback only, bounded in count and time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { buildAll, builtInProject } from '../scripts/build.js';
import { packageRoot } from '../scripts/package-root.js';
import { freePort, runArtifact } from '../scripts/run-artifact.js';
import { rawRequest, upgradeRequest } from '../test/support/raw-socket.js';
import { TestClient, uniqueName, withQuery } from '../testing/client.js';

export type HostileCategory = 'garbage' | 'targets' | 'framing' | 'json';
export const HOSTILE_CATEGORIES: readonly HostileCategory[] = ['garbage', 'targets', 'framing', 'json'];

export interface HostileCategoryRun {
  category: HostileCategory;
  sent: number;
  /** Answered as the target should: the right HTTP status or close code, or an error frame. */
  rightAnswers: number;
  /** A few of the wrong answers, for the report. */
  wrong: string[];
}

export interface HostileRun {
  target: 'cloudbase' | 'aws';
  categories: HostileCategoryRun[];
  /** Every descriptor of the target's process: with the AWS emulator, also each Lambda environment (thread) it keeps warm. */
  fdsBefore: number;
  fdsAfter: number;
  /** The sockets among them: what a connection the target failed to close would leave. */
  socketsBefore: number;
  socketsAfter: number;
  /** Members of the drill's room seen by a probe before and after (the probe itself counts 1). */
  roomBefore: number;
  roomAfter: number;
  bystanderSent: number;
  bystanderReceived: number;
  /** The target still answered a fresh client at the end. */
  alive: boolean;
  durationSeconds: number;
}

/** How many inputs of each category a target gets. */
export type HostilePlan = Record<HostileCategory, number>;

const ODD_TARGETS = ['//', '///x', '/\\x', '/%00', '//@', 'http://[', 'http://a:99999/', '/..%2f..%2f', '/?clientId=%ff%fe', '/' + 'a'.repeat(4000), '*', '/?room=%00'];
/** Frames a conforming server must refuse, with the close code RFC 6455 gives each. */
const BAD_FRAMES: Array<{ name: string; bytes: () => Buffer; codes: number[] }> = [
  { name: 'unmasked text frame', bytes: () => Buffer.from([0x81, 0x02, 0x68, 0x69]), codes: [1002] },
  { name: 'reserved opcode 0x3', bytes: () => masked(0x83, Buffer.from('hi')), codes: [1002] },
  { name: 'invalid UTF-8', bytes: () => masked(0x81, Buffer.from([0xc3, 0x28, 0xa0, 0xa1])), codes: [1007] },
  { name: 'RSV1 without an extension', bytes: () => masked(0xc1, Buffer.from('hi')), codes: [1002] },
  { name: 'a 2^62-byte length', bytes: () => Buffer.concat([Buffer.from([0x81, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0]), randomBytes(4)]), codes: [1009, 1002] },
  { name: 'fragmented control frame', bytes: () => masked(0x09, Buffer.from('p')), codes: [1002] },
];

function masked(firstByte: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const body = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([firstByte, 0x80 | payload.length]), mask, body]);
}

function jsonFuzz(): string {
  const pieces = ['{', '}', '[', ']', '"type"', ':', ',', '"chat"', 'null', '1e999', '"\\u0000"', '"__proto__"', '{"type":', '"content"', 'true', '\u202e', '"x"'];
  const length = 1 + Math.floor(Math.random() * 12);
  return Array.from({ length }, () => pieces[Math.floor(Math.random() * pieces.length)]).join('');
}

interface Target {
  port: number;
  /** ws://127.0.0.1:PORT/ or ws://127.0.0.1:PORT/dev */
  url: string;
  /** Where an upgrade is accepted, for the framing and JSON inputs. */
  path: string;
  pid: number;
  /** The statuses a well-behaved answer to an odd request target may have. */
  oddTargetStatuses: number[];
  /**
   * Whether the port also speaks TLS, taking a first byte of 0x16 (a TLS
   * handshake record) for the start of one: garbage that begins so is a failed
   * TLS handshake, rightly answered by closing, as API Gateway's TLS-only
   * endpoint would.
   */
  sniffsTls: boolean;
  stop(): Promise<void>;
}

const TLS_HANDSHAKE_RECORD = 0x16;

/** The process's open descriptors, and how many of them are sockets. */
async function countOpen(pid: number): Promise<{ fds: number; sockets: number }> {
  const fds = await readdir(`/proc/${pid}/fd`);
  // A descriptor may close between the listing and the look.
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  return { fds: fds.length, sockets: targets.filter((target) => target.startsWith('socket:')).length };
}

async function roomCount(url: string, room: string): Promise<number> {
  const { client } = await TestClient.join(withQuery(url, { room, clientId: uniqueName('probe') }), { timeoutMs: 30_000 });
  client.send({ type: 'users' });
  const users = await client.next('users');
  await client.close();
  return users.onlineCount as number;
}

/** Runs `task` over `count` items with at most `parallel` at once. */
async function inParallel(count: number, parallel: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

function category(name: HostileCategory, sent: number): HostileCategoryRun {
  return { category: name, sent, rightAnswers: 0, wrong: [] };
}

function noteWrong(run: HostileCategoryRun, what: string): void {
  if (run.wrong.length < 5) run.wrong.push(what);
}

/** A bare TCP exchange: what the server wrote back before it closed, or after `timeoutMs`. */
function exchange(port: number, bytes: Buffer, timeoutMs = 5000): Promise<{ data: Buffer; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ data: Buffer.concat(chunks), closedByServer: false });
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closedByServer: true });
    });
  });
}

/** The close code of the first close frame in what a server sent after its 101. */
function closeCodeAfterHandshake(data: Buffer): number | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0 || !data.subarray(0, 12).toString('latin1').startsWith('HTTP/1.1 101')) return undefined;
  let offset = end + 4;
  while (offset + 2 <= data.length) {
    const opcode = data[offset]! & 0x0f;
    let length = data[offset + 1]! & 0x7f;
    let header = 2;
    if (length === 126) {
      length = data.readUInt16BE(offset + 2);
      header = 4;
    }
    if (opcode === 0x8) return length >= 2 ? data.readUInt16BE(offset + header) : 1005;
    offset += header + length;
  }
  return undefined;
}

async function drill(target: Target, plan: HostilePlan, progress: (line: string) => void): Promise<Omit<HostileRun, 'target'>> {
  const started = Date.now();
  const room = uniqueName('hostile');
  const roomBefore = await roomCount(target.url, room);
  const before = await countOpen(target.pid);

  // The bystanders chat all through the drill; every message must reach both.
  const bystanderRoom = uniqueName('bystanders');
  const a = await TestClient.join(withQuery(target.url, { room: bystanderRoom, clientId: uniqueName('a') }));
  const b = await TestClient.join(withQuery(target.url, { room: bystanderRoom, clientId: uniqueName('b') }));
  let bystanderSent = 0;
  const chatter = setInterval(() => {
    a.client.send({ type: 'chat', content: `m${bystanderSent++}` });
  }, 200);
  try {
    return await throwInputs(target, plan, progress, { room, started, roomBefore, before, chatter, a: a.client, b: b.client, sent: () => bystanderSent });
  } finally {
    clearInterval(chatter);
    await Promise.all([a.client.close(), b.client.close()]).catch(() => undefined);
  }
}

interface DrillState {
  room: string;
  started: number;
  roomBefore: number;
  before: { fds: number; sockets: number };
  chatter: NodeJS.Timeout;
  a: TestClient;
  b: TestClient;
  sent: () => number;
}

async function throwInputs(target: Target, plan: HostilePlan, progress: (line: string) => void, state: DrillState): Promise<Omit<HostileRun, 'target'>> {
  const { room, started, roomBefore, before, b } = state;
  const runs: HostileCategoryRun[] = [];
  const garbage = category('garbage', plan.garbage);
  progress(`  ${plan.garbage} garbage handshakes ...`);
  await inParallel(plan.garbage, 50, async () => {
    const bytes = Buffer.concat([randomBytes(16 + Math.floor(Math.random() * 400)), Buffer.from('\r\n\r\n')]);
    const { data, closedByServer } = await exchange(target.port, bytes);
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data.toString('latin1'))?.[1] ?? 0);
    if (target.sniffsTls && bytes[0] === TLS_HANDSHAKE_RECORD && closedByServer && status === 0) garbage.rightAnswers++;
    else if (status === 400 || status === 431) garbage.rightAnswers++;
    else noteWrong(garbage, status ? `HTTP ${status}` : closedByServer ? 'closed without an answer' : 'no answer');
  });
  runs.push(garbage);

  const targets = category('targets', plan.targets);
  progress(`  ${plan.targets} odd request targets ...`);
  await inParallel(plan.targets, 50, async (index) => {
    const odd = ODD_TARGETS[index % ODD_TARGETS.length]!;
    const answer = await rawRequest(target.port, upgradeRequest(odd), { timeoutMs: 5000 }).catch(() => ({ status: -1 }));
    if (target.oddTargetStatuses.includes(answer.status)) targets.rightAnswers++;
    else noteWrong(targets, `${JSON.stringify(odd.slice(0, 20))} → ${answer.status === -1 ? 'no answer' : answer.status}`);
  });
  runs.push(targets);

  const framing = category('framing', plan.framing);
  progress(`  ${plan.framing} framing errors ...`);
  await inParallel(plan.framing, 20, async (index) => {
    const bad = BAD_FRAMES[index % BAD_FRAMES.length]!;
    const head = Buffer.from(upgradeRequest(`${target.path}?room=${room}`));
    const { data } = await exchange(target.port, Buffer.concat([head, bad.bytes()]), 10_000);
    const code = closeCodeAfterHandshake(data);
    if (code !== undefined && bad.codes.includes(code)) framing.rightAnswers++;
    else noteWrong(framing, `${bad.name} → ${code ?? 'no close frame'}`);
  });
  runs.push(framing);

  // Ten fuzzed frames a connection, within the rate limit's burst.
  const json = category('json', plan.json);
  progress(`  ${plan.json} fuzzed JSON frames ...`);
  await inParallel(Math.ceil(plan.json / 10), 20, async (index) => {
    const frames = Math.min(10, plan.json - index * 10);
    const joined = await TestClient.join(withQuery(target.url, { room }), { timeoutMs: 30_000 }).catch((error: Error) => error);
    if (joined instanceof Error) return noteWrong(json, `not welcomed: ${joined.message.slice(0, 60)}`);
    const { client } = joined;
    for (let i = 0; i < frames; i++) client.send(jsonFuzz());
    for (let i = 0; i < frames; i++) {
      const answer = await client.next((frame) => frame.type === 'error' || frame.type === 'chat', 10_000).catch(() => undefined);
      if (answer) json.rightAnswers++;
      else noteWrong(json, 'no answer to a frame');
    }
    await client.close();
  });
  runs.push(json);

  clearInterval(state.chatter);
  const bystanderSent = state.sent();
  const last = `m${bystanderSent - 1}`;
  // A frame still queued behind the drill is late, not lost: it is given API Gateway's 29 s integration timeout and then some.
  await b.next((frame) => frame.type === 'chat' && frame.message === last, 60_000).catch(() => undefined);
  const bystanderReceived = b.all('chat').length;

  // Sockets the target cut are closed on its side by now; give its disconnects a moment to land in the registry.
  let roomAfter = await roomCount(target.url, room);
  for (let attempt = 0; attempt < 20 && roomAfter !== roomBefore; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    roomAfter = await roomCount(target.url, room);
  }
  // Keep-alive sockets of the functions' SDK clients close once idle (the emulator's server drops them after 5 s).
  let after = await countOpen(target.pid);
  for (let attempt = 0; attempt < 30 && after.sockets > before.sockets + 10; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    after = await countOpen(target.pid);
  }
  const alive = await roomCount(target.url, uniqueName('alive')).then(() => true, () => false);
  return { categories: runs, fdsBefore: before.fds, fdsAfter: after.fds, socketsBefore: before.sockets, socketsAfter: after.sockets, roomBefore, roomAfter, bystanderSent, bystanderReceived, alive, durationSeconds: Math.round((Date.now() - started) / 1000) };
}

async function startCloudbase(dist: string): Promise<Target> {
  const running = await runArtifact(join(dist, 'cloudbase'), { port: 0, env: { HOST: '127.0.0.1', LOG_LEVEL: 'silent' } });
  return {
    port: running.port,
    url: `ws://127.0.0.1:${running.port}/`,
    path: '/',
    // scf_bootstrap execs node, so the child is the server itself.
    pid: running.child.pid!,
    oddTargetStatuses: [101, 400],
    sniffsTls: false,
    stop: async () => void (await running.stop()),
  };
}

async function startAws(dist: string): Promise<Target> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [join(packageRoot, 'bin/cloudsocket.js'), 'dev', '--target', 'aws', '--aws-port', String(port), '--no-build', '--no-watch'], {
    env: { ...process.env, CLOUDSOCKET_DIST_DIR: dist, LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the emulator exited with ${code} before it listened`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('cloudsocket AWS emulator')) resolve();
    });
  });
  return {
    port,
    url: `ws://127.0.0.1:${port}/dev`,
    path: '/dev',
    pid: child.pid!,
    // API Gateway answers an upgrade outside its stage with 403.
    oddTargetStatuses: [403],
    sniffsTls: true,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGINT');
      }),
  };
}

export async function runHostile(plans: { cloudbase: HostilePlan; aws: HostilePlan }, progress: (line: string) => void): Promise<HostileRun[]> {
  const dist = await mkdtemp(join(tmpdir(), 'cloudsocket-hostile-'));
  const runs: HostileRun[] = [];
  try {
    await buildAll(builtInProject(dist));
    for (const [name, start] of [['cloudbase', startCloudbase], ['aws', startAws]] as const) {
      progress(`hostile: ${name} ...`);
      const target = await start(dist);
      try {
        runs.push({ target: name, ...(await drill(target, plans[name], progress)) });
      } finally {
        await target.stop();
      }
    }
  } finally {
    await rm(dist, { recursive: true, force: true });
  }
  return runs;
}
