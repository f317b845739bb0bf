/**
 * Deterministic randomness for generated checkpoints: a xoshiro128** generator seeded per
 * tensor from (seed, tensor name), and a standard-normal quantile table. Everything uses
 * 32-bit integer arithmetic or table lookups, so the bytes depend only on the seed, not on the
 * order tensors are generated in or on how they are split into chunks.
 */

/** murmur3's 32-bit finaliser: a cheap bijective mix. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over the UTF-16 code units of `s`, continued from `h`. */
function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** `seed` is any safe non-negative integer; `stream` separates independent tensors. */
  constructor(seed: number, stream: string) {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    let x = fmix32(fnv1a(stream, fmix32(lo ^ 0x9e3779b9) ^ Math.imul(hi, 0x27d4eb2f)));
    // splitmix32-style expansion so that nearby seeds give unrelated states, never all zero
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      return fmix32(x) | 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next() | 1;
  }

  /** Fill `out` with uniform 32-bit words; the hot loop keeps the state in locals. */
  fill(out: Uint32Array, count = out.length): void {
    let s0 = this.s0, s1 = this.s1, s2 = this.s2, s3 = this.s3;
    for (let i = 0; i < count; i++) {
      const m = Math.imul(s1, 5);
      const r = Math.imul((m << 7) | (m >>> 25), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      out[i] = r;
    }
    this.s0 = s0; this.s1 = s1; this.s2 = s2; this.s3 = s3;
  }

  private readonly one = new Uint32Array(1);

  nextU32(): number {
    this.fill(this.one, 1);
    return this.one[0]!;
  }

  /** Uniform integer in [0, n) (n <= 2^32; the bias of the multiply-shift is below 2^-20 for our n). */
  below(n: number): number {
    return Math.floor((this.nextU32() / 2 ** 32) * n);
  }
}

export const QUANTILE_BITS = 16;
const QN = 1 << QUANTILE_BITS;
let quantiles: Float64Array | null = null;

/**
 * z_i = Phi^-1((i + 0.5) / 65536): indexing it with 16 random bits draws a standard normal
 * (discretised, tails cut at about ±4.3). Built by integrating the density on a fine grid,
 * which needs only Math.exp.
 */
export function normalQuantiles(): Float64Array {
  if (quantiles) return quantiles;
  const q = new Float64Array(QN);
  const lo = -9, hi = 9, steps = 1 << 20;
  const h = (hi - lo) / steps;
  const pdf = (z: number) => Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
  let cdf = 0;
  let prev = pdf(lo);
  let i = 0;
  for (let k = 1; k <= steps && i < QN; k++) {
    const z = lo + k * h;
    const cur = pdf(z);
    const inc = 0.5 * (prev + cur) * h;
    // Assign every target probability crossed in this step, interpolating inside it
    while (i < QN && (i + 0.5) / QN <= cdf + inc) {
      q[i] = z - h + (((i + 0.5) / QN - cdf) / inc) * h;
      i++;
    }
    cdf += inc;
    prev = cur;
  }
  for (; i < QN; i++) q[i] = hi;
  quantiles = q;
  return q;
}
