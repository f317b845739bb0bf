/**
 * Per-request sizes and outcomes for /metrics, as vLLM reports them: prompt and generated tokens
 * of each completed request (histograms with 1-2-5 bounds up to the 1M-token context) and
 * completed requests by finish reason.
 */
import { Histogram, type HistogramSnapshot } from "./histogram.js";

const TOKEN_BOUNDS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000];

export interface RequestStatsSnapshot {
  prompt_tokens: HistogramSnapshot;
  generation_tokens: HistogramSnapshot;
  /** Completed requests by finish reason (stop, length, tool_calls, …). */
  finished: Record<string, number>;
}

export class RequestStats {
  private readonly prompt = new Histogram(TOKEN_BOUNDS);
  private readonly generation = new Histogram(TOKEN_BOUNDS);
  private readonly finished = new Map<string, number>();

  completed(promptTokens: number, generatedTokens: number, finishReason: string): void {
    this.prompt.observe(promptTokens);
    this.generation.observe(generatedTokens);
    this.finished.set(finishReason, (this.finished.get(finishReason) ?? 0) + 1);
  }

  snapshot(): RequestStatsSnapshot {
    return { prompt_tokens: this.prompt.snapshot(), generation_tokens: this.generation.snapshot(), finished: Object.fromEntries(this.finished) };
  }
}
