import type { AttentionQuery, Backend, MatrixHandle, StoredMatrix, Vec } from "../kernels/backend.js";

/**
 * A Backend that forwards every operation to `inner`: the base of wrappers that watch or
 * steer a few operations (the lockstep's quantisation points) and leave the rest alone.
 */
export class DelegatingBackend implements Backend {
  constructor(readonly inner: Backend) {}

  get name(): string {
    return this.inner.name;
  }

  get precision(): "f64" | "f32" {
    return this.inner.precision;
  }

  alloc(n: number): Vec {
    return this.inner.alloc(n);
  }

  fromValues(values: ArrayLike<number>): Vec {
    return this.inner.fromValues(values);
  }

  uploadMatrix(m: StoredMatrix): MatrixHandle {
    return this.inner.uploadMatrix(m);
  }

  matrixRow(m: MatrixHandle, row: number, out: Vec, outOffset: number): void {
    this.inner.matrixRow(m, row, out, outOffset);
  }

  linear(x: Vec, rows: number, w: MatrixHandle, actQuant: boolean, out?: Vec): Vec {
    return this.inner.linear(x, rows, w, actQuant, out);
  }

  rmsNorm(x: Vec, rows: number, dim: number, weight: Vec | null, eps: number, out?: Vec): Vec {
    return this.inner.rmsNorm(x, rows, dim, weight, eps, out);
  }

  rope(x: Vec, start: number, segments: number, stride: number, cos: Float64Array, sin: Float64Array, inverse: boolean): void {
    this.inner.rope(x, start, segments, stride, cos, sin, inverse);
  }

  fp8Simulate(x: Vec, start: number, length: number, block: number): void {
    this.inner.fp8Simulate(x, start, length, block);
  }

  fp4Simulate(x: Vec, start: number, length: number, block: number): void {
    this.inner.fp4Simulate(x, start, length, block);
  }

  hadamard(x: Vec, start: number, length: number, n: number): void {
    this.inner.hadamard(x, start, length, n);
  }

  attention(query: AttentionQuery, heads: number, headDim: number, sink: Vec, scale: number): void {
    this.inner.attention(query, heads, headDim, sink, scale);
  }

  softmaxPool(kv: Vec, score: Vec, slots: ReadonlyArray<{ row: number; offset: number }>, width: number, rowStride: number, out: Vec, outOffset: number): void {
    this.inner.softmaxPool(kv, score, slots, width, rowStride, out, outOffset);
  }

  indexerScores(q: Vec, qOffset: number, weights: Vec, wOffset: number, heads: number, headDim: number, keys: Vec, count: number, out: Float64Array): void {
    this.inner.indexerScores(q, qOffset, weights, wOffset, heads, headDim, keys, count, out);
  }

  hcCollapse(X: Vec, rows: number, hc: number, dim: number, pre: Float64Array): Vec {
    return this.inner.hcCollapse(X, rows, hc, dim, pre);
  }

  hcExpand(y: Vec, X: Vec, rows: number, hc: number, dim: number, post: Float64Array, comb: Float64Array): Vec {
    return this.inner.hcExpand(y, X, rows, hc, dim, post, comb);
  }

  swiglu(g: Vec, u: Vec, rows: number, dim: number, limit: number, rowWeights: Float64Array | null): void {
    this.inner.swiglu(g, u, rows, dim, limit, rowWeights);
  }

  addRows(y: Vec, src: Vec, rowIndex: Int32Array, dim: number): void {
    this.inner.addRows(y, src, rowIndex, dim);
  }
}
