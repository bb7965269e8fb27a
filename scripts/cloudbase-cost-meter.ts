/**
 * What the CloudBase target's traffic would be billed on Tencent Cloud, as
 * an HTTP cloud function with WebSocket on, counted at the local front door
 * (cloudbase-fleet.ts). Tencent bills such a function by resource usage
 * (configured memory × running time, in GB-s), invocations, and traffic; a
 * WebSocket connection's lifetime is one invocation, and by default one
 * instance serves one connection, so its resource usage runs from the
 * handshake to the close. HTTP requests (the page, /healthz) are
 * invocations of their own.
 *
 * With several connections per instance (--concurrency), an instance is
 * counted as running while it holds at least one, each stretch once; the
 * pages read do not say how Tencent bills an instance that serves several
 * WebSockets, so that part is this meter's assumption. Traffic to clients
 * is counted in bytes but not priced: the price of an HTTP function's
 * response traffic was not on the pages read. Free tiers and the monthly
 * basic package are left out.
 */

/**
 * Tencent Cloud International SCF list prices in USD, read 2026-12-01 from
 * https://intl.cloud.tencent.com/document/product/583/17299 ("Billing
 * Overview", last updated 2021-07-13): resource usage 0.0000167 USD/GBs,
 * invocations 0.002 USD per 10,000, "Web functions and event functions have
 * the same prices". See docs/cloudbase.md for what each rests on.
 */
export const CLOUDBASE_PRICES = {
  date: '2026-12-01',
  region: 'Chinese mainland (Tencent Cloud International list price)',
  perGbSecond: 0.0000167,
  perMillionInvocations: 0.2,
  /** Not on the pages read; the bytes are counted, not priced. */
  perGbResponseTraffic: null,
} as const;

export interface CloudbaseCostReport {
  prices: typeof CLOUDBASE_PRICES;
  memoryMb: number;
  chatMessages: number;
  /** WebSocket connections and HTTP requests, each one invocation. */
  invocations: number;
  /** Instance running time, summed over instances. */
  instanceSeconds: number;
  gbSeconds: number;
  /** Bytes from the function to its clients (handshake answers, frames, HTTP responses). */
  responseBytes: number;
  /** What is counted but has no price here. */
  unpriced: string[];
  /** USD for everything priced. */
  total: number;
  /** USD per million chat messages; undefined before the first one. */
  perMillionChatMessages: number | undefined;
}

export class CloudbaseCostMeter {
  private chatMessages = 0;
  private invocations = 0;
  private responseBytes = 0;
  private closedInstanceMs = 0;
  /** Per instance: how many invocations it runs now, and since when it has run any. */
  private readonly running = new Map<string, { open: number; since: number }>();

  constructor(private readonly memoryMb: number) {}

  /** An invocation (a WebSocket connection or an HTTP request) starts on `instance`. */
  started(instance: string, at = Date.now()): void {
    this.invocations += 1;
    const state = this.running.get(instance);
    if (state) state.open += 1;
    else this.running.set(instance, { open: 1, since: at });
  }

  finished(instance: string, at = Date.now()): void {
    const state = this.running.get(instance);
    if (!state) return;
    state.open -= 1;
    if (state.open > 0) return;
    this.running.delete(instance);
    this.closedInstanceMs += Math.max(0, at - state.since);
  }

  /** A message a client sent (one data message, however many frames). */
  message(): void {
    this.chatMessages += 1;
  }

  sent(bytes: number): void {
    this.responseBytes += bytes;
  }

  report(now = Date.now()): CloudbaseCostReport {
    let instanceMs = this.closedInstanceMs;
    for (const state of this.running.values()) instanceMs += Math.max(0, now - state.since);
    // Tencent bills running time by the millisecond.
    const instanceSeconds = Math.ceil(instanceMs) / 1000;
    const gbSeconds = (this.memoryMb / 1024) * instanceSeconds;
    const total = gbSeconds * CLOUDBASE_PRICES.perGbSecond + (this.invocations / 1e6) * CLOUDBASE_PRICES.perMillionInvocations;
    return {
      prices: CLOUDBASE_PRICES,
      memoryMb: this.memoryMb,
      chatMessages: this.chatMessages,
      invocations: this.invocations,
      instanceSeconds,
      gbSeconds,
      responseBytes: this.responseBytes,
      unpriced: ['response traffic to clients (price not published on the pages read)'],
      total,
      perMillionChatMessages: this.chatMessages > 0 ? (total / this.chatMessages) * 1e6 : undefined,
    };
  }
}

/** The report as a few lines for a terminal. */
export function formatCloudbaseCostReport(report: CloudbaseCostReport): string {
  const usd = (value: number) => `$${value.toFixed(value < 1 ? 6 : 2)}`;
  return [
    `estimated CloudBase cost (${report.prices.region}, list prices of ${report.prices.date}, no free tier):`,
    `  ${report.chatMessages} chat messages; ${report.invocations} invocations; ${report.instanceSeconds.toFixed(3)} instance-seconds at ${report.memoryMb} MB = ${report.gbSeconds.toFixed(3)} GB-s`,
    `  ${report.responseBytes} bytes to clients (not priced)`,
    `  total ${usd(report.total)}` + (report.perMillionChatMessages === undefined ? '' : `, ${usd(report.perMillionChatMessages)} per million chat messages`),
  ].join('\n');
}

/**
 * Counts the data messages in a client's byte stream after the handshake:
 * WebSocket frames (RFC 6455 §5.2), read header by header, their payloads
 * skipped; a message ends with a frame whose FIN bit is set and whose opcode
 * is text, binary or continuation. Control frames (ping, pong, close) are not messages.
 */
export class ClientFrameCounter {
  private header = Buffer.alloc(0);
  private skipping = 0;

  constructor(private readonly onMessage: () => void) {}

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.skipping > 0) {
        const skipped = Math.min(this.skipping, chunk.length - offset);
        this.skipping -= skipped;
        offset += skipped;
        continue;
      }
      // A header is at most 14 bytes and may arrive split over chunks.
      const piece = chunk.subarray(offset, offset + MAX_HEADER_BYTES - this.header.length);
      const combined = Buffer.concat([this.header, piece]);
      const parsed = frameHeader(combined);
      if (!parsed) {
        this.header = combined;
        offset += piece.length;
        continue;
      }
      offset += parsed.headerLength - this.header.length;
      this.header = Buffer.alloc(0);
      this.skipping = parsed.payloadLength;
      if (parsed.fin && parsed.opcode <= 2) this.onMessage();
    }
  }
}

const MAX_HEADER_BYTES = 14;

function frameHeader(bytes: Buffer): { fin: boolean; opcode: number; headerLength: number; payloadLength: number } | undefined {
  if (bytes.length < 2) return undefined;
  const fin = (bytes[0]! & 0x80) !== 0;
  const opcode = bytes[0]! & 0x0f;
  const masked = (bytes[1]! & 0x80) !== 0;
  let length = bytes[1]! & 0x7f;
  let headerLength = 2;
  if (length === 126) {
    if (bytes.length < 4) return undefined;
    length = bytes.readUInt16BE(2);
    headerLength = 4;
  } else if (length === 127) {
    if (bytes.length < 10) return undefined;
    length = Number(bytes.readBigUInt64BE(2));
    headerLength = 10;
  }
  if (masked) headerLength += 4;
  if (bytes.length < headerLength) return undefined;
  return { fin, opcode, headerLength, payloadLength: length };
}
