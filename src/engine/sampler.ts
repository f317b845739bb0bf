/**
 * Logits → next token. Temperature 0 is greedy (lowest id on ties, so batched
 * and single runs agree bit for bit); otherwise the filters run in the usual
 * order (temperature, top_k, top_p, min_p) on one dense distribution, which is
 * also what speculative rejection sampling needs to compare target and draft.
 */
import type { Vec } from "../kernels/backend.js";
import type { Rng } from "./rng.js";
import { argmax, drawKept, keptMass, maxOf, shiftedExp, weightHistogram } from "./softmax.js";
import { topCut } from "./top-cut.js";

export interface SamplingParams {
  /** 0 → greedy. */
  temperature: number;
  /** 1 → off. */
  topP: number;
  /** 0 → off. */
  topK: number;
  /** 0 → off. */
  minP: number;
}

export const DEFAULT_SAMPLING: SamplingParams = { temperature: 1, topP: 1, topK: 0, minP: 0 };

export function isGreedy(p: SamplingParams): boolean {
  return p.temperature <= 0;
}

/** The greedy token: the first index of the largest logit (softmax.ts, in the addon where built). */
export { argmax };

/**
 * The sampling weights of one row: unnormalised (the largest is exactly 1) in `w`, and the
 * filters as a rule over them, so a draw needs no pass that zeroes and renormalises.
 */
interface Weights {
  w: Float64Array;
  V: number;
  /** top_k / top_p: weights above it are kept, and the first `atThreshold` equal to it (0: all). */
  threshold: number;
  atThreshold: number;
  /** Weights below it are dropped: min_p's floor (the largest weight is 1), else the least positive number. */
  lowest: number;
  /** The kept weights' sum. */
  mass: number;
}

/** Where the last ranked row's weights lie, reused (the engine samples on one thread). */
let histogram = weightHistogram(0);

function weigh(logits: Vec | ArrayLike<number>, p: SamplingParams, w: Float64Array): Weights {
  const V = logits.length;
  const ranked = (p.topK > 0 && p.topK < V) || p.topP < 1;
  if (ranked && histogram.bin.length < V) histogram = weightHistogram(V);
  const total = shiftedExp(logits, maxOf(logits), p.temperature, w, ranked ? histogram : undefined);
  // top_p is a fraction of the whole distribution's mass.
  const cut = ranked ? topCut(w, V, p.topK > 0 ? p.topK : Infinity, p.topP < 1 ? p.topP * total : Infinity, histogram) : null;
  const k: Weights = { w, V, threshold: cut ? cut.threshold : 0, atThreshold: cut ? cut.atThreshold : 0, lowest: p.minP > 0 ? p.minP : Number.MIN_VALUE, mass: cut ? cut.mass : total };
  if (p.minP > 0) k.mass = keptMass(w, V, k.threshold, k.atThreshold, k.lowest);
  return k;
}

/**
 * The sampling distribution as dense probabilities (zeros where filtered out), written to `out`
 * when given (it must hold the vocabulary) or to a new array. For greedy params it is one-hot on
 * the argmax, so the same rejection rule covers greedy and sampled speculation.
 */
export function samplingProbs(logits: Vec | ArrayLike<number>, p: SamplingParams, out?: Float64Array): Float64Array {
  const V = logits.length;
  const probs = out ?? new Float64Array(V);
  if (isGreedy(p)) {
    if (out) probs.fill(0, 0, V);
    probs[argmax(logits)] = 1;
    return probs;
  }
  const k = weigh(logits, p, probs);
  const { threshold, lowest } = k;
  const inverse = 1 / k.mass;
  if (threshold === 0 && lowest === Number.MIN_VALUE) {
    for (let i = 0; i < V; i++) probs[i]! *= inverse;
    return probs;
  }
  let ties = k.atThreshold;
  for (let i = 0; i < V; i++) {
    const v = probs[i]!;
    probs[i] = v >= lowest && (v > threshold || (v === threshold && ties-- > 0)) ? v * inverse : 0;
  }
  return probs;
}

/** A categorical draw from dense non-negative weights summing to `mass` (~1 for probabilities). */
export function drawFrom(probs: Float64Array, rng: Rng, mass = 1): number {
  return drawAt(probs, rng.next(), mass);
}

/** The categorical draw for uniform `u` in [0, 1): pure, so a runner thread can repeat the engine's draw. */
export function drawAt(probs: Float64Array, uniform: number, mass = 1): number {
  const u = uniform * mass;
  let acc = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    const q = probs[i]!;
    if (q <= 0) continue;
    acc += q;
    last = i;
    if (u < acc) return i;
  }
  return last;
}

/** The weights sampleToken draws from, reused: they are not kept past the draw. */
let drawScratch = new Float64Array(0);

export function sampleToken(logits: Vec | ArrayLike<number>, p: SamplingParams, rng: Rng): number {
  return isGreedy(p) ? argmax(logits) : sampleTokenAt(logits, p, rng.next());
}

/**
 * sampleToken's draw for uniform `u` (unused when greedy): pure, so the runner thread can
 * choose a token exactly as the engine would have with the uniform the engine drew.
 */
export function sampleTokenAt(logits: Vec | ArrayLike<number>, p: SamplingParams, u: number): number {
  if (isGreedy(p)) return argmax(logits);
  if (drawScratch.length < logits.length) drawScratch = new Float64Array(logits.length);
  const k = weigh(logits, p, drawScratch);
  return drawKept(k.w, k.V, k.threshold, k.atThreshold, k.lowest, u * k.mass);
}

export interface RawLogprob {
  logprob: number;
  top: Array<{ id: number; logprob: number }>;
}

/**
 * Log-probabilities of the model's own distribution (log-softmax of the logits,
 * before temperature and filters, as OpenAI-style APIs report them).
 */
export function tokenLogprobs(logits: Vec | ArrayLike<number>, token: number, topN: number): RawLogprob {
  const V = logits.length;
  const max = maxOf(logits);
  if (drawScratch.length < V) drawScratch = new Float64Array(V);
  const lse = max + Math.log(shiftedExp(logits, max, 1, drawScratch));
  const top: Array<{ id: number; logprob: number }> = [];
  if (topN > 0) {
    // Keep a small sorted buffer instead of sorting the vocabulary.
    for (let i = 0; i < V; i++) {
      const v = logits[i]!;
      if (top.length === topN && v <= top[top.length - 1]!.logprob) continue;
      let at = top.length;
      while (at > 0 && top[at - 1]!.logprob < v) at--;
      top.splice(at, 0, { id: i, logprob: v });
      if (top.length > topN) top.pop();
    }
    for (const t of top) t.logprob -= lse;
  }
  return { logprob: logits[token]! - lse, top };
}
