/**
 * The exponentials behind sampling over a 129k vocabulary, computed on every sampled token on
 * the engine's thread: Math.exp costs about 15 ns a call there, twice this table form, which
 * is as exact for sampling (relative error below 1e-14 against Math.exp).
 *
 * 2^y = 2^n · 2^(j/64) · 2^f with y = n + j/64 + f, f in [0, 1/64): two table lookups and a
 * degree-5 polynomial for 2^f (its truncation error (f·ln 2)^6/720 is below 3e-15).
 */

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
 * out[i] = exp((x[i] - max) / temperature), for x[i] ≤ max (the largest of x, so every result is
 * in [0, 1] and the largest is exactly 1); returns their sum. -Infinity entries (masked tokens)
 * give 0. With `histogram`, also fills it.
 */
export function shiftedExp(x: ArrayLike<number>, max: number, temperature: number, out: Float64Array, histogram?: WeightHistogram): number {
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
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i]! > max) max = x[i]!;
  return max;
}
