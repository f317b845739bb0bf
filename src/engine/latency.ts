/**
 * Request latency histograms for /metrics, as an operator of vLLM or SGLang reads them: time to
 * first token, the time between a request's successive tokens, end-to-end time and time in the
 * queue, in seconds. The bucket bounds are vLLM's (plus a few below 10 ms for the inter-token
 * latency of small models), so dashboards and alert rules written for it carry over.
 */
import { Histogram, type HistogramSnapshot } from "./histogram.js";

export type LatencyKind = "ttft" | "itl" | "e2e" | "queue";

export type LatencySnapshot = Record<LatencyKind, HistogramSnapshot>;

const REQUEST_SECONDS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];

export const LATENCY_BOUNDS: Record<LatencyKind, readonly number[]> = {
  ttft: [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560],
  itl: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80],
  e2e: REQUEST_SECONDS,
  queue: REQUEST_SECONDS,
};

export class LatencyRecorder {
  private readonly histograms: Record<LatencyKind, Histogram> = {
    ttft: new Histogram(LATENCY_BOUNDS.ttft),
    itl: new Histogram(LATENCY_BOUNDS.itl),
    e2e: new Histogram(LATENCY_BOUNDS.e2e),
    queue: new Histogram(LATENCY_BOUNDS.queue),
  };

  observe(kind: LatencyKind, seconds: number): void {
    this.histograms[kind].observe(Math.max(0, seconds));
  }

  snapshot(): LatencySnapshot {
    const h = this.histograms;
    return { ttft: h.ttft.snapshot(), itl: h.itl.snapshot(), e2e: h.e2e.snapshot(), queue: h.queue.snapshot() };
  }
}

/** What the histograms read of a request: its timestamps and the tokens it has so far. */
export interface TimedRequest {
  timing(): { createdAt: number; startedAt: number; firstTokenAt: number };
  readonly generated: readonly number[];
}

/**
 * The histograms of an engine's requests (or a gateway's): after each step that may have moved
 * a request, its queue time once it runs, its time to first token once it has one, then one
 * inter-token gap per step that gave it tokens (a verify step's several tokens, or an upstream
 * chunk's, arrive together, as the client sees them); at the end its end-to-end time.
 */
export class RequestLatency {
  private readonly recorder = new LatencyRecorder();
  private readonly seen = new WeakMap<TimedRequest, { queued: boolean; lastTokenAt: number; tokens: number }>();

  afterStep(req: TimedRequest, now = performance.now()): void {
    const t = req.timing();
    const seen = this.seen.get(req) ?? { queued: false, lastTokenAt: 0, tokens: 0 };
    if (!seen.queued && t.startedAt > 0) {
      this.recorder.observe("queue", (t.startedAt - t.createdAt) / 1000);
      seen.queued = true;
    }
    if (seen.lastTokenAt === 0 && t.firstTokenAt > 0) {
      this.recorder.observe("ttft", (t.firstTokenAt - t.createdAt) / 1000);
      seen.lastTokenAt = now;
    } else if (seen.lastTokenAt > 0 && req.generated.length > seen.tokens) {
      this.recorder.observe("itl", (now - seen.lastTokenAt) / 1000);
      seen.lastTokenAt = now;
    }
    seen.tokens = req.generated.length;
    this.seen.set(req, seen);
  }

  /** A request that completed (not failed or cancelled): its end-to-end time. */
  completed(req: TimedRequest, now = performance.now()): void {
    this.recorder.observe("e2e", (now - req.timing().createdAt) / 1000);
  }

  snapshot(): LatencySnapshot {
    return this.recorder.snapshot();
  }
}
