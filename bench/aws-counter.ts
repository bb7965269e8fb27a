/**
 * Counts the HTTP requests the AWS handlers make, where they arrive: at the
 * embedded dynalite (by DynamoDB operation, which its thread reports) and at
 * the emulator's @connections and Lambda APIs (by method). Both run in the
 * bench process, so node:diagnostics_channel hears of every request they
 * receive without a proxy in front and without touching either.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { DYNALITE_REQUEST_CHANNEL } from '../scripts/emulator/dynamo.js';

const CHANNEL = 'http.server.request.start';

export interface RequestCounts {
  /** DynamoDB operation name → requests. */
  dynamo: Record<string, number>;
  /** HTTP method → @connections requests (POST is PostToConnection, GET GetConnection, DELETE DeleteConnection). */
  management: Record<string, number>;
  lambdaInvokes: number;
}

export class RequestCounter {
  private counts: RequestCounts = emptyCounts();
  private readonly listener = (message: unknown) => this.count((message as { request: IncomingMessage }).request);
  private readonly dynamoListener = (message: unknown) => {
    const { operation } = message as { operation: string };
    this.counts.dynamo[operation] = (this.counts.dynamo[operation] ?? 0) + 1;
  };

  start(): void {
    subscribe(CHANNEL, this.listener);
    subscribe(DYNALITE_REQUEST_CHANNEL, this.dynamoListener);
  }

  stop(): void {
    unsubscribe(CHANNEL, this.listener);
    unsubscribe(DYNALITE_REQUEST_CHANNEL, this.dynamoListener);
  }

  reset(): void {
    this.counts = emptyCounts();
  }

  snapshot(): RequestCounts {
    return structuredClone(this.counts);
  }

  /** All requests counted so far, of every kind; stops moving once the handlers are done. */
  get total(): number {
    return sum(Object.values(this.counts.dynamo)) + sum(Object.values(this.counts.management)) + this.counts.lambdaInvokes;
  }

  private count(request: IncomingMessage): void {
    const path = request.url ?? '';
    if (path.includes('/@connections/') || path.includes('/%40connections/')) {
      const method = request.method ?? 'GET';
      this.counts.management[method] = (this.counts.management[method] ?? 0) + 1;
    } else if (/\/functions\/[^/]+\/invocations/.test(path)) {
      this.counts.lambdaInvokes++;
    }
  }
}

function emptyCounts(): RequestCounts {
  return { dynamo: {}, management: {}, lambdaInvokes: 0 };
}

export function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** Waits until no request has arrived for a while: the handlers are done with what was asked of them. */
export async function quiet(counter: RequestCounter, quietMs = 400, maxMs = 30_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  let last = counter.total;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, quietMs));
    if (counter.total === last) return;
    last = counter.total;
  }
}
