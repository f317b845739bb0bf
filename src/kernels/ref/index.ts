import type { AttentionQuery, Backend, MatrixHandle, StoredMatrix, Vec } from "../backend.js";
import { decodeRow, refLinear, refMatrix, type RefMatrix } from "./linear.js";
import * as ops from "./ops.js";
import { fp4SimulateInPlace, fp8SimulateInPlace } from "./quant.js";

/** Weight bytes the reference copies into memory before it reads further matrices from their files on demand. */
export const REF_RESIDENT_BYTES = 2 ** 30;

export interface RefBackendOptions {
  /**
   * Matrices are copied into memory until this many bytes are resident (default 1 GiB); later
   * ones with a file location are read from the checkpoint at each use, a chunk of rows at a
   * time, so a checkpoint far larger than memory runs (slowly) on the reference.
   */
  residentBytes?: number;
}

/**
 * Pure-TypeScript reference backend. Computes in float64 throughout, which is what the
 * float64 goldens (`*_f64`) were made with: it must match them to 1e-9 at every position.
 */
export class RefBackend implements Backend {
  readonly name = "ref";
  readonly precision = "f64" as const;
  private readonly residentBudget: number;
  /** Weight bytes copied into memory so far. */
  residentBytes = 0;

  constructor(opts: RefBackendOptions = {}) {
    this.residentBudget = opts.residentBytes ?? REF_RESIDENT_BYTES;
  }

  alloc(n: number): Float64Array {
    return new Float64Array(n);
  }

  fromValues(values: ArrayLike<number>): Float64Array {
    return Float64Array.from(values);
  }

  uploadMatrix(m: StoredMatrix): MatrixHandle {
    const size = m.location?.byteLength ?? 0;
    const resident = !m.location || this.residentBytes + size <= this.residentBudget;
    if (resident) this.residentBytes += size;
    return refMatrix(m, resident);
  }

  matrixRow(m: MatrixHandle, row: number, out: Vec, outOffset: number): void {
    decodeRow(m as RefMatrix, row, out, outOffset);
  }

  linear(x: Vec, rows: number, w: MatrixHandle, actQuant: boolean, out?: Vec): Vec {
    const y = (out as Float64Array | undefined) ?? new Float64Array(rows * w.outFeatures);
    refLinear(x, rows, w as RefMatrix, actQuant, y);
    return y;
  }

  rmsNorm(x: Vec, rows: number, dim: number, weight: Vec | null, eps: number, out?: Vec): Vec {
    const y = out ?? new Float64Array(rows * dim);
    ops.rmsNorm(x, rows, dim, weight, eps, y);
    return y;
  }

  rope(x: Vec, start: number, segments: number, stride: number, cos: Float64Array, sin: Float64Array, inverse: boolean): void {
    ops.rope(x, start, segments, stride, cos, sin, inverse);
  }

  fp8Simulate(x: Vec, start: number, length: number, block: number): void {
    fp8SimulateInPlace(x, start, length, block);
  }

  fp4Simulate(x: Vec, start: number, length: number, block: number): void {
    fp4SimulateInPlace(x, start, length, block);
  }

  hadamard(x: Vec, start: number, length: number, n: number): void {
    ops.hadamard(x, start, length, n);
  }

  attention(query: AttentionQuery, heads: number, headDim: number, sink: Vec, scale: number): void {
    ops.attention(query, heads, headDim, sink, scale);
  }

  softmaxPool(kv: Vec, score: Vec, slots: ReadonlyArray<{ row: number; offset: number }>, width: number, rowStride: number, out: Vec, outOffset: number): void {
    ops.softmaxPool(kv, score, slots, width, rowStride, out, outOffset);
  }

  indexerScores(q: Vec, qOffset: number, weights: Vec, wOffset: number, heads: number, headDim: number, keys: Vec, count: number, out: Float64Array): void {
    ops.indexerScores(q, qOffset, weights, wOffset, heads, headDim, keys, count, out);
  }

  hcCollapse(X: Vec, rows: number, hc: number, dim: number, pre: Float64Array): Vec {
    const out = new Float64Array(rows * dim);
    ops.hcCollapse(X, rows, hc, dim, pre, out);
    return out;
  }

  hcExpand(y: Vec, X: Vec, rows: number, hc: number, dim: number, post: Float64Array, comb: Float64Array): Vec {
    const out = new Float64Array(rows * hc * dim);
    ops.hcExpand(y, X, rows, hc, dim, post, comb, out);
    return out;
  }

  swiglu(g: Vec, u: Vec, rows: number, dim: number, limit: number, rowWeights: Float64Array | null): void {
    ops.swiglu(g, u, rows, dim, limit, rowWeights);
  }

  addRows(y: Vec, src: Vec, rowIndex: Int32Array, dim: number): void {
    ops.addRows(y, src, rowIndex, dim);
  }
}
