/**
 * Who runs and what each running sequence gets in the next step.
 *
 * Admission: a waiting sequence starts when a slot is free and the state it
 * needs for its prompt plus a growth allowance (spec §6) fits in the state
 * budget; the reservation is extended as it grows (see grow). The queue is
 * bounded and refuses beyond it. Planning: every decoding sequence gets its
 * next token(s); prompts still being prefilled share the remaining token
 * budget in chunks, so one long prompt never stalls the others. Non-final
 * chunks end on prefix-cache block boundaries so each can be snapshotted.
 */
import { EngineError } from "./errors.js";
import type { Sequence } from "./sequence.js";

export interface SchedulerConfig {
  maxRunning: number;
  maxQueued: number;
  stateBudgetBytes: number;
  prefillChunk: number;
  maxBatchTokens: number;
  blockTokens: number;
}

export interface PrefillWork {
  seq: Sequence;
  tokens: number[];
  /** This chunk ends the prompt: its last position yields the first token. */
  final: boolean;
}

export interface StepPlan {
  prefill: PrefillWork[];
  decode: Sequence[];
}

export class Scheduler {
  readonly waiting: Sequence[] = [];
  readonly running: Sequence[] = [];
  reservedBytes = 0;

  constructor(readonly cfg: SchedulerConfig) {}

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
    this.waiting.push(seq);
  }

  /** Starts waiting sequences in arrival order while slots and state memory allow. */
  admit(need: (seq: Sequence) => number, start: (seq: Sequence) => void): Sequence[] {
    const started: Sequence[] = [];
    while (this.waiting.length > 0 && this.running.length < this.cfg.maxRunning) {
      const seq = this.waiting[0]!;
      const bytes = need(seq);
      // Strict FIFO: a big request at the head waits for memory rather than being overtaken forever.
      if (this.running.length > 0 && this.reservedBytes + bytes > this.cfg.stateBudgetBytes) break;
      this.waiting.shift();
      seq.reservedBytes = bytes;
      this.reservedBytes += bytes;
      this.running.push(seq);
      start(seq);
      started.push(seq);
    }
    return started;
  }

  /** Extends a running sequence's reservation by `bytes`; false when the budget cannot cover it. */
  grow(seq: Sequence, bytes: number): boolean {
    if (bytes <= 0) return true;
    if (this.reservedBytes + bytes > this.cfg.stateBudgetBytes) return false;
    seq.reservedBytes += bytes;
    this.reservedBytes += bytes;
    return true;
  }

  remove(seq: Sequence): void {
    const w = this.waiting.indexOf(seq);
    if (w >= 0) this.waiting.splice(w, 1);
    const r = this.running.indexOf(seq);
    if (r >= 0) {
      this.running.splice(r, 1);
      this.reservedBytes -= seq.reservedBytes;
      seq.reservedBytes = 0;
    }
  }

  plan(decodeWidth: (seq: Sequence) => number): StepPlan {
    // A sequence whose reader is behind waits with its slot and state (backpressure.ts).
    const decode = this.running.filter((s) => !s.finished && !s.prefilling && !s.readerBlocked);
    let budget = this.cfg.maxBatchTokens - decode.reduce((n, s) => n + decodeWidth(s), 0);
    const prefill: PrefillWork[] = [];
    const B = this.cfg.blockTokens;
    for (const seq of this.running) {
      if (seq.finished || !seq.prefilling || seq.readerBlocked) continue;
      if (budget <= 0 && (prefill.length > 0 || decode.length > 0)) break;
      const start = seq.prefilled;
      const P = seq.promptLength;
      let end = Math.min(P, start + Math.max(1, Math.min(this.cfg.prefillChunk, budget)));
      // Non-final chunks end on block boundaries, and the last boundary inside the prompt always
      // gets one: that is the snapshot the next turn of the same conversation will hit.
      const aligned = Math.floor((end < P ? end : P - 1) / B) * B;
      if (aligned > start && (end < P || seq.req.useCache)) end = aligned;
      prefill.push({ seq, tokens: seq.req.promptTokens.slice(start, end), final: end === P });
      budget -= end - start;
    }
    return { prefill, decode };
  }
}
