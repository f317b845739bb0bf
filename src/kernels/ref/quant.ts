import { E2M1_MAX, E4M3_MAX, floorLog2, pow2, roundE2M1, roundE4M3 } from "../../formats/dtypes.js";
import type { Vec } from "../backend.js";

/** Reciprocals the reference multiplies by (spec §3.4); in float64 mode the products are float64. */
const INV_E4M3_MAX = 1 / E4M3_MAX;
const INV_E2M1_MAX = 1 / E2M1_MAX;
/** amax floors of the reference's scale rule. */
export const FP8_AMAX_FLOOR = 1e-4;
export const FP4_AMAX_FLOOR = 6 * 2 ** -126;

/** 2^ceil(log2 r): the UE8M0 power-of-two scale for a positive r, computed exactly. */
export function ceilPow2(r: number): number {
  const e = floorLog2(r);
  const p = pow2(e);
  return p === r ? p : p * 2;
}

function blockAmax(x: Vec, start: number, end: number): number {
  let amax = 0;
  for (let i = start; i < end; i++) {
    const a = Math.abs(x[i]!);
    if (a > amax) amax = a;
  }
  return amax;
}

export function fp8BlockScale(x: Vec, start: number, end: number): number {
  return ceilPow2(Math.max(blockAmax(x, start, end), FP8_AMAX_FLOOR) * INV_E4M3_MAX);
}

export function fp4BlockScale(x: Vec, start: number, end: number): number {
  return ceilPow2(Math.max(blockAmax(x, start, end), FP4_AMAX_FLOOR) * INV_E2M1_MAX);
}

/**
 * Quantise x[start, start+length) to E4M3 in blocks: writes the grid values (x/s rounded, as
 * plain numbers) into `q` and the scale of each block into `scales`.
 */
export function quantizeE4M3Blocks(x: Vec, start: number, length: number, block: number, q: Float64Array, scales: Float64Array): void {
  for (let b = 0, i0 = 0; i0 < length; b++, i0 += block) {
    const i1 = Math.min(i0 + block, length);
    const s = fp8BlockScale(x, start + i0, start + i1);
    scales[b] = s;
    for (let i = i0; i < i1; i++) {
      const v = x[start + i]! / s;
      q[i] = roundE4M3(v > E4M3_MAX ? E4M3_MAX : v < -E4M3_MAX ? -E4M3_MAX : v);
    }
  }
}

/** Quantise-dequantise x[start, start+length) in place, block by block: clamp(x/s) rounded to the grid, times s. */
function simulateInPlace(x: Vec, start: number, length: number, block: number, scaleOf: typeof fp8BlockScale, round: (v: number) => number, max: number): void {
  for (let i0 = 0; i0 < length; i0 += block) {
    const i1 = Math.min(i0 + block, length);
    const s = scaleOf(x, start + i0, start + i1);
    for (let i = start + i0; i < start + i1; i++) {
      const v = x[i]! / s;
      x[i] = round(v > max ? max : v < -max ? -max : v) * s;
    }
  }
}

/** In-place E4M3 quantise-dequantise (the reference's KV "FP8 simulation"). */
export function fp8SimulateInPlace(x: Vec, start: number, length: number, block: number): void {
  simulateInPlace(x, start, length, block, fp8BlockScale, roundE4M3, E4M3_MAX);
}

/** In-place E2M1 quantise-dequantise (the indexer's "FP4 simulation"). */
export function fp4SimulateInPlace(x: Vec, start: number, length: number, block: number): void {
  simulateInPlace(x, start, length, block, fp4BlockScale, roundE2M1, E2M1_MAX);
}
