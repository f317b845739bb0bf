/**
 * Speculative decoding with the MTP block (spec §8): the MTP block drafts the
 * token after the pending one; the main model then runs [pending, draft] in
 * the same batched step as everyone else and the draft is kept or replaced by
 * standard rejection sampling, so output is exactly what plain decoding would
 * give: identical under greedy, identically distributed under sampling.
 *
 * The MTP block keeps its own sliding-window state, fed one (residual, next
 * token) pair per main-model position. Only its window matters, so after a
 * long prefill it is warmed on the last few positions only (a colder draft is
 * a worse guess, never a wrong answer).
 */
import type { Vec } from "../kernels/backend.js";
import type { DraftRequest, Runner } from "./runner/index.js";
import { argmax, drawFrom, isGreedy, samplingProbs } from "./sampler.js";
import type { MtpEntry, Sequence } from "./sequence.js";

export interface Draft {
  token: number;
  /** Draft distribution, for rejection sampling (null under greedy). */
  q: Float64Array | null;
}

/** Keeps the newest entries the warm-up allows: the draft input and `warmup` before it. */
export function trimEntries(entries: MtpEntry[], warmup: number): MtpEntry[] {
  return entries.length > warmup + 1 ? entries.slice(entries.length - warmup - 1) : entries;
}

/** Replaces the MTP proposal (EngineOptions.speculative.draftOverride). */
export type DraftOverride = (ctx: { generated: readonly number[]; pending: number; proposed: number }) => number;

/**
 * Catches each sequence's MTP state up on its pending entries, then drafts one token
 * per sequence, in one runner call batched across sequences.
 */
export async function draftTokens(runner: Runner, seqs: readonly Sequence[], warmup: number, override?: DraftOverride): Promise<Map<Sequence, Draft>> {
  const requests: DraftRequest[] = seqs.map((s) => {
    const entries = trimEntries(s.mtpEntries, warmup);
    s.mtpEntries = [];
    // The MTP position jumps to the oldest entry kept: positions skipped are outside what it will attend to soon.
    return { id: s.state!.id, mtpLength: entries[0]!.pos, entries: entries.map((e) => ({ hidden: e.hidden, token: e.token })) };
  });
  const outs = await runner.draft(requests);
  const drafts = new Map<Sequence, Draft>();
  seqs.forEach((s, i) => {
    const logits = outs[i]!;
    if (override) {
      // A fixed proposal is a one-hot draft distribution: rejection sampling stays exact.
      const token = override({ generated: s.generated, pending: s.pending!, proposed: argmax(logits) });
      const q = new Float64Array(logits.length);
      q[token] = 1;
      drafts.set(s, { token, q: isGreedy(s.req.sampling) ? null : q });
    } else if (isGreedy(s.req.sampling)) {
      drafts.set(s, { token: argmax(logits), q: null });
    } else {
      const q = samplingProbs(logits, s.req.sampling);
      drafts.set(s, { token: drawFrom(q, s.rng), q });
    }
    s.drafted++;
  });
  return drafts;
}

/**
 * Decides the verified position: returns the token to emit there and whether it
 * is the draft (then the position after it is valid too).
 */
export function verifyDraft(seq: Sequence, draft: Draft, targetLogits: Vec): { token: number; accepted: boolean } {
  const p = seq.req.sampling;
  if (isGreedy(p) || !draft.q) {
    const t = argmax(targetLogits);
    return { token: t, accepted: t === draft.token };
  }
  const P = samplingProbs(targetLogits, p);
  const q = draft.q;
  const ratio = q[draft.token]! > 0 ? P[draft.token]! / q[draft.token]! : 0;
  if (seq.rng.next() < Math.min(1, ratio)) return { token: draft.token, accepted: true };
  // Rejected: draw from the normalised positive part of (P − q), which restores P exactly.
  const residual = new Float64Array(P.length);
  let sum = 0;
  for (let i = 0; i < P.length; i++) {
    const r = P[i]! - q[i]!;
    if (r > 0) {
      residual[i] = r;
      sum += r;
    }
  }
  if (sum <= 0) return { token: drawFrom(P, seq.rng), accepted: false };
  for (let i = 0; i < residual.length; i++) residual[i]! /= sum;
  return { token: drawFrom(residual, seq.rng), accepted: false };
}
