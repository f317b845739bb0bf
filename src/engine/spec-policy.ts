/**
 * How many drafts to verify per step: a cost model fed by what the engine measures.
 *
 * Per step with R decoding sequences each verifying k drafts, the engine emits R·(1 + E(k))
 * tokens for T(R·(k+1)) + R·D(k) milliseconds: T is the measured time of a decode step of that
 * many rows (on a CPU MoE a verify row reads its own routed experts, so rows are far from
 * free), D the measured draft cost, and E(k) = Σ_{i≤k} p_i the expected accepted drafts, with
 * p_i the chance that the first i all survive: α^i from the measured per-draft acceptance α
 * (EMA), or for DSpark the cumulative product of the confidence head's σ(conf_j), rescaled so
 * its mean matches α. `choose` takes the k (0 … max) with the most tokens per millisecond;
 * `trim` then drops DSpark drafts whose expected yield is below what a row costs at that rate,
 * so a full step or a low-confidence block verifies fewer. When acceptance is near zero (a
 * random-weight model) k = 0 wins and drafting stops, except for a rare probe (one draft, at
 * intervals that double while probes fail and that keep probes under 2% of the time) so a
 * drafter that starts to agree is noticed. A DSpark probe's cost includes the ring rows its
 * sequence owes (written in one batch before it drafts, about a main_proj row each: up to a
 * window of them: at flash-slice ~60 ms beside a ~100 ms draft).
 */
const ALPHA = 0.15;
const PRIOR_ACCEPTANCE = 0.5;
const PROBE_FIRST = 16;
const PROBE_MAX = 1024;
/** Probes may cost at most this share of decoding time… */
const PROBE_SHARE = 0.02;
/** …but one comes at least this often. */
const PROBE_CAP = 8192;

/**
 * More drafts must promise this much more than fewer: step times measured on a shared machine
 * vary by more than a rarely accepted draft gains, and noise alone (a 2-row step timed faster
 * than a 1-row one) must not keep auto drafting.
 */
const DRAFT_MARGIN = 1.05;

/**
 * Drafts whose expected yield (accepted tokens per sequence) is below this are never chosen,
 * whatever the step times say: no draft and verify row costs as little as 5% of a step, so a
 * rate that favours them only tells which step time the machine's noise inflated (under load,
 * a stale 2-row time against a 1-row time measured in a slow moment made auto draft again
 * and again after its drafts had all failed). Probes still come.
 */
const MIN_DRAFT_GAIN = 0.05;

const ewma = (old: number | null, v: number, a = ALPHA) => (old === null ? v : old + a * (v - old));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export interface SpecPolicyOptions {
  /** Most drafts a step may verify (the DSpark block size, the MTP chain cap, the window). */
  maxDrafts: number;
  /** The drafter always drafts at least one token (an explicit --speculative mtp|dspark); auto may choose 0. */
  alwaysDraft: boolean;
  /** Verify exactly this many drafts (benchmarks, tests); the cost model is bypassed. */
  forced?: number;
  /** DSpark: one forward drafts the whole block, so its cost does not grow with k. */
  blockDraft: boolean;
  /**
   * A draft's cost in one-sequence decode steps before any draft is timed (the weight bytes
   * it reads over a step's, model/draft-cost.ts). With it, auto drafts only where the prior
   * says it pays, and even its first probe keeps to the probe budget; without it, auto's first
   * decode step drafts to measure.
   */
  priorDraftSteps?: number;
}

/** What the policy knows and chose, for benchmarks and operators (Engine.speculation()). */
export interface SpecPolicyState {
  /** Per-draft acceptance (EMA): the chance a draft survives given the ones before it did. */
  acceptance: number;
  /**
   * Drafts per sequence the last step verified because they pay (0: not drafting). A probe's
   * single draft is exploration, not a choice that drafting pays, and counts as 0 here.
   */
  chosenDrafts: number;
  /** The last step was a probe (or auto's first, unmeasured exploration). */
  probing: boolean;
  /** Measured decode-step milliseconds by row count (EMA). */
  stepMs: Record<number, number>;
  /** Measured draft milliseconds per sequence and draft token (MTP) or block (DSpark). */
  draftMs: number | null;
  /** Measured milliseconds per owed DSpark ring row settled (null: none timed). */
  settleMs: number | null;
  /** Steps until the next probe while drafting does not pay. */
  probeIn: number;
}

export class SpecPolicy {
  private acceptance = PRIOR_ACCEPTANCE;
  /** Mean σ(conf) over verified DSpark drafts (EMA), to rescale confidences to measured acceptance. */
  private meanConfidence: number | null = null;
  private readonly stepMs = new Map<number, number>();
  private draftMs: number | null = null;
  private settleMs: number | null = null;
  private probeInterval = PROBE_FIRST;
  private sinceDraft = 0;
  private chosen = 0;
  private probing = false;

  constructor(private readonly opts: SpecPolicyOptions) {}

  /** A decode-only step of `rows` rows (drafts included) took `ms`. */
  recordStep(rows: number, ms: number): void {
    if (rows > 0 && ms >= 0) this.stepMs.set(rows, ewma(this.stepMs.get(rows) ?? null, ms));
  }

  /** A draft call for `units` (sequence × draft token for MTP, sequence for DSpark) took `ms`. */
  recordDraft(units: number, ms: number): void {
    if (units > 0 && ms >= 0) this.draftMs = ewma(this.draftMs, ms / units);
  }

  /**
   * A decode step of `rows` rows that also settled `owed` owed DSpark ring rows took `ms`: its
   * excess over a plain step of that many rows (`plain`, default the estimate) is the
   * settling's. (Not a plain step: recordStep must not see it.)
   */
  recordSettle(rows: number, owed: number, ms: number, plain = this.stepTime(rows)): void {
    if (owed <= 0 || plain === null || !(ms >= 0)) return;
    this.settleMs = ewma(this.settleMs, Math.max(0, ms - plain) / owed);
  }

  /** One sequence verified `k` drafts and kept `accepted`; `confidence` are the DSpark logits of those k. */
  recordVerify(k: number, accepted: number, confidence?: readonly number[] | null): void {
    if (k <= 0) return;
    // Drafts after the first rejection were never judged: accepted + (one rejection, if any) observations.
    const judged = Math.min(k, accepted + 1);
    for (let i = 0; i < judged; i++) this.acceptance = ewma(this.acceptance, i < accepted ? 1 : 0);
    if (confidence) for (let i = 0; i < judged; i++) this.meanConfidence = ewma(this.meanConfidence, sigmoid(confidence[i]!));
    if (accepted > 0) this.probeInterval = PROBE_FIRST;
  }

  /** Estimated milliseconds of a decode step of `rows` rows, from the measurements (null before any). */
  stepTime(rows: number): number | null {
    const pts = [...this.stepMs];
    if (pts.length === 0) return null;
    // A step never costs less than the slowest measured one with fewer rows: each row count's
    // EMA is updated only when such steps run, so a 2-row time from before drafting stopped can
    // sit below 1-row times measured in a slow moment since, and make a draft look free.
    const floor = Math.max(0, ...pts.filter(([r]) => r < rows).map(([, t]) => t));
    const exact = this.stepMs.get(rows);
    if (exact !== undefined) return Math.max(exact, floor);
    if (pts.length === 1) {
      // One measurement: until another row count is seen, assume extra rows cost a quarter of
      // an average row (optimistic, so the policy tries a k and measures it).
      const [r0, t0] = pts[0]!;
      return Math.max(t0 * (1 + (0.25 * (rows - r0)) / r0), t0 * 0.5);
    }
    // Least-squares line through the measured (rows, ms) points, above the floor.
    const n = pts.length;
    const mx = pts.reduce((s, [r]) => s + r, 0) / n;
    const my = pts.reduce((s, [, t]) => s + t, 0) / n;
    const sxx = pts.reduce((s, [r]) => s + (r - mx) ** 2, 0);
    const slope = Math.max(0, pts.reduce((s, [r, t]) => s + (r - mx) * (t - my), 0) / sxx);
    return Math.max(floor, my + slope * (rows - mx));
  }

  /** Expected accepted drafts among the first k, by position (p_1 … p_k, cumulative survival). */
  survival(k: number, confidence?: readonly number[] | null): number[] {
    const out: number[] = [];
    let p = 1;
    const scale = confidence && this.meanConfidence ? this.acceptance / this.meanConfidence : 1;
    for (let i = 0; i < k; i++) {
      const a = confidence ? Math.min(1, scale * sigmoid(confidence[i] ?? -Infinity)) : this.acceptance;
      p *= a;
      out.push(p);
    }
    return out;
  }

  private draftCost(k: number, seqs: number): number {
    if (k === 0) return 0;
    const prior = this.opts.priorDraftSteps;
    const one = this.draftMs ?? (prior !== undefined ? prior * (this.stepTime(1) ?? 0) : (this.stepTime(seqs) ?? 0) / Math.max(1, seqs) / 2);
    return seqs * one * (this.opts.blockDraft ? 1 : k);
  }

  /** Expected tokens per millisecond of a step where `seqs` sequences each verify k drafts (null: unknown). */
  rate(seqs: number, k: number): number | null {
    const t = this.stepTime(seqs * (k + 1));
    if (t === null) return null;
    const gain = this.survival(k).reduce((s, p) => s + p, 0);
    return (seqs * (1 + gain)) / (t + this.draftCost(k, seqs));
  }

  /**
   * True when the last `choose` is exploration (nothing measured yet, or a probe while drafting
   * does not pay): then one sequence drafts, not all of them, so a batch never pays a whole
   * batch's drafts to learn what one sequence's tell.
   */
  get probe(): boolean {
    return this.probing;
  }

  /** Drafting pays: every sequence of the step drafts (not a probe, not auto's exploration). */
  get drafting(): boolean {
    return this.chosen > 0 && !this.probing;
  }

  /**
   * Drafts per sequence for a step with `seqs` decoding sequences (before drafting); `owed`:
   * the ring rows the sequence a probe would draft for owes (DSpark), part of a probe's cost;
   * `canProbe` false: no sequence could take a probe's draft now (each has at most one token
   * left), so a due probe waits instead of being spent on nothing.
   */
  choose(seqs: number, owed = 0, canProbe = true): number {
    const max = this.opts.maxDrafts;
    this.probing = false;
    if (this.opts.forced !== undefined) return (this.chosen = Math.min(this.opts.forced, max));
    const lo = this.opts.alwaysDraft ? 1 : 0;
    let best = lo;
    let bestRate = -1;
    for (let k = lo; k <= max; k++) {
      const r = this.rate(seqs, k);
      if (r === null && this.opts.priorDraftSteps !== undefined && !this.opts.alwaysDraft) {
        // Nothing measured yet, but a prior: time a plain step first, then let the model decide.
        best = 0;
        break;
      }
      if (r === null) {
        // Nothing measured yet: start with one draft (auto's first steps are its first measurements).
        best = Math.max(lo, Math.min(1, max));
        this.probing = !this.opts.alwaysDraft;
        break;
      }
      if (k > lo && this.survival(k).reduce((sum, p) => sum + p, 0) < MIN_DRAFT_GAIN) break;
      if (r > bestRate * (bestRate < 0 ? 1 : DRAFT_MARGIN)) {
        best = k;
        bestRate = r;
      }
    }
    if (best === 0) {
      if (++this.sinceDraft >= this.probeDue(seqs, owed) && canProbe) {
        this.sinceDraft = 0;
        this.probeInterval = Math.min(PROBE_MAX, this.probeInterval * 2);
        best = Math.min(1, max);
        this.probing = true;
      }
    } else {
      this.sinceDraft = 0;
    }
    return (this.chosen = best);
  }

  /**
   * Steps between probes: the doubling interval, and at least as many as keep the probes'
   * measured extra cost (settling the owed ring rows, one sequence's draft and one more row)
   * under PROBE_SHARE of the time spent.
   */
  private probeDue(seqs: number, owed: number): number {
    const t = this.stepTime(seqs);
    if (t === null || t <= 0) return this.probeInterval;
    const extra = Math.max(0, (this.stepTime(seqs + 1) ?? t) - t) + this.draftCost(1, 1) + owed * (this.settleMs ?? 0);
    return Math.min(PROBE_CAP, Math.max(this.probeInterval, Math.ceil(extra / (PROBE_SHARE * t))));
  }

  /**
   * After a DSpark block: how many of its first `k` drafts to verify, dropping the tail whose
   * expected yield (survival) is worth less than the row it occupies at the step's rate.
   */
  trim(k: number, seqs: number, confidence: readonly number[] | null): number {
    if (!confidence || this.opts.forced !== undefined || k <= 1) return k;
    const rows = seqs * (k + 1);
    const t = this.stepTime(rows);
    const rate = this.rate(seqs, k);
    if (t === null || rate === null) return k;
    const rowMs = Math.max(0, (this.stepTime(rows) ?? 0) - (this.stepTime(rows - 1) ?? 0));
    const p = this.survival(k, confidence);
    let keep = k;
    while (keep > (this.opts.alwaysDraft ? 1 : 0) && p[keep - 1]! < rate * rowMs) keep--;
    return keep;
  }

  /**
   * Steps until drafting may next happen with `seqs` decoding sequences: 0 while drafting (or
   * before anything is measured), else the steps left to the next probe. Until the probe is
   * near, the engine's DSpark sequences owe their ring rows instead of writing them each step;
   * the probe's draft writes them in one batch, so it drafts from the same rings.
   */
  stepsToDraft(seqs: number, owed = 0): number {
    if (this.opts.forced !== undefined || this.opts.alwaysDraft || this.chosen > 0 || this.stepTime(seqs) === null) return 0;
    return Math.max(0, this.probeDue(seqs, owed) - this.sinceDraft);
  }

  state(): SpecPolicyState {
    return {
      acceptance: this.acceptance,
      chosenDrafts: this.probing ? 0 : this.chosen,
      probing: this.probing,
      stepMs: Object.fromEntries(this.stepMs),
      draftMs: this.draftMs,
      settleMs: this.settleMs,
      probeIn: this.probeInterval - this.sinceDraft,
    };
  }
}
