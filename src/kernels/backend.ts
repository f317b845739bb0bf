/**
 * The numeric operations the model is written against. A backend owns how numbers sit in
 * memory and how fast they move; it never changes what is computed. Every backend passes
 * the same conformance tests (spec §11), so the model code never knows which one runs.
 *
 * Conventions: activations are row-major batches `[rows, width]` in the backend's float
 * type (`Vec`); weights stay in their checkpoint format and are decoded inside kernels.
 */

export type Vec = Float64Array | Float32Array;

export type WeightFormat = "fp8" | "fp4" | "bf16" | "f32";

/** A weight matrix `[outFeatures, inFeatures]` exactly as the checkpoint stores it. */
export interface StoredMatrix {
  name: string;
  format: WeightFormat;
  outFeatures: number;
  inFeatures: number;
  /**
   * The weight bytes, read on call (positional reads): fp8 E4M3 [out, in]; fp4 packed E2M1
   * [out, in/2], low nibble first; bf16 LE u16 [out, in]; f32 LE [out, in].
   */
  readData(): Uint8Array;
  /** Where those bytes sit in a checkpoint file, when they do, so a backend can map them instead of copying. */
  location: { file: string; offset: number; byteLength: number } | null;
  /** Block scales, fp8 [ceil(out/128), ceil(in/128)], fp4 [out, in/32]: E8M0 bytes, or F32 (Base checkpoints). */
  scale?: Uint8Array;
  scaleDtype?: "F8_E8M0" | "F32";
  /** Where the scale bytes sit in a checkpoint file, when they do: a backend that maps them need not read `scale`. */
  scaleLocation?: { file: string; offset: number; byteLength: number } | null;
  /**
   * The backend may keep these weights in a layout of its own when its kernels stream that
   * faster (a copy, the file's pages let go): the native backend does for FP4 on AVX-512.
   * Products are the same bits either way.
   */
  repack?: boolean;
}

/** Opaque handle a backend returns for an uploaded matrix. */
export interface MatrixHandle {
  readonly name: string;
  readonly outFeatures: number;
  readonly inFeatures: number;
  readonly format: WeightFormat;
  /** Bytes the backend keeps for this matrix (weights + scales). */
  readonly bytes: number;
}

export interface AttentionQuery {
  /** Query heads `[heads, headDim]` starting at `qOffset` of `q`. */
  q: Vec;
  qOffset: number;
  /** Where the output `[heads, headDim]` goes. */
  out: Vec;
  outOffset: number;
  /** Key/value row sources: each a buffer of rows `[n, headDim]` and the row indices to attend. */
  sources: ReadonlyArray<{ rows: Vec; indices: ArrayLike<number>; count: number }>;
}

export interface Backend {
  readonly name: string;
  /** The float type activations are computed in. */
  readonly precision: "f64" | "f32";

  alloc(n: number): Vec;
  /** Copy values into a new backend vector (parameters such as norm weights). */
  fromValues(values: ArrayLike<number>): Vec;
  /** Take ownership of a stored matrix (kept quantised). */
  uploadMatrix(m: StoredMatrix): MatrixHandle;
  /**
   * Touch every page of a checkpoint file the backend has mapped (model/prefetch.ts); returns
   * the bytes covered, 0 when it has not mapped that file. Absent: the backend maps nothing.
   */
  prefetchFile?(path: string): number;
  /**
   * Keep a checkpoint file the backend has mapped in memory, never paged out (mlock: llama.cpp's
   * --mlock); null when done, else why not. Absent: the backend maps nothing (its weights live
   * in its own memory).
   */
  lockFile?(path: string): string | null;
  /**
   * Whether uploading FP4 weights with `StoredMatrix.repack` copies them into a layout of the
   * backend's own (the native backend on its AVX-512 kernel tables). Absent: never.
   */
  repacksFp4?(): boolean;
  /**
   * Copy a mapped matrix whose rows do not start on a cache line into aligned memory of the
   * backend's own (locked if its file is), letting the mapped pages go; true if it copied.
   * Products are the same bits either way. Only at load, before any product runs on it.
   */
  alignRows?(m: MatrixHandle): boolean;
  /** One row of a matrix, decoded (embedding lookup). */
  matrixRow(m: MatrixHandle, row: number, out: Vec, outOffset: number): void;

  /**
   * `out[r, n] = Σ_k x[r, k] · W[n, k]`. With `actQuant` each row of x is first quantised to
   * E4M3 in blocks of 128 with power-of-two scales (spec §3.5), as the reference does in
   * front of every FP8/FP4 GEMM; without it x is used as is.
   */
  linear(x: Vec, rows: number, w: MatrixHandle, actQuant: boolean, out?: Vec): Vec;

  /** RMSNorm over each `dim`-wide row, times `weight` when given (spec §3.1, §3.2). */
  rmsNorm(x: Vec, rows: number, dim: number, weight: Vec | null, eps: number, out?: Vec): Vec;

  /**
   * Rotate interleaved pairs (spec §10) of `segments` vectors starting at `start`, `stride` apart:
   * pair i of each is multiplied by (cos[i] + i·sin[i]), or by its conjugate when `inverse`.
   */
  rope(x: Vec, start: number, segments: number, stride: number, cos: Float64Array, sin: Float64Array, inverse: boolean): void;

  /** Quantise-dequantise in place to E4M3 (block = 64 or 128) or E2M1 (block 32) grids: the reference's "simulation". */
  fp8Simulate(x: Vec, start: number, length: number, block: number): void;
  fp4Simulate(x: Vec, start: number, length: number, block: number): void;
  /** Sylvester Hadamard transform of consecutive `n`-wide segments, scaled by n^-1/2. */
  hadamard(x: Vec, start: number, length: number, n: number): void;

  /** Sparse attention with a per-head sink logit (spec §5.3), softmax scale given. */
  attention(query: AttentionQuery, heads: number, headDim: number, sink: Vec, scale: number): void;

  /** Gated softmax pooling per feature over `n` slots: out[j] = Σ_s softmax_s(score[s, j]) · kv[s, j]. */
  softmaxPool(kv: Vec, score: Vec, slots: ReadonlyArray<{ row: number; offset: number }>, width: number, rowStride: number, out: Vec, outOffset: number): void;

  /** Indexer scores for one query: score[s] = Σ_h w[h] · relu(q[h] · keys[s]) for s < count. */
  indexerScores(q: Vec, qOffset: number, weights: Vec, wOffset: number, heads: number, headDim: number, keys: Vec, count: number, out: Float64Array): void;

  /**
   * Hyper-connection read (spec §4): `out[r] = Σ_j pre[r, j] · X[r, j]` over the `hc` streams of
   * `dim` values of each row; X is [rows, hc, dim].
   */
  hcCollapse(X: Vec, rows: number, hc: number, dim: number, pre: Float64Array): Vec;
  /**
   * Hyper-connection write (spec §4): `out[r, k] = post[r, k] · y[r] + Σ_j comb[r, j, k] · X[r, j]`,
   * the terms added in that order; y is [rows, dim], X and the result [rows, hc, dim].
   */
  hcExpand(y: Vec, X: Vec, rows: number, hc: number, dim: number, post: Float64Array, comb: Float64Array): Vec;
  /**
   * SwiGLU in place (spec §7): `g ← silu(min(g, limit)) · clamp(u, ±limit)` (no clamp when
   * limit <= 0), times `rowWeights[r]` for row r when given; g and u are [rows, dim].
   */
  swiglu(g: Vec, u: Vec, rows: number, dim: number, limit: number, rowWeights: Float64Array | null): void;
  /** `y[rowIndex[i]] += src[i]` for the `dim`-wide rows i of src, in order. */
  addRows(y: Vec, src: Vec, rowIndex: Int32Array, dim: number): void;
  /**
   * Optional: one layer's routed experts for a batch (spec §7). For each expert in order,
   * its rows of x go through `w2(swiglu(w1 x, w3 x; limit) · weight)` (activation-quantised
   * products) and are added to y: the same arithmetic as one linear, linear, swiglu, linear
   * and addRows per expert, bit for bit, which is what the model does without it. A backend
   * has it when running the experts as one operation saves the per-product hand-offs.
   */
  routedExperts?(x: Vec, dim: number, experts: readonly ExpertPicks[], inter: number, limit: number, y: Vec): void;
  /**
   * The greedy token of each of `rows` rows of x·wᵀ for a BF16 w (the head): the first index
   * of the largest output among those not in `masked[r]`, exactly what argmax over `linear`'s
   * outputs gives with the masked ones at -Infinity, found without computing every output
   * exactly. -1 where the backend does not decide a row (the caller then takes its exact
   * outputs). `exact`, when given, gets how many outputs of each row were computed exactly.
   */
  greedyRows?(x: Vec, rows: number, w: MatrixHandle, masked: ReadonlyArray<readonly number[]>, exact?: Int32Array): Int32Array;
}

/** A routed expert's matrices and the batch rows (with their routing weights) that picked it. */
export interface ExpertPicks {
  w1: MatrixHandle;
  w3: MatrixHandle;
  w2: MatrixHandle;
  rows: Int32Array;
  weights: Float64Array;
}
