/**
 * The exponentials behind sampling over a 129k vocabulary, computed on every sampled token on
 * the engine's thread: Math.exp costs about 15 ns a call there, twice this table form, which
 * is as exact for sampling (relative error below 1e-14 against Math.exp).
 *
 * 2^y = 2^n · 2^(j/64) · 2^f with y = n + j/64 + f, f in [0, 1/64): two table lookups and a
 * degree-5 polynomial for 2^f (its truncation error (f·ln 2)^6/720 is below 3e-15).
 */

import { nativeAddon } from "../kernels/native/addon.js";

/** 2^(j/64) for j in 0..63. */
const FRACTION = Float64Array.from({ length: 64 }, (_, j) => 2 ** (j / 64));
/** 2^-n for n in 0..1074 (2^-1074 is the smallest subnormal; below it exp is 0). */
const NEGATIVE_POWER = Float64Array.from({ length: 1075 }, (_, n) => 2 ** -n);
const L1 = Math.LN2;
const L2 = L1 ** 2 / 2;
const L3 = L1 ** 3 / 6;
const L4 = L1 ** 4 / 24;
const L5 = L1 ** 5 / 120;

/** Histogram bins per halving of the weight (quarter octaves). */
const BIN_SHIFT = 4;
/** Bins from weight 1 down to the smallest subnormal, and one for the zeros. */
export const WEIGHT_BINS = ((1074 * 64) >> BIN_SHIFT) + 2;

/**
 * Where a row's weights lie, made while they are computed, for the top_k / top_p cut: `bin[i]` is
 * weight i's bin (0: the largest weights, in (2^-1/4, 1]; each next bin a quarter octave lower;
 * the last: zero), and `count` / `mass` the weights in each bin and their sum.
 */
export interface WeightHistogram {
  bin: Uint16Array;
  count: Float64Array;
  mass: Float64Array;
}

export function weightHistogram(V: number): WeightHistogram {
  return { bin: new Uint16Array(V), count: new Float64Array(WEIGHT_BINS), mass: new Float64Array(WEIGHT_BINS) };
}

/**
 * The addon's copies of this file's loops and of the sampler's draw (native/src/sampling.cc):
 * the same doubles in the same order, so a token drawn with or without the addon is the same
 * (test/engine/sampling-native.test.ts), 2-3x faster on float32 logits (argmax 13x; see
 * bench/sampler.js). Sampling runs on the engine's thread once per sequence and step: at 16
 * sequences sampled at temperature 0.7 the JavaScript loops took some 8 ms of each step, on its
 * critical path. (Like the server's socket options, a use of the one native binary
 * outside the kernels; without it, with an addon built before it had them, or with
 * DSV4_NATIVE_SAMPLING=0, these loops run.)
 */
const native = (() => {
  if (process.env.DSV4_NATIVE_SAMPLING === "0") return null;
  const loaded = nativeAddon();
  if ("error" in loaded) return null;
  const { shiftedExp, maxOf, argmax, drawKept, keptMass, gatherBin } = loaded.addon;
  return shiftedExp && maxOf && argmax && drawKept && keptMass && gatherBin ? { shiftedExp, maxOf, argmax, drawKept, keptMass, gatherBin } : null;
})();

/** FRACTION, NEGATIVE_POWER and the polynomial's coefficients, as the addon reads them. */
const TABLES = Float64Array.from([...FRACTION, ...NEGATIVE_POWER, L1, L2, L3, L4, L5]);

/** Whether the addon's loops are in use (tests). */
export function nativeSampling(): boolean {
  return native !== null;
}

/**
 * out[i] = exp((x[i] - max) / temperature), for x[i] ≤ max (the largest of x, so every result is
 * in [0, 1] and the largest is exactly 1); returns their sum. -Infinity entries (masked tokens)
 * give 0. With `histogram`, also fills it.
 */
export function shiftedExp(x: ArrayLike<number>, max: number, temperature: number, out: Float64Array, histogram?: WeightHistogram): number {
  if (native && x instanceof Float32Array) {
    return native.shiftedExp(x, max, Math.LOG2E / temperature, TABLES, out, histogram?.bin ?? null, histogram?.count ?? null, histogram?.mass ?? null);
  }
  return shiftedExpJs(x, max, temperature, out, histogram);
}

/** shiftedExp in JavaScript (any input; the addon's loops follow it). */
export function shiftedExpJs(x: ArrayLike<number>, max: number, temperature: number, out: Float64Array, histogram?: WeightHistogram): number {
  // Two loops, not one with `if (histogram)` inside: the branch cost the plain loop ~30% (bench/sampler.js).
  if (histogram) return shiftedExpBinned(x, max, temperature, out, histogram);
  const scale = Math.LOG2E / temperature;
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    const y = (x[i]! - max) * scale;
    if (!(y > -1074)) {
      out[i] = 0;
      continue;
    }
    const m = Math.floor(y * 64);
    const f = y - m * 0.015625;
    const e = NEGATIVE_POWER[-(m >> 6)]! * FRACTION[m & 63]! * (1 + f * (L1 + f * (L2 + f * (L3 + f * (L4 + f * L5)))));
    out[i] = e;
    sum += e;
  }
  return sum;
}

function shiftedExpBinned(x: ArrayLike<number>, max: number, temperature: number, out: Float64Array, h: WeightHistogram): number {
  const { bin, count, mass } = h;
  count.fill(0);
  mass.fill(0);
  const zeros = WEIGHT_BINS - 1;
  const scale = Math.LOG2E / temperature;
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    const y = (x[i]! - max) * scale;
    if (!(y > -1074)) {
      out[i] = 0;
      bin[i] = zeros;
      count[zeros]!++;
      continue;
    }
    const m = Math.floor(y * 64);
    const f = y - m * 0.015625;
    const e = NEGATIVE_POWER[-(m >> 6)]! * FRACTION[m & 63]! * (1 + f * (L1 + f * (L2 + f * (L3 + f * (L4 + f * L5)))));
    out[i] = e;
    sum += e;
    const b = m === 0 ? 0 : -(m >> BIN_SHIFT) - 1;
    bin[i] = b;
    count[b]!++;
    mass[b]! += e;
  }
  return sum;
}

/** The largest value (-Infinity for an empty or all -Infinity input). */
export function maxOf(x: ArrayLike<number>): number {
  if (native && x instanceof Float32Array) return native.maxOf(x);
  return maxOfJs(x);
}

/** The first index of the largest value (0 for an empty or all -Infinity input): the greedy token. */
export function argmax(x: ArrayLike<number>): number {
  if (native && x instanceof Float32Array) return native.argmax(x);
  return argmaxJs(x);
}

/** argmax in JavaScript. */
export function argmaxJs(x: ArrayLike<number>): number {
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

/** maxOf in JavaScript. */
export function maxOfJs(x: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i]! > max) max = x[i]!;
  return max;
}

/**
 * The draw over sampling weights `w[0, n)`: the first index at which the running sum of the kept
 * weights exceeds `u`, else the last kept index (0 when none is kept). Kept: at least `lowest`,
 * and above `threshold` or equal to it for the first `atThreshold` such weights.
 */
export function drawKept(w: Float64Array, n: number, threshold: number, atThreshold: number, lowest: number, u: number): number {
  if (native) return native.drawKept(w, n, threshold, atThreshold, lowest, u);
  return drawKeptJs(w, n, threshold, atThreshold, lowest, u);
}

/** drawKept in JavaScript. */
export function drawKeptJs(w: Float64Array, n: number, threshold: number, atThreshold: number, lowest: number, u: number): number {
  let ties = atThreshold;
  let acc = 0;
  let last = 0;
  for (let i = 0; i < n; i++) {
    const v = w[i]!;
    if (v >= lowest && (v > threshold || (v === threshold && ties-- > 0))) {
      acc += v;
      last = i;
      if (u < acc) return i;
    }
  }
  return last;
}

/** The sum, in index order, of the weights drawKept keeps. */
export function keptMass(w: Float64Array, n: number, threshold: number, atThreshold: number, lowest: number): number {
  if (native) return native.keptMass(w, n, threshold, atThreshold, lowest);
  return keptMassJs(w, n, threshold, atThreshold, lowest);
}

/** keptMass in JavaScript. */
export function keptMassJs(w: Float64Array, n: number, threshold: number, atThreshold: number, lowest: number): number {
  let ties = atThreshold;
  let mass = 0;
  for (let i = 0; i < n; i++) {
    const v = w[i]!;
    if (v >= lowest && (v > threshold || (v === threshold && ties-- > 0))) mass += v;
  }
  return mass;
}

/** w[i] for the i < n whose bin is b (`above`: after b), in index order, into `out`; returns how many. */
export function gatherBin(w: Float64Array, n: number, bin: Uint16Array, b: number, above: boolean, out: Float64Array): number {
  if (native) return native.gatherBin(w, n, bin, b, above, out);
  return gatherBinJs(w, n, bin, b, above, out);
}

/** gatherBin in JavaScript. */
export function gatherBinJs(w: Float64Array, n: number, bin: Uint16Array, b: number, above: boolean, out: Float64Array): number {
  let k = 0;
  if (above) {
    for (let i = 0; i < n; i++) if (bin[i]! > b) out[k++] = w[i]!;
  } else {
    for (let i = 0; i < n; i++) if (bin[i] === b) out[k++] = w[i]!;
  }
  return k;
}
