/**
 * One load process: opens its share of the clients, sends chat frames at a
 * fixed aggregate rate when told, and counts every chat frame its clients
 * receive. Runs as a child process of the bench (never inside a server's
 * process) and takes orders over IPC (messages.ts).
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { dialects, makeContent, readStamp, type DialectCodec } from './dialects.js';
import { LatencyHistogram } from './histogram.js';
import type { ConnectOrder, FanoutOrder, Order, SendOrder, WorkerEvent } from './messages.js';

/**
 * How often the sender wakes up. Each wake sends what falls due before the
 * next one, so a frame never waits for the timer; see `send`.
 */
const SEND_TICK_MS = 2;

const clients: WebSocket[] = [];
let codec: DialectCodec = dialects.chat;
let closing = false;
let dropped = 0;
let frames = 0;
let sent = 0;
let received = 0;
let receivedInWindow = 0;
let windowStart = Infinity;
let windowEnd = -Infinity;
let histogram = new LatencyHistogram();
/** The message a fan-out order is waiting on. */
let awaited: { sentAt: number; remaining: number; done: () => void } | undefined;

function emit(event: WorkerEvent): void {
  process.send?.(event);
}

function onFrame(socket: WebSocket, text: string): void {
  frames++;
  if (!text.startsWith(codec.chatPrefix)) {
    const answer = codec.reply(text);
    if (answer !== undefined) socket.send(answer);
    return;
  }
  const now = performance.now();
  received++;
  if (now >= windowStart && now < windowEnd) receivedInWindow++;
  const stamp = readStamp(text);
  if (awaited && stamp?.pid === process.pid && stamp.intendedAtMs === awaited.sentAt && --awaited.remaining === 0) awaited.done();
  // Only our own senders share this clock; their frames are a fair sample of everyone's.
  if (stamp && stamp.pid === process.pid && stamp.intendedAtMs >= windowStart && stamp.intendedAtMs < windowEnd) {
    histogram.record(now - stamp.intendedAtMs);
  }
}

function open(url: string, clientId: string, room: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url + codec.query(clientId, room), { perMessageDeflate: false });
    let ready = false;
    socket.on('message', (data: Buffer) => {
      const text = data.toString();
      if (!ready) {
        const answer = codec.reply(text);
        if (answer !== undefined) socket.send(answer);
        if (codec.isReady(text)) {
          ready = true;
          resolve(socket);
        }
        return;
      }
      onFrame(socket, text);
    });
    socket.on('error', (error) => {
      if (!ready) reject(error);
    });
    socket.on('close', () => {
      if (!ready) reject(new Error(`closed before ready (${clientId})`));
      else if (!closing) dropped++;
    });
  });
}

async function connect(order: ConnectOrder): Promise<void> {
  codec = dialects[order.dialect];
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const opener = async (): Promise<void> => {
    while (next < order.count) {
      const index = order.firstIndex + next++;
      const room = order.roomSize === 0 ? 'bench' : `r${Math.floor(index / order.roomSize)}`;
      try {
        clients.push(await open(order.urls[index % order.urls.length]!, `c${index}`, room));
      } catch (error) {
        failed++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, order.concurrency) }, opener));
  emit({ kind: 'connected', connected: clients.length, failed, ...(firstError ? { firstError } : {}) });
}

function send(order: SendOrder): void {
  const start = order.startAt - performance.timeOrigin;
  const end = start + order.durationMs;
  windowStart = start + order.warmupMs;
  windowEnd = end;
  histogram = new LatencyHistogram();
  sent = received = receivedInWindow = 0;
  const intervalMs = 1000 / (order.ratePerClient * clients.length);
  let due = 0;
  const tick = (): void => {
    const horizon = Math.min(performance.now() + SEND_TICK_MS, end);
    while (due < clients.length * order.ratePerClient * (order.durationMs / 1000)) {
      const dueAt = start + due * intervalMs;
      if (dueAt > horizon) break;
      const socket = clients[due % clients.length]!;
      if (socket.readyState === WebSocket.OPEN) {
        // Ahead of its time, a frame is timed from when it left; late, from when it was due,
        // so a stalled sender's delay still counts and the wait for the next tick does not.
        const stamp = Math.min(dueAt, performance.now());
        socket.send(codec.chatFrame(makeContent(process.pid, stamp, order.contentBytes)));
        sent++;
      }
      due++;
    }
    if (performance.now() >= end) {
      clearInterval(timer);
      emit({ kind: 'sent', sent });
    }
  };
  const timer = setInterval(tick, SEND_TICK_MS);
}

async function fanout(order: FanoutOrder): Promise<void> {
  const completionsMs: number[] = [];
  let incomplete = 0;
  for (let index = 0; index < order.messages; index++) {
    const sender = clients[index % clients.length];
    if (!sender) break;
    // Rounded as the stamp will be read back, so the arrival can be matched to it.
    const sentAt = Number(performance.now().toFixed(3));
    const arrived = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), order.timeoutMs);
      awaited = { sentAt, remaining: clients.length, done: () => (clearTimeout(timer), resolve(true)) };
    });
    sender.send(codec.chatFrame(makeContent(process.pid, sentAt, order.contentBytes)));
    if (await arrived) completionsMs.push(performance.now() - sentAt);
    else incomplete++;
    awaited = undefined;
  }
  emit({ kind: 'fanned', completionsMs, incomplete });
}

function tally(): void {
  emit({
    kind: 'tally',
    sent,
    received,
    receivedInWindow,
    windowMs: Math.max(0, windowEnd - windowStart),
    latency: histogram.toSparse(),
    dropped,
    frames,
  });
}

async function closeAll(): Promise<void> {
  closing = true;
  await Promise.all(
    clients.map(
      (socket) =>
        new Promise<void>((resolve) => {
          if (socket.readyState === WebSocket.CLOSED) return resolve();
          socket.once('close', () => resolve());
          socket.terminate();
        }),
    ),
  );
  clients.length = 0;
  emit({ kind: 'closed' });
}

process.on('message', (order: Order) => {
  const run = async (): Promise<void> => {
    if (order.kind === 'connect') await connect(order);
    else if (order.kind === 'send') send(order);
    else if (order.kind === 'fanout') await fanout(order);
    else if (order.kind === 'report') tally();
    else if (order.kind === 'close') await closeAll();
  };
  run().catch((error: unknown) => emit({ kind: 'fatal', message: error instanceof Error ? error.message : String(error) }));
});
process.on('disconnect', () => process.exit(0));
