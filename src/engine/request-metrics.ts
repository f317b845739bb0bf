/**
 * What /metrics reports of requests, as an operator of vLLM or SGLang reads it: time to first
 * token, time between a request's token steps, end-to-end and queue time (seconds), and each
 * completed request's prompt and generated tokens and finish reason. The bucket bounds are
 * vLLM's (plus a few below 10 ms for the inter-token latency of small models; 1-2-5 token
 * bounds up to the 1M-token context), so dashboards and alert rules written for it carry over.
 */
import { Histogram, type HistogramSnapshot } from "./histogram.js";

export type LatencyKind = "ttft" | "itl" | "e2e" | "queue";

export type LatencySnapshot = Record<LatencyKind, HistogramSnapshot>;

export interface RequestStatsSnapshot {
  prompt_tokens: HistogramSnapshot;
  generation_tokens: HistogramSnapshot;
  /** Completed requests by finish reason (stop, length, tool_calls, …). */
  finished: Record<string, number>;
}

const REQUEST_SECONDS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
const TOKEN_BOUNDS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000];

export const LATENCY_BOUNDS: Record<LatencyKind, readonly number[]> = {
  ttft: [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560],
  itl: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80],
  e2e: REQUEST_SECONDS,
  queue: REQUEST_SECONDS,
};

/** What the metrics read of a request (a Sequence, in the engine and in the gateway). */
export interface MeasuredRequest {
  /** performance.now() stamps; 0: not yet. */
  timing(): { createdAt: number; startedAt: number; firstTokenAt: number };
  readonly generated: readonly number[];
  readonly promptLength: number;
  readonly finishReason: string | null;
}

/**
 * After each step that may have moved a request (a model step, an upstream chunk): its queue
 * time once it runs, its time to first token once it has one, then one inter-token gap per
 * step that gave it tokens (a verify step's several tokens, or a chunk's, arrive together, as
 * the client sees them). When it completes: also its end-to-end time, sizes and finish reason.
 */
export class RequestMetrics {
  private readonly latency: Record<LatencyKind, Histogram> = {
    ttft: new Histogram(LATENCY_BOUNDS.ttft),
    itl: new Histogram(LATENCY_BOUNDS.itl),
    e2e: new Histogram(LATENCY_BOUNDS.e2e),
    queue: new Histogram(LATENCY_BOUNDS.queue),
  };
  private readonly prompt = new Histogram(TOKEN_BOUNDS);
  private readonly generation = new Histogram(TOKEN_BOUNDS);
  private readonly finished = new Map<string, number>();
  private readonly seen = new WeakMap<MeasuredRequest, { queued: boolean; lastTokenAt: number; tokens: number }>();

  afterStep(req: MeasuredRequest, now = performance.now()): void {
    const t = req.timing();
    const seen = this.seen.get(req) ?? { queued: false, lastTokenAt: 0, tokens: 0 };
    if (!seen.queued && t.startedAt > 0) {
      this.latency.queue.observe((t.startedAt - t.createdAt) / 1000);
      seen.queued = true;
    }
    if (seen.lastTokenAt === 0 && t.firstTokenAt > 0) {
      this.latency.ttft.observe((t.firstTokenAt - t.createdAt) / 1000);
      seen.lastTokenAt = now;
    } else if (seen.lastTokenAt > 0 && req.generated.length > seen.tokens) {
      this.latency.itl.observe((now - seen.lastTokenAt) / 1000);
      seen.lastTokenAt = now;
    }
    seen.tokens = req.generated.length;
    this.seen.set(req, seen);
  }

  /** A request that completed (not failed or cancelled): its last step, end-to-end time, sizes and finish reason. */
  completed(req: MeasuredRequest, now = performance.now()): void {
    this.afterStep(req, now);
    this.latency.e2e.observe((now - req.timing().createdAt) / 1000);
    this.prompt.observe(req.promptLength);
    this.generation.observe(req.generated.length);
    const reason = req.finishReason ?? "stop";
    this.finished.set(reason, (this.finished.get(reason) ?? 0) + 1);
  }

  latencySnapshot(): LatencySnapshot {
    const h = this.latency;
    return { ttft: h.ttft.snapshot(), itl: h.itl.snapshot(), e2e: h.e2e.snapshot(), queue: h.queue.snapshot() };
  }

  statsSnapshot(): RequestStatsSnapshot {
    return { prompt_tokens: this.prompt.snapshot(), generation_tokens: this.generation.snapshot(), finished: Object.fromEntries(this.finished) };
  }
}
