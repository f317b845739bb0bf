/** A Prometheus-style histogram: fixed upper bounds, a count per bucket, the sum and the count. */

export interface HistogramSnapshot {
  /** Upper bounds of the buckets, ascending. */
  bounds: readonly number[];
  /** Observations per bucket: counts[i] in (bounds[i-1], bounds[i]]; the last entry above every bound. */
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    return { bounds: this.bounds, counts: [...this.counts], sum: this.sum, count: this.count };
  }
}
