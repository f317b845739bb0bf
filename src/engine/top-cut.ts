/**
 * The top_k / top_p cut over a row of sampling weights without sorting the 129k vocabulary
 * (a typed-array sort of it cost 15 ms a token): the largest weights, in descending order,
 * are kept until k are kept or their mass reaches top_p's share (the weight that crosses it
 * included); exact ties go to the lower id, which the caller applies in id order.
 */

import { WEIGHT_BINS, gatherBin, type WeightHistogram } from "./softmax.js";

/** Scratch for topCut's selection, reused across calls (the engine samples on one thread). */
let scratch = new Float64Array(0);

/** The last kept weight, how many weights equal to it are kept, and the kept mass; null: all kept. */
export type Cut = { threshold: number; atThreshold: number; mass: number } | null;

/**
 * Where the descending walk over `w` stops: before the next weight once `maxKept` are kept, or
 * once the kept mass reaches `massP` (at least one kept). Returns the last kept weight and how
 * many weights equal to it are kept, or null when the walk keeps everything.
 *
 * The histogram made with the weights (softmax.ts) says in which bin the walk stops, and what
 * the bins above it hold (all kept); a quickselect finds the cut among that bin's weights.
 */
export function topCut(w: Float64Array, V: number, maxKept: number, massP: number, h: WeightHistogram): Cut {
  if (scratch.length < V) scratch = new Float64Array(V);
  const a = scratch;
  let kept = 0;
  let mass = 0;
  let b = 0;
  while (b < WEIGHT_BINS && !stops(kept + h.count[b]!, mass + h.mass[b]!, maxKept, massP)) {
    kept += h.count[b]!;
    mass += h.mass[b]!;
    b++;
  }
  if (b === WEIGHT_BINS) return null;
  const cut = select(a, 0, gatherBin(w, V, h.bin, b, false, a), kept, mass, maxKept, massP);
  if (cut !== null) return cut;
  // The bin's weights summed in another order fell short of massP by a rounding: the walk goes on
  // through the weights in the bins after it.
  return select(a, 0, gatherBin(w, V, h.bin, b, true, a), kept + h.count[b]!, mass + h.mass[b]!, maxKept, massP);
}

function stops(kept: number, mass: number, maxKept: number, massP: number): boolean {
  return kept >= maxKept || (kept > 0 && mass >= massP);
}

/**
 * topCut over the weights a[lo, hi), the walk having kept `kept` weights of mass `mass` above
 * them: a three-way quickselect on the mass. Partition around a pivot; if the weights above it
 * stop the walk, the cut is among them; else they are all kept and the walk goes on through the
 * pivot's equals and then the weights below. Expected O(hi - lo).
 */
function select(a: Float64Array, lo: number, hi: number, kept: number, mass: number, maxKept: number, massP: number): Cut {
  while (hi > lo) {
    const pivot = medianOf3(a[lo]!, a[(lo + hi) >>> 1]!, a[hi - 1]!);
    // Dutch flag: [lo, gt) > pivot, [gt, i) == pivot, [lt, hi) < pivot.
    let gt = lo;
    let i = lo;
    let lt = hi;
    let above = 0;
    while (i < lt) {
      const v = a[i]!;
      if (v > pivot) {
        above += v;
        a[i] = a[gt]!;
        a[gt++] = v;
        i++;
      } else if (v < pivot) {
        a[i] = a[--lt]!;
        a[lt] = v;
      } else i++;
    }
    const nAbove = gt - lo;
    if (nAbove > 0 && stops(kept + nAbove, mass + above, maxKept, massP)) {
      if (nAbove === 1) return { threshold: a[lo]!, atThreshold: 1, mass: mass + above };
      hi = gt;
      continue;
    }
    kept += nAbove;
    mass += above;
    for (let j = 0; j < lt - gt; j++) {
      kept++;
      mass += pivot;
      if (stops(kept, mass, maxKept, massP)) return { threshold: pivot, atThreshold: j + 1, mass };
    }
    lo = lt;
  }
  return null;
}

function medianOf3(x: number, y: number, z: number): number {
  return x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
}
