/**
 * What the bench coordinator and its load processes say to each other over
 * the child_process IPC channel.
 */
import type { SparseHistogram } from './histogram.js';

/** How a client talks to the server under test; the frames carry the same fields either way. */
export type Dialect = 'chat' | 'socketio';

export interface ConnectOrder {
  kind: 'connect';
  /** Client i connects to urls[i % urls.length]: several instances of one server share the clients. */
  urls: string[];
  dialect: Dialect;
  count: number;
  /** Index of this process's first client among all clients, so names and rooms are global. */
  firstIndex: number;
  /** Clients per room; 0 puts everyone in one room. */
  roomSize: number;
  /** Handshakes in flight at once. */
  concurrency: number;
}

export interface SendOrder {
  kind: 'send';
  /** Epoch ms at which every process starts sending. */
  startAt: number;
  ratePerClient: number;
  durationMs: number;
  /** Deliveries in the first warmupMs are not counted towards throughput or latency. */
  warmupMs: number;
  contentBytes: number;
}

/**
 * Sends `messages` chat frames one after another, each from the next client,
 * waiting for each to reach every client of this process before the next.
 */
export interface FanoutOrder {
  kind: 'fanout';
  messages: number;
  contentBytes: number;
  /** Per message; a message still missing recipients then is counted incomplete. */
  timeoutMs: number;
}

export type Order = ConnectOrder | SendOrder | FanoutOrder | { kind: 'report' } | { kind: 'close' };

export interface Tally {
  /** Chat frames sent by this process's clients. */
  sent: number;
  /** Chat frames received by this process's clients, whoever sent them. */
  received: number;
  /** Of those, received inside the measurement window. */
  receivedInWindow: number;
  windowMs: number;
  /** End-to-end latency of the frames this process sent in the window, as each of its recipients here saw it. */
  latency: SparseHistogram;
  /** Connections that closed or failed before being told to. */
  dropped: number;
  /** Every frame received, chat or not; settles once the server has nothing left to send. */
  frames: number;
}

export type WorkerEvent =
  | { kind: 'connected'; connected: number; failed: number; firstError?: string }
  | { kind: 'sent'; sent: number }
  /** Per message: from the send to its arrival at the last recipient. */
  | { kind: 'fanned'; completionsMs: number[]; incomplete: number }
  | ({ kind: 'tally' } & Tally)
  | { kind: 'closed' }
  | { kind: 'fatal'; message: string };
