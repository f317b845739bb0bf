/**
 * Sampling restricted to the tokens a constraint allows, exactly: the result
 * is distributed as the sampling distribution with the disallowed tokens
 * masked out and the rest renormalised (greedy: the highest-logit allowed
 * token, lowest id on ties).
 *
 * Checking every token of a 129k vocabulary against a constraint costs a few
 * milliseconds, so the common case is tried first: draw, and if the token is
 * disallowed drop it and draw again from what is left (a draw conditioned on
 * the allowed set has the same law as the masked distribution). Only when a
 * few tries fail is the full mask computed. The mask applies before top_k /
 * top_p / min_p (as logits processors do), so with those filters on the mask
 * is always computed, to keep the filters ranking allowed tokens only.
 */
import type { Vec } from "../../kernels/backend.js";
import type { Rng } from "../rng.js";
import { drawFrom, isGreedy, samplingProbs, type SamplingParams } from "../sampler.js";

/** Draws before the full mask: each costs a pass over the vocabulary, about what a cheap full check costs. */
const TRIES = 3;

/** A token `allowed` accepts, or -1 when it accepts none. */
export function sampleAllowed(logits: Vec, p: SamplingParams, rng: Rng, allowed: (id: number) => boolean): number {
  if (isGreedy(p)) return greedyAllowed(logits, allowed);
  const filtered = (p.topK > 0 && p.topK < logits.length) || p.topP < 1 || p.minP > 0;
  if (filtered) return maskedDraw(logits, p, rng, allowed);
  const probs = samplingProbs(logits, p);
  let mass = 1;
  for (let k = 0; k < TRIES && mass > 1e-12; k++) {
    const t = drawFrom(probs, rng, mass);
    if (allowed(t)) return t;
    mass -= probs[t]!;
    probs[t] = 0;
  }
  mass = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i]! <= 0) continue;
    if (allowed(i)) mass += probs[i]!;
    else probs[i] = 0;
  }
  return mass > 0 ? drawFrom(probs, rng, mass) : -1;
}

function greedyAllowed(logits: Vec, allowed: (id: number) => boolean): number {
  const rejected = new Set<number>();
  for (let k = 0; k < TRIES; k++) {
    let best = -1;
    let bestV = -Infinity;
    for (let i = 0; i < logits.length; i++) {
      if (logits[i]! > bestV && !rejected.has(i)) {
        bestV = logits[i]!;
        best = i;
      }
    }
    if (best < 0) break;
    if (allowed(best)) return best;
    rejected.add(best);
  }
  // A full pass, asking the constraint only about tokens that would beat the best so far.
  let best = -1;
  let bestV = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if ((best < 0 || v > bestV) && !rejected.has(i) && allowed(i)) {
      best = i;
      bestV = v;
    }
  }
  return best;
}

function maskedDraw(logits: Vec, p: SamplingParams, rng: Rng, allowed: (id: number) => boolean): number {
  const masked = new Float64Array(logits.length);
  let any = false;
  for (let i = 0; i < logits.length; i++) {
    if (allowed(i)) {
      masked[i] = logits[i]!;
      any = true;
    } else masked[i] = -Infinity;
  }
  return any ? drawFrom(samplingProbs(masked, p), rng) : -1;
}
