/**
 * What the traffic the emulator carried would cost on AWS, at list prices:
 * API Gateway messages (each counted in 32 KB units, both directions) and
 * connection minutes, Lambda requests and GB-seconds (the template's
 * MemorySize), DynamoDB on-demand read and write request units (as the
 * local DynamoDB reports them through ReturnConsumedCapacity, and the
 * indexes' write units it leaves out, see dynamo-proxy.ts). The result is
 * given per million chat messages, a chat message being one frame a client
 * sent that reached a route.
 *
 * Durations are measured from the call to the answer, so they include
 * waiting for a free environment and cold starts: an upper bound of what
 * Lambda would bill. Free tiers, data transfer and CloudWatch are left out.
 */

/**
 * US East (N. Virginia) list prices in USD, read on 2026-12-01 from
 * https://aws.amazon.com/api-gateway/pricing/ (WebSocket: $1.00 per million
 * messages for the first billion, $0.25 per million connection minutes,
 * messages metered in 32 KB increments), https://aws.amazon.com/lambda/pricing/
 * ($0.20 per million requests, $0.0000166667 per GB-second, x86) and
 * https://aws.amazon.com/dynamodb/pricing/on-demand/ ($0.625 per million
 * write request units, $0.125 per million read request units, since the
 * November 2024 reduction). See docs/emulator.md for what each rests on.
 */
export const PRICES = {
  date: '2026-12-01',
  region: 'us-east-1',
  perMillionMessages: 1.0,
  perMillionConnectionMinutes: 0.25,
  perMillionLambdaRequests: 0.2,
  perGbSecond: 0.0000166667,
  perMillionWriteUnits: 0.625,
  perMillionReadUnits: 0.125,
} as const;

/** API Gateway meters WebSocket messages in 32 KB increments. */
export const MESSAGE_METERING_BYTES = 32 * 1024;

export interface CostReport {
  prices: typeof PRICES;
  chatMessages: number;
  messageUnits: number;
  connectionMinutes: number;
  lambdaRequests: number;
  gbSeconds: number;
  readUnits: number;
  writeUnits: number;
  /** USD for everything counted. */
  total: number;
  /** USD per million chat messages; undefined before the first one. */
  perMillionChatMessages: number | undefined;
}

export class CostMeter {
  private chatMessages = 0;
  private messageUnits = 0;
  private closedConnectionMinutes = 0;
  private readonly openSince = new Map<string, number>();
  private lambdaRequests = 0;
  private gbSeconds = 0;
  private readUnits = 0;
  private writeUnits = 0;

  /** A message through API Gateway, either way; `routed` for a client's frame that reached a route. */
  message(bytes: number, routed = false): void {
    this.messageUnits += Math.max(1, Math.ceil(bytes / MESSAGE_METERING_BYTES));
    if (routed) this.chatMessages += 1;
  }

  connectionOpened(connectionId: string, at = Date.now()): void {
    this.openSince.set(connectionId, at);
  }

  connectionClosed(connectionId: string, at = Date.now()): void {
    const since = this.openSince.get(connectionId);
    if (since === undefined) return;
    this.openSince.delete(connectionId);
    this.closedConnectionMinutes += minutesOf(at - since);
  }

  /** A request is counted when it is made; its duration when it has returned. */
  invocationStarted(): void {
    this.lambdaRequests += 1;
  }

  invocationFinished(memoryMb: number, durationMs: number): void {
    // Lambda bills duration rounded up to the millisecond.
    this.gbSeconds += (memoryMb / 1024) * (Math.ceil(durationMs) / 1000);
  }

  capacity(kind: 'read' | 'write', units: number): void {
    if (kind === 'read') this.readUnits += units;
    else this.writeUnits += units;
  }

  report(now = Date.now()): CostReport {
    let connectionMinutes = this.closedConnectionMinutes;
    for (const since of this.openSince.values()) connectionMinutes += minutesOf(now - since);
    const total =
      (this.messageUnits / 1e6) * PRICES.perMillionMessages +
      (connectionMinutes / 1e6) * PRICES.perMillionConnectionMinutes +
      (this.lambdaRequests / 1e6) * PRICES.perMillionLambdaRequests +
      this.gbSeconds * PRICES.perGbSecond +
      (this.readUnits / 1e6) * PRICES.perMillionReadUnits +
      (this.writeUnits / 1e6) * PRICES.perMillionWriteUnits;
    return {
      prices: PRICES,
      chatMessages: this.chatMessages,
      messageUnits: this.messageUnits,
      connectionMinutes,
      lambdaRequests: this.lambdaRequests,
      gbSeconds: this.gbSeconds,
      readUnits: this.readUnits,
      writeUnits: this.writeUnits,
      total,
      perMillionChatMessages: this.chatMessages > 0 ? (total / this.chatMessages) * 1e6 : undefined,
    };
  }
}

/** Connection minutes are counted per started minute of each connection. */
function minutesOf(ms: number): number {
  return Math.max(1, Math.ceil(ms / 60_000));
}

/** The report as a few lines for a terminal. */
export function formatCostReport(report: CostReport): string {
  const usd = (value: number) => `$${value.toFixed(value < 1 ? 6 : 2)}`;
  return [
    `estimated AWS cost (${report.prices.region} list prices of ${report.prices.date}, no free tier):`,
    `  ${report.chatMessages} chat messages; ${report.messageUnits} API Gateway messages (32 KB units), ${report.connectionMinutes} connection minutes`,
    `  ${report.lambdaRequests} Lambda requests, ${report.gbSeconds.toFixed(3)} GB-seconds; DynamoDB ${report.readUnits} RRU, ${report.writeUnits} WRU`,
    `  total ${usd(report.total)}` + (report.perMillionChatMessages === undefined ? '' : `, ${usd(report.perMillionChatMessages)} per million chat messages`),
  ].join('\n');
}
