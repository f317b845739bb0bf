/**
 * How long steps take, learned from the steps the engine runs: the time of a
 * decode-only step and the extra time per prefill token in a step that also
 * decodes. The scheduler sizes prefill chunks from it so that a long prompt
 * never stretches the running streams' inter-token latency beyond a set factor
 * (the token-budget idea of Sarathi-Serve, with the budget in milliseconds).
 */
const ALPHA = 0.3;
const SAFETY = 0.85;

const ewma = (old: number | null, v: number) => (old === null ? v : old + ALPHA * (v - old));

export class StepCost {
  /** Decode-only step time per row count bucket (rows rounded up to a power of two). */
  private readonly decodeMs = new Map<number, number>();
  /** Per prefill token in steps that also decode (small chunks), and in prefill-only steps (large ones). */
  private prefillPerTokenMs: number | null = null;
  private alonePerTokenMs: number | null = null;

  private static bucket(rows: number): number {
    return 2 ** Math.ceil(Math.log2(Math.max(1, rows)));
  }

  /** Estimated decode-only step time for `rows` rows, or null before one was measured. */
  decodeStepMs(rows: number): number | null {
    const exact = this.decodeMs.get(StepCost.bucket(rows));
    if (exact !== undefined) return exact;
    // Nearest measured bucket below: a step with more rows costs at least that much.
    let best: number | null = null;
    for (const [b, ms] of this.decodeMs) if (b <= StepCost.bucket(rows) && (best === null || ms > best)) best = ms;
    return best;
  }

  /** Prefill milliseconds per token next to decode rows, or null before one was measured. */
  get prefillTokenMs(): number | null {
    // Large chunks cost less per token, so the prefill-only figure is only a first guess.
    return this.prefillPerTokenMs ?? this.alonePerTokenMs;
  }

  record(decodeRows: number, prefillTokens: number, ms: number): void {
    if (prefillTokens === 0) {
      if (decodeRows === 0) return;
      const b = StepCost.bucket(decodeRows);
      this.decodeMs.set(b, ewma(this.decodeMs.get(b) ?? null, ms));
      return;
    }
    if (decodeRows === 0) {
      this.alonePerTokenMs = ewma(this.alonePerTokenMs, ms / prefillTokens);
      return;
    }
    const decode = this.decodeStepMs(decodeRows);
    if (decode !== null) this.prefillPerTokenMs = ewma(this.prefillPerTokenMs, Math.max(0, ms - decode) / prefillTokens);
  }

  /**
   * Prefill tokens that fit next to `decodeRows` decode rows so the step takes at most
   * `factor` times a decode-only step; `fallback` until both costs are known.
   */
  prefillBudget(decodeRows: number, factor: number, fallback: number): number {
    const d = this.decodeStepMs(decodeRows);
    // Only steps that mixed prefill with decoding tell what a small chunk costs: the figure
    // from large prefill-only chunks is several times too low and would overshoot the target.
    if (d === null) return fallback;
    const p = this.prefillPerTokenMs;
    const fit = (perToken: number) => Math.floor((SAFETY * (factor - 1) * d) / perToken);
    if (p === null || p <= 0) {
      // Until then the prefill-only figure may still say the first guess is too many (where a
      // token costs more than the guess allows, as with real layer dimensions, where the first
      // chunk next to 16 streams took 2.6x a decode step); it never makes the guess larger.
      const a = this.alonePerTokenMs;
      return a !== null && a > 0 ? Math.min(fallback, fit(a)) : fallback;
    }
    // Aim a little under the target: one slow step is one sample of every stream's latency tail.
    return fit(p);
  }
}
