/**
 * Verifying drafts (spec §8, §8b): the main model has run [pending, d_1 … d_k] in one
 * batched step, giving logits rows 0 … k. Draft d_i is judged against row i−1: under greedy
 * it stays while it is the argmax; under sampling by sequential speculative rejection
 * sampling (Leviathan et al., Chen et al.): accept with probability min(1, P(d)/q(d)), and on
 * rejection draw from the normalised positive part of P − q. Every kept draft is exactly a
 * token plain decoding could have given with the same probability, so the output is the main
 * model's: identical under greedy, identically distributed under sampling. After the last
 * kept draft the row at that position gives one more token (the correction, or the bonus when
 * all k survive), so a step emits accepted + 1 tokens.
 */
import type { Vec } from "../kernels/backend.js";
import type { Proposal } from "./drafter.js";
import type { Rng } from "./rng.js";
import { argmax, drawFrom, isGreedy, samplingProbs, type SamplingParams } from "./sampler.js";

export type Judgement = { accepted: true } | { accepted: false; token: number };

/** Greedy: draft `i` stays while it is the argmax (`best`) of the position before it. */
export function judgeGreedy(proposal: Proposal, i: number, best: number): Judgement {
  return best === proposal.tokens[i] ? { accepted: true } : { accepted: false, token: best };
}

/** Judges draft `i` of `proposal` against the main model's logits at the position before it. */
export function judgeDraft(proposal: Proposal, i: number, row: Vec, sampling: SamplingParams, rng: Rng): Judgement {
  const d = proposal.tokens[i]!;
  if (isGreedy(sampling) || !proposal.q) return judgeGreedy(proposal, i, argmax(row));
  const P = samplingProbs(row, sampling);
  const q = proposal.q[i]!;
  const ratio = q[d]! > 0 ? P[d]! / q[d]! : 0;
  if (rng.next() < Math.min(1, ratio)) return { accepted: true };
  return { accepted: false, token: drawResidual(P, q, rng) };
}

/** A draw from max(0, P − q), normalised: what restores P after a rejection. */
export function drawResidual(P: Float64Array, q: Float64Array, rng: Rng): number {
  const residual = new Float64Array(P.length);
  let sum = 0;
  for (let i = 0; i < P.length; i++) {
    const r = P[i]! - q[i]!;
    if (r > 0) {
      residual[i] = r;
      sum += r;
    }
  }
  // P ≤ q everywhere means P = q: a rejection then has probability 0; rounding can still get here.
  if (sum <= 0) return drawFrom(P, rng);
  return drawFrom(residual, rng, sum);
}
