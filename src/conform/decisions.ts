import { E2M1_MAX, E4M3_MAX, roundE2M1, roundE4M3 } from "../formats/dtypes.js";
import type { Vec } from "../kernels/backend.js";
import { ceilPow2, FP4_AMAX_FLOOR, FP8_AMAX_FLOOR } from "../kernels/ref/quant.js";

/** The two grids a quantisation point rounds to (spec §3.3-3.6). */
export type Grid = "e4m3" | "e2m1";

const GRID = {
  e4m3: { max: E4M3_MAX, floor: FP8_AMAX_FLOOR, round: roundE4M3 },
  e2m1: { max: E2M1_MAX, floor: FP4_AMAX_FLOOR, round: roundE2M1 },
} as const;

/**
 * The block's power-of-two scale from the spec's float32 rule, r = fp32(amax' · fp32(1/max))
 * (spec §3.4), or, for a float64 backend, the reference's float64 product. The two differ only
 * when r falls within float32 rounding of a power of two: itself a rounding decision.
 */
export function blockScale(grid: Grid, x: ArrayLike<number>, start: number, end: number, precision: "f32" | "f64"): { scale: number; r: number } {
  let amax = 0;
  for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(x[i]!));
  const g = GRID[grid];
  const r = precision === "f32"
    ? Math.fround(Math.max(amax, Math.fround(g.floor)) * Math.fround(1 / g.max))
    : Math.max(amax, g.floor) * (1 / g.max);
  return { scale: ceilPow2(r), r };
}

/** The spec's decision for one value at a block scale: RNE(clamp(x/s)) · s. */
export function quantise(grid: Grid, x: number, scale: number): number {
  const g = GRID[grid];
  const v = x / scale;
  return g.round(v > g.max ? g.max : v < -g.max ? -g.max : v) * scale;
}

/** One value where the backend's rounding decision differs from the reference's. */
export interface Disagreement {
  /** Index of the value inside the quantised range. */
  element: number;
  /** The backend's value before rounding. */
  input: number;
  /** The backend's decision and the reference's (dequantised: grid value times scale). */
  backend: number;
  reference: number;
  /**
   * Distance of the backend's input from the rounding boundary between the two decisions,
   * relative to the largest magnitude in its block: float32 errors follow the size of the
   * terms a value was summed from, not the (possibly tiny) value itself. A float32-vs-float64
   * flip sits within ~1e-6 of the boundary; a kernel bug lies far away. For a block whose
   * scale itself flipped, the relative distance of r from the power of two.
   */
  distance: number;
  /** True when the block's scale decision differed (every element of that block follows it). */
  scaleFlip: boolean;
  /** Index of the element's block. */
  block: number;
}

/**
 * Compares the backend's decisions on one quantised range (dequantised values `backend`,
 * computed from its inputs `input`) with the reference's (`reference`), block by block.
 * A block whose scales differ is one scale flip: its elements are judged by the backend's
 * own scale (each must be the spec's rounding of its input there), not as separate flips.
 */
export function compareDecisions(
  grid: Grid, block: number, precision: "f32" | "f64",
  input: ArrayLike<number>, backend: ArrayLike<number>, reference: ArrayLike<number>, refScales: ArrayLike<number>, length: number,
): Disagreement[] {
  const found: Disagreement[] = [];
  for (let b = 0, i0 = 0; i0 < length; b++, i0 += block) {
    const i1 = Math.min(i0 + block, length);
    let differs = false;
    for (let i = i0; i < i1 && !differs; i++) differs = backend[i] !== reference[i];
    if (!differs) continue;
    const own = blockScale(grid, input, i0, i1, precision);
    let amax = 0;
    for (let i = i0; i < i1; i++) amax = Math.max(amax, Math.abs(input[i]!));
    const sRef = refScales[b]!;
    const scaleFlip = own.scale !== sRef;
    const boundary = Math.min(own.scale, sRef);
    const scaleDistance = Math.abs(own.r - boundary) / boundary;
    for (let i = i0; i < i1; i++) {
      if (backend[i] === reference[i]) continue;
      const x = input[i]!;
      let distance: number;
      if (scaleFlip && backend[i] === quantise(grid, x, own.scale)) {
        distance = scaleDistance;
      } else {
        const mid = (backend[i]! + reference[i]!) / 2;
        distance = Math.abs(x - mid) / Math.max(amax, Math.abs(mid));
      }
      // A NaN input or decision is as far from any boundary as it gets.
      found.push({ element: i, input: x, backend: backend[i]!, reference: reference[i]!, distance: Number.isNaN(distance) ? Infinity : distance, scaleFlip, block: b });
    }
  }
  return found;
}

/** The reference's decisions on a range: dequantised values and the scale of each block. */
export function referenceDecisions(grid: Grid, x: Vec, start: number, length: number, block: number): { values: Float64Array; scales: Float64Array } {
  const values = new Float64Array(length);
  const scales = new Float64Array(Math.ceil(length / block));
  for (let b = 0, i0 = 0; i0 < length; b++, i0 += block) {
    const i1 = Math.min(i0 + block, length);
    const { scale } = blockScale(grid, x, start + i0, start + i1, "f64");
    scales[b] = scale;
    for (let i = i0; i < i1; i++) values[i] = quantise(grid, x[start + i]!, scale);
  }
  return { values, scales };
}
