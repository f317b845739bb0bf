/**
 * Who runs, and what each running sequence gets in the next step.
 *
 * `schedule()` is the whole policy, in three parts:
 *  - Reservations: a running sequence holds state memory for its length plus a
 *    growth allowance (spec §6). When it needs more and the budget is spent, the
 *    newest running sequences are preempted (their state freed, they go back to
 *    the head of the queue and later recompute their context, mostly restored
 *    from the prefix cache), as vLLM does; nothing running is failed for memory.
 *  - Admission: waiting sequences start in arrival order while a slot and their
 *    reservation fit. The queue is bounded and refuses beyond it; a request that
 *    could never fit is refused by the engine before it queues.
 *  - Priorities (policy "priority", vLLM's): the queue is ordered by (priority,
 *    arrival), lower first; memory preemption takes the running sequence last in
 *    that order rather than the newest; and a waiting sequence that finds no slot
 *    or no memory preempts running ones of a strictly lower priority (higher
 *    number) when that makes room for it. Equal priorities never preempt each
 *    other for admission, so within a priority it is first come, first served.
 *    A step's prompt budget also goes to the most urgent prompts first.
 *  - The step: every decoding sequence gets its next token(s) first; prefill
 *    chunks fill the rest of a token budget. While streams are decoding, that
 *    budget is sized in time (step-cost.ts) so a long prompt stretches their
 *    inter-token latency by at most `prefillLatencyFactor`; alone, a prompt is
 *    prefilled in steps of up to `maxBatchTokens`. Non-final chunks end on
 *    prefix-cache block boundaries so each can be snapshotted, and a chunk
 *    ends where a shared prefix's blocks do, so other tenants can reuse them.
 */
import { EngineError } from "./errors.js";
import type { Sequence } from "./sequence.js";
import { StepCost } from "./step-cost.js";
import type { SchedulingPolicy } from "./types.js";

/** The policies EngineOptions.schedulingPolicy takes (checked at load; the CLI's --scheduling-policy). */
export const SCHEDULING_POLICIES: readonly SchedulingPolicy[] = ["fcfs", "priority"];

export interface SchedulerConfig {
  maxRunning: number;
  maxQueued: number;
  stateBudgetBytes: number;
  /** Cap on the tokens of one step across all sequences. */
  maxBatchTokens: number;
  /** Cap on one sequence's prefill chunk (Infinity: the step's budget). */
  prefillChunk: number;
  /** Prefix-cache block size, where chunks end so they can be snapshotted (0: no cache, no alignment). */
  blockTokens: number;
  /** Reservation growth step in tokens (Infinity: prompt + max_tokens up front). */
  reserveTokens: number;
  /** A step with prefill may take this many times a decode-only step. */
  prefillLatencyFactor: number;
  /** "fcfs" (default): arrival order. "priority": each request's priority first (lower runs first). */
  policy?: SchedulingPolicy;
}

/** What the scheduler needs from the engine. */
export interface SchedulerHooks {
  /** State bytes of a sequence of `tokens` tokens. */
  bytesFor(tokens: number): number;
  /** Tokens a decoding sequence feeds in the next step (2 when verifying a draft). */
  decodeWidth(seq: Sequence): number;
  /** An admitted sequence gets its state (fresh, or restored from the prefix cache). */
  start(seq: Sequence): void;
  /** A preempted sequence gives its state up. */
  preempt(seq: Sequence): void;
}

export interface PrefillWork {
  seq: Sequence;
  tokens: number[];
  /** This chunk ends the context: its last position yields the next token. */
  final: boolean;
}

export interface StepPlan {
  prefill: PrefillWork[];
  decode: Sequence[];
}

/** Before any step was timed, a prefill chunk next to decoding streams has this many tokens. */
const FIRST_GUESS_TOKENS = 64;
/** However busy decoding is, a prompt advances by at least this many tokens a step. */
const MIN_PREFILL_TOKENS = 8;
/**
 * Prompt tokens per step of a request with prompt logprobs: each of its positions gets a row
 * of logits in the runner (vocabulary × 4 bytes, 0.5 MB for V4), reduced there to logprobs.
 */
export const PROMPT_LOGPROBS_CHUNK = 64;

export class Scheduler {
  readonly waiting: Sequence[] = [];
  readonly running: Sequence[] = [];
  reservedBytes = 0;
  readonly cost = new StepCost();
  /** Arrival ordinals, kept across preemptions: a sequence's place among equal priorities. */
  private readonly arrivals = new WeakMap<Sequence, number>();
  private arrived = 0;

  constructor(readonly cfg: SchedulerConfig) {}

  private get byPriority(): boolean {
    return this.cfg.policy === "priority";
  }

  private priority(seq: Sequence): number {
    return this.byPriority ? (seq.req.priority ?? 0) : 0;
  }

  /** Whether `a` runs before `b`: lower priority number, then earlier arrival. */
  private before(a: Sequence, b: Sequence): boolean {
    const pa = this.priority(a);
    const pb = this.priority(b);
    return pa !== pb ? pa < pb : this.arrivals.get(a)! < this.arrivals.get(b)!;
  }

  /** Into the queue at its place in (priority, arrival) order. */
  private queue(seq: Sequence): void {
    let i = this.waiting.length;
    while (i > 0 && this.before(seq, this.waiting[i - 1]!)) i--;
    this.waiting.splice(i, 0, seq);
  }

  /** The running sequence that gives way first: the newest under fcfs, the last in (priority, arrival) order otherwise. */
  private victim(): Sequence | undefined {
    if (!this.byPriority) return this.running[this.running.length - 1];
    return this.running.reduce<Sequence | undefined>((worst, s) => (worst === undefined || this.before(worst, s) ? s : worst), undefined);
  }

  get idle(): boolean {
    return this.waiting.length === 0 && this.running.length === 0;
  }

  /** Refuses when the queue is full; a request that can never fit is refused earlier (engine). */
  enqueue(seq: Sequence): void {
    // Requests not yet admitted count against free slots first, then against the queue.
    if (this.running.length + this.waiting.length >= this.cfg.maxRunning + this.cfg.maxQueued) {
      throw new EngineError(
        "overloaded",
        `the engine is overloaded: ${this.running.length} sequences running and ${this.waiting.length} queued (limit ${this.cfg.maxQueued}); retry later`,
      );
    }
    if (!this.arrivals.has(seq)) this.arrivals.set(seq, this.arrived++);
    this.queue(seq);
  }

  remove(seq: Sequence): void {
    const w = this.waiting.indexOf(seq);
    if (w >= 0) this.waiting.splice(w, 1);
    const r = this.running.indexOf(seq);
    if (r >= 0) {
      this.running.splice(r, 1);
      this.release(seq);
    }
  }

  private release(seq: Sequence): void {
    this.reservedBytes -= seq.reservedBytes;
    seq.reservedBytes = 0;
    seq.reservedTokens = 0;
  }

  schedule(hooks: SchedulerHooks): StepPlan {
    this.reserve(hooks);
    this.admit(hooks);
    return this.plan(hooks);
  }

  /** Tokens to reserve for `seq` once it holds `from` tokens. */
  private reservation(seq: Sequence, from: number): number {
    return Math.min(seq.promptLength + seq.req.maxTokens, from + this.cfg.reserveTokens);
  }

  /** Keeps each decoding sequence's reservation ahead of it, preempting the victim() when memory runs out. */
  private reserve(hooks: SchedulerHooks): void {
    for (const seq of [...this.running]) {
      if (!this.running.includes(seq)) continue; // preempted for an earlier one's growth
      if (seq.finished || seq.prefilling || !seq.state) continue;
      const len = seq.state.length + hooks.decodeWidth(seq);
      if (len <= seq.reservedTokens) continue;
      const tokens = this.reservation(seq, len);
      const bytes = hooks.bytesFor(tokens) - seq.reservedBytes;
      while (this.reservedBytes + bytes > this.cfg.stateBudgetBytes && this.running.includes(seq)) {
        this.preempt(this.victim()!, hooks);
      }
      if (!this.running.includes(seq)) continue; // it gave way itself
      seq.reservedBytes += bytes;
      this.reservedBytes += bytes;
      seq.reservedTokens = tokens;
    }
  }

  private preempt(seq: Sequence, hooks: SchedulerHooks): void {
    this.running.splice(this.running.indexOf(seq), 1);
    this.release(seq);
    hooks.preempt(seq);
    this.queue(seq);
  }

  /** Starts waiting sequences in queue order while slots and state memory allow. */
  private admit(hooks: SchedulerHooks): void {
    while (this.waiting.length > 0) {
      const seq = this.waiting[0]!;
      const tokens = this.reservation(seq, seq.contextLength);
      const bytes = hooks.bytesFor(tokens);
      const fits = this.running.length < this.cfg.maxRunning && (this.running.length === 0 || this.reservedBytes + bytes <= this.cfg.stateBudgetBytes);
      // Strict order: a big request at the head waits for memory rather than being overtaken forever.
      if (!fits && !this.makeRoom(seq, bytes, hooks)) break;
      this.waiting.shift();
      seq.reservedBytes = bytes;
      seq.reservedTokens = tokens;
      this.reservedBytes += bytes;
      this.running.push(seq);
      hooks.start(seq);
    }
  }

  /**
   * Priority policy: preempts running sequences of a strictly lower priority than `seq`, the
   * last in order first, when that frees a slot and `bytes` of state for it; otherwise
   * preempts nothing. Returns whether `seq` now fits.
   */
  private makeRoom(seq: Sequence, bytes: number, hooks: SchedulerHooks): boolean {
    if (!this.byPriority) return false;
    const lower = this.running.filter((s) => this.priority(s) > this.priority(seq));
    const staying = this.running.length - lower.length;
    const freed = lower.reduce((n, s) => n + s.reservedBytes, 0);
    if (lower.length === 0 || staying >= this.cfg.maxRunning || (staying > 0 && this.reservedBytes - freed + bytes > this.cfg.stateBudgetBytes)) return false;
    while (this.running.length >= this.cfg.maxRunning || (this.running.length > 0 && this.reservedBytes + bytes > this.cfg.stateBudgetBytes)) {
      this.preempt(this.victim()!, hooks);
    }
    return true;
  }

  private plan(hooks: SchedulerHooks): StepPlan {
    // A sequence whose reader is behind waits with its slot and state (backpressure.ts).
    const decode = this.running.filter((s) => !s.finished && !s.prefilling && !s.readerBlocked);
    const decodeTokens = decode.reduce((n, s) => n + hooks.decodeWidth(s), 0);
    const B = this.cfg.blockTokens;
    let budget = this.cfg.maxBatchTokens - decodeTokens;
    if (decode.length > 0) {
      const timed = this.cost.prefillBudget(decode.length, this.cfg.prefillLatencyFactor, FIRST_GUESS_TOKENS);
      budget = Math.min(budget, Math.max(MIN_PREFILL_TOKENS, timed));
    }
    const prefill: PrefillWork[] = [];
    // By priority, the prompt budget goes to the most urgent prompts first.
    const order = this.byPriority ? [...this.running].sort((a, b) => (this.before(a, b) ? -1 : 1)) : this.running;
    for (const seq of order) {
      if (seq.finished || !seq.prefilling || seq.readerBlocked) continue;
      if (budget <= 0) break;
      const start = seq.prefilled;
      const P = seq.contextLength;
      const cap = typeof seq.req.promptLogprobs === "number" ? Math.min(this.cfg.prefillChunk, PROMPT_LOGPROBS_CHUNK) : this.cfg.prefillChunk;
      let end = Math.min(P, start + Math.min(cap, budget));
      // Non-final chunks end on block boundaries, and the last boundary inside the context always
      // gets one: that is the snapshot the next turn of the same conversation will hit.
      const aligned = B > 0 ? Math.floor((end < P ? end : P - 1) / B) * B : 0;
      if (aligned > start && (end < P || seq.req.useCache)) end = aligned;
      // So does the end of a shared prefix's last whole block: the snapshot other tenants can hit
      // (later snapshots carry this tenant's salt).
      const shared = B > 0 && seq.req.useCache ? Math.floor(seq.req.sharedPrefixTokens / B) * B : 0;
      if (shared > start && shared < end) end = shared;
      prefill.push({ seq, tokens: seq.context.slice(start, end), final: end === P });
      budget -= end - start;
    }
    return { prefill, decode };
  }
}
