/**
 * Logits → next token. Temperature 0 is greedy (lowest id on ties, so batched
 * and single runs agree bit for bit); otherwise the filters run in the usual
 * order (temperature, top_k, top_p, min_p) on one dense distribution, which is
 * also what speculative rejection sampling needs to compare target and draft.
 */
import type { Vec } from "../kernels/backend.js";
import type { Rng } from "./rng.js";

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

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

/**
 * The sampling distribution as dense probabilities (zeros where filtered out).
 * For greedy params it is one-hot on the argmax, so the same rejection rule
 * covers greedy and sampled speculation.
 */
export function samplingProbs(logits: Vec | ArrayLike<number>, p: SamplingParams): Float64Array {
  const V = logits.length;
  const probs = new Float64Array(V);
  if (isGreedy(p)) {
    probs[argmax(logits)] = 1;
    return probs;
  }
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < V; i++) {
    const e = Math.exp((logits[i]! - max) / p.temperature);
    probs[i] = e;
    sum += e;
  }
  for (let i = 0; i < V; i++) probs[i]! /= sum;

  const needSort = (p.topK > 0 && p.topK < V) || p.topP < 1;
  if (needSort) keepTop(probs, p.topK, p.topP);
  if (p.minP > 0) {
    let pmax = 0;
    for (let i = 0; i < V; i++) if (probs[i]! > pmax) pmax = probs[i]!;
    const floor = p.minP * pmax;
    for (let i = 0; i < V; i++) if (probs[i]! < floor) probs[i] = 0;
  }
  normalize(probs);
  return probs;
}

/**
 * Zero every probability outside the top-k / top-p set: the most likely tokens, in
 * descending order, until k are kept or their mass reaches top_p (the token that crosses
 * it included); exact ties go to the lower id. The values are ranked with a native
 * typed-array sort, so no comparator runs per element of the 129k vocabulary.
 */
function keepTop(probs: Float64Array, topK: number, topP: number): void {
  const sorted = topK > 0 && topK <= SMALL_TOP_K ? largest(probs, topK) : Float64Array.from(probs).sort();
  let kept = 0;
  let mass = 0;
  let threshold = Infinity;
  let atThreshold = 0;
  for (let j = sorted.length - 1; j >= 0; j--) {
    if (topK > 0 && kept >= topK) break;
    if (topP < 1 && kept > 0 && mass >= topP) break;
    const v = sorted[j]!;
    if (v !== threshold) {
      threshold = v;
      atThreshold = 0;
    }
    atThreshold++;
    kept++;
    mass += v;
  }
  for (let i = 0; i < probs.length; i++) {
    const v = probs[i]!;
    if (v > threshold) continue;
    if (v === threshold && atThreshold > 0) {
      atThreshold--;
      continue;
    }
    probs[i] = 0;
  }
}

/** Up to this top_k, the k largest values are found without sorting the vocabulary. */
const SMALL_TOP_K = 64;

/** The `k` largest values, ascending (the tail of what a full ascending sort would give). */
function largest(values: Float64Array, k: number): Float64Array {
  const top = new Float64Array(Math.min(k, values.length)).fill(-Infinity);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v <= top[0]!) continue;
    // Insert v, dropping the smallest: top stays ascending.
    let j = 0;
    while (j + 1 < top.length && top[j + 1]! < v) {
      top[j] = top[j + 1]!;
      j++;
    }
    top[j] = v;
  }
  return top;
}

function normalize(probs: Float64Array): void {
  let sum = 0;
  for (let i = 0; i < probs.length; i++) sum += probs[i]!;
  if (sum > 0) for (let i = 0; i < probs.length; i++) probs[i]! /= sum;
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

export function sampleToken(logits: Vec | ArrayLike<number>, p: SamplingParams, rng: Rng): number {
  if (isGreedy(p)) return argmax(logits);
  return drawFrom(samplingProbs(logits, p), rng);
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
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
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
