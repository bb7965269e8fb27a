/**
 * A latency histogram cheap enough to record every delivery of a broadcast
 * storm: fixed buckets (10 µs up to 100 ms, then 1 ms up to 60 s), so load
 * processes can add theirs together and percentiles come out exact to a bucket.
 */
const FINE_STEP_MS = 0.01;
const FINE_LIMIT_MS = 100;
const COARSE_STEP_MS = 1;
const COARSE_LIMIT_MS = 60_000;
const FINE_BUCKETS = Math.round(FINE_LIMIT_MS / FINE_STEP_MS);
const BUCKETS = FINE_BUCKETS + Math.round((COARSE_LIMIT_MS - FINE_LIMIT_MS) / COARSE_STEP_MS) + 1;

/** Non-empty buckets only, as [index, count] pairs, so it crosses a process boundary as small JSON. */
export type SparseHistogram = Array<[number, number]>;

export class LatencyHistogram {
  private readonly counts = new Uint32Array(BUCKETS);
  count = 0;

  record(latencyMs: number): void {
    this.counts[bucketOf(latencyMs)]!++;
    this.count++;
  }

  toSparse(): SparseHistogram {
    const sparse: SparseHistogram = [];
    this.counts.forEach((count, index) => {
      if (count > 0) sparse.push([index, count]);
    });
    return sparse;
  }

  addSparse(sparse: SparseHistogram): void {
    for (const [index, count] of sparse) {
      this.counts[index]! += count;
      this.count += count;
    }
  }

  /** The upper edge of the bucket holding the q-th quantile (0 < q ≤ 1); undefined when empty. */
  quantile(q: number): number | undefined {
    if (this.count === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let index = 0; index < BUCKETS; index++) {
      seen += this.counts[index]!;
      if (seen >= rank) return upperEdge(index);
    }
    return upperEdge(BUCKETS - 1);
  }
}

function bucketOf(latencyMs: number): number {
  if (!(latencyMs > 0)) return 0;
  if (latencyMs < FINE_LIMIT_MS) return Math.floor(latencyMs / FINE_STEP_MS);
  return Math.min(BUCKETS - 1, FINE_BUCKETS + Math.floor((latencyMs - FINE_LIMIT_MS) / COARSE_STEP_MS));
}

function upperEdge(index: number): number {
  if (index < FINE_BUCKETS) return (index + 1) * FINE_STEP_MS;
  return FINE_LIMIT_MS + (index - FINE_BUCKETS + 1) * COARSE_STEP_MS;
}
