/**
 * The load process of the aws-churn scenario: a crowd joining one room,
 * broadcasts into it, and short-lived connections coming and going beside two
 * clients that stay and talk, with a newcomer timed to its welcome every
 * second. Takes one order at a time over IPC and answers with what it saw.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

export type ChurnOrder =
  | { kind: 'join'; url: string; room: string; count: number; concurrency: number }
  | { kind: 'broadcast'; messages: number; timeoutMs: number }
  | { kind: 'churn'; url: string; room: string; connections: number; durationMs: number; chatsPerSecond: number; settleMs: number }
  | { kind: 'close' };

export interface ChurnAnswers {
  join: { connected: number; failed: number; seconds: number; firstError?: string };
  /** Per member, how many of the broadcasts it received (each counted once per arrival). */
  broadcast: { members: number; messages: number; exactlyOnce: number; missing: number; duplicated: number };
  churn: { churned: number; churnFailed: number; liveSent: number; liveExpected: number; liveReceived: number; liveDuplicated: number; welcomesMs: number[]; probeFailures: number };
  close: Record<string, never>;
}

const crowd: Array<{ socket: WebSocket; seen: Map<string, number> }> = [];

/** Opens a client and resolves once its welcome arrives (or rejects on close/timeout). */
function open(url: string, clientId: string, room: string, onChat?: (message: string) => void, timeoutMs = 30_000): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url}?clientId=${clientId}&room=${room}`, { perMessageDeflate: false });
    let welcomed = false;
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`no welcome within ${timeoutMs} ms (${clientId})`));
    }, timeoutMs);
    socket.on('message', (data: Buffer) => {
      const text = data.toString();
      if (!welcomed && text.startsWith('{"type":"welcome"')) {
        welcomed = true;
        clearTimeout(timer);
        resolve(socket);
      } else if (onChat && text.startsWith('{"type":"chat"')) {
        onChat((JSON.parse(text) as { message: string }).message);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      if (!welcomed) reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (!welcomed) reject(new Error(`closed before its welcome (${clientId})`));
    });
  });
}

async function join(order: Extract<ChurnOrder, { kind: 'join' }>): Promise<ChurnAnswers['join']> {
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const opener = async () => {
    while (next < order.count) {
      const index = next++;
      const seen = new Map<string, number>();
      try {
        const socket = await open(order.url, `m${index}`, order.room, (message) => seen.set(message, (seen.get(message) ?? 0) + 1));
        crowd.push({ socket, seen });
      } catch (error) {
        failed++;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: order.concurrency }, opener));
  return { connected: crowd.length, failed, seconds: (performance.now() - started) / 1000, ...(firstError ? { firstError } : {}) };
}

async function broadcast(order: Extract<ChurnOrder, { kind: 'broadcast' }>): Promise<ChurnAnswers['broadcast']> {
  const contents = Array.from({ length: order.messages }, (_, i) => `b${i}-${Date.now()}`);
  contents.forEach((content, i) => crowd[(i * 97) % crowd.length]!.socket.send(JSON.stringify({ type: 'chat', content })));
  const complete = () => crowd.every(({ seen }) => contents.every((content) => seen.has(content)));
  const deadline = performance.now() + order.timeoutMs;
  while (!complete() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  // Late duplicates would arrive within moments of the last delivery.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  let exactlyOnce = 0;
  let missing = 0;
  let duplicated = 0;
  for (const { seen } of crowd) {
    for (const content of contents) {
      const count = seen.get(content) ?? 0;
      if (count === 1) exactlyOnce++;
      else if (count === 0) missing++;
      else duplicated++;
    }
  }
  return { members: crowd.length, messages: contents.length, exactlyOnce, missing, duplicated };
}

async function churn(order: Extract<ChurnOrder, { kind: 'churn' }>): Promise<ChurnAnswers['churn']> {
  const live = ['live-a', 'live-b'];
  const received = live.map(() => new Map<string, number>());
  const sockets = await Promise.all(live.map((clientId, i) => open(order.url, clientId, order.room, (message) => received[i]!.set(message, (received[i]!.get(message) ?? 0) + 1))));
  const sent: string[] = [];
  const welcomesMs: number[] = [];
  let probeFailures = 0;
  let churned = 0;
  let churnFailed = 0;
  const started = performance.now();
  const pending: Array<Promise<unknown>> = [];

  const chatTimer = setInterval(() => {
    sockets.forEach((socket, i) => {
      const content = `live${i}-${sent.length}`;
      sent.push(content);
      socket.send(JSON.stringify({ type: 'chat', content }));
    });
  }, 1000 / order.chatsPerSecond);
  const probeTimer = setInterval(() => {
    const at = performance.now();
    pending.push(
      open(order.url, `probe${welcomesMs.length + probeFailures}`, order.room, undefined, 30_000)
        .then((socket) => {
          welcomesMs.push(performance.now() - at);
          socket.close();
        })
        .catch(() => probeFailures++),
    );
  }, 1000);
  // Churners arrive evenly over the duration; half leave as soon as the handshake is done, half once welcomed.
  const interval = order.durationMs / order.connections;
  for (let i = 0; i < order.connections; i++) {
    const due = started + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const socket = new WebSocket(`${order.url}?clientId=churn${i}&room=${order.room}`, { perMessageDeflate: false });
    pending.push(
      new Promise<void>((resolve) => {
        const leave = () => (socket.terminate(), churned++, resolve());
        socket.on('error', () => undefined);
        socket.on('close', () => resolve());
        if (i % 2 === 0) socket.once('open', leave);
        else socket.once('message', leave);
        setTimeout(() => {
          if (socket.readyState !== WebSocket.CLOSED) {
            churnFailed++;
            socket.terminate();
          }
          resolve();
        }, 10_000);
      }),
    );
  }
  clearInterval(chatTimer);
  clearInterval(probeTimer);
  await Promise.all(pending);
  await new Promise((resolve) => setTimeout(resolve, order.settleMs));
  let liveReceived = 0;
  let liveDuplicated = 0;
  for (const seen of received) {
    for (const content of sent) {
      const count = seen.get(content) ?? 0;
      if (count >= 1) liveReceived++;
      if (count > 1) liveDuplicated++;
    }
  }
  for (const socket of sockets) socket.close();
  return { churned, churnFailed, liveSent: sent.length, liveExpected: sent.length * live.length, liveReceived, liveDuplicated, welcomesMs, probeFailures };
}

process.on('message', (order: ChurnOrder) => {
  const run = async (): Promise<unknown> => {
    if (order.kind === 'join') return join(order);
    if (order.kind === 'broadcast') return broadcast(order);
    if (order.kind === 'churn') return churn(order);
    for (const { socket } of crowd.splice(0)) socket.terminate();
    return {};
  };
  run().then(
    (answer) => process.send?.({ kind: order.kind, answer }),
    (error: unknown) => process.send?.({ kind: 'fatal', message: error instanceof Error ? error.message : String(error) }),
  );
});
process.on('disconnect', () => process.exit(0));
