import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/** The C++ addon's functions (native/src/addon.cc); argument order mirrors Backend's. */
export interface NativeAddon {
  /**
   * Scales come from `scale` bytes, or from the file range scaleFile/scaleOffset/scaleByteLength (E8M0, mapped) when scaleFile is given.
   * `fp4Repack`: an FP4 matrix is copied into the layout the AVX-512 kernels stream (when that table is in use), its mapped pages let go.
   */
  createMatrix(format: number, outFeatures: number, inFeatures: number, file: string | null, offset: number, byteLength: number,
    bytes: Uint8Array | null, scale: Uint8Array | null, scaleF32: boolean, scaleFile?: string | null, scaleOffset?: number, scaleByteLength?: number,
    fp4Repack?: boolean): NativeMatrixPtr;
  matrixRow(m: NativeMatrixPtr, row: number, out: Float32Array, outOffset: number): void;
  /** Where a matrix's rows live: the checkpoint's mapped pages, bytes copied at creation, an aligned copy of mapped rows (alignMatrix), or FP4 repacked. */
  matrixStorage(m: NativeMatrixPtr): "mapped" | "owned" | "copied" | "packed";
  /** Copies a mapped matrix whose rows do not start on a cache line to aligned memory of its own (native/src/matrix_io.h align_rows); true when it did. */
  alignMatrix(m: NativeMatrixPtr): boolean;
  linear(x: Float32Array, rows: number, m: NativeMatrixPtr, actQuant: boolean, out: Float32Array): void;
  /** greedy_head.h: each row's greedy token into out (-1: undecided); masked ids of row r at [maskAt[r], maskAt[r + 1]). */
  greedyRows?(m: NativeMatrixPtr, x: Float32Array, rows: number, masked: Int32Array, maskAt: Int32Array, out: Int32Array, exact: Int32Array | null): void;
  rmsNorm(x: Float32Array, rows: number, dim: number, weight: Float32Array | null, eps: number, out: Float32Array): void;
  rope(x: Float32Array, start: number, segments: number, stride: number, cos: Float64Array, sin: Float64Array, inverse: boolean): void;
  fp8Simulate(x: Float32Array, start: number, length: number, block: number): void;
  fp4Simulate(x: Float32Array, start: number, length: number, block: number): void;
  hadamard(x: Float32Array, start: number, length: number, n: number): void;
  attention(q: Float32Array, qOffset: number, out: Float32Array, outOffset: number, rows: Float32Array[], indices: Int32Array[],
    counts: Int32Array, heads: number, headDim: number, sink: Float32Array, scale: number): void;
  softmaxPool(kv: Float32Array, score: Float32Array, slots: Int32Array, width: number, rowStride: number, out: Float32Array, outOffset: number): void;
  indexerScores(q: Float32Array, qOffset: number, weights: Float32Array, wOffset: number, heads: number, headDim: number,
    keys: Float32Array, count: number, out: Float64Array): void;
  hcCollapse(X: Float32Array, rows: number, hc: number, dim: number, pre: Float64Array, out: Float32Array): void;
  hcExpand(y: Float32Array, X: Float32Array, rows: number, hc: number, dim: number, post: Float64Array, comb: Float64Array, out: Float32Array): void;
  swiglu(g: Float32Array, u: Float32Array, rows: number, dim: number, limit: number, rowWeights: Float64Array | null): void;
  addRows(y: Float32Array, src: Float32Array, rowIndex: Int32Array, dim: number): void;
  /** Routed experts as one operation: matrices holds w1, w3, w2 per expert, counts its picks (rows of rowIndex / rowWeights in order). */
  routedExperts(x: Float32Array, dim: number, rowIndex: Int32Array, rowWeights: Float64Array, counts: Int32Array, matrices: NativeMatrixPtr[],
    inter: number, limit: number, y: Float32Array): void;
  /** repacksFp4: the kernel table in use reads repacked FP4 matrices (createMatrix's fp4Repack); absent from older builds. */
  info(): { isa: string; threads: number; isas: string[]; repacksFp4?: boolean };
  /** Switch instruction set (tests); false when this CPU or build lacks it. */
  selectIsa(isa: string): boolean;
  /** Best GB/s of a multi-threaded read over a buffer of `bytes`. */
  memoryBandwidth(bytes: number, reps: number): number;
  /** GFLOP/s of the selected kernels' multiply-add loop: each pool thread's best of `reps` ~0.5 ms windows, summed. */
  fmaPeak(reps: number): number;
  /** fmaPeak for bf16 dot products (vdpbf16ps), which the avx512bf16 table's quantised and bf16 products use; 0 on tables without them. */
  dotPeak(reps: number): number;
  /** Restarts the thread pool with `threads` threads (1-1024; benchmarks of thread scaling); returns the count it got. */
  setThreads(threads: number): number;
  /**
   * Lets the C heap keep freed blocks of up to mmapThreshold bytes and trim its free top only
   * past trimThreshold (glibc's M_MMAP_THRESHOLD, M_TRIM_THRESHOLD); false where it cannot.
   */
  keepFreedMemory?(mmapThreshold: number, trimThreshold: number): boolean;
  /** Microseconds per pool run of `tasks` empty tasks: the best of 5 windows of `calls` runs. */
  poolOverhead(tasks: number, calls: number): number;
  /**
   * Test-only: after `count` more scratch-buffer requests, every request fails as if memory had
   * run out (on any thread); a negative count turns this off. The failing call throws an Error
   * naming the operation, its sizes and the bytes asked for.
   */
  failAllocationsAfter(count: number): void;
  /** Reads one byte of every page of that file's mapping, over the pool; returns its size, 0 when the file is not mapped. */
  prefetchMapping(path: string): number;
  /** mlock of that file's mapping: null when locked, else why not (the locked-memory limit named where it was the cause). Throws when the file is not mapped. */
  lockMapping?(path: string): string | null;
  /** TCP_NOTSENT_LOWAT on a TCP socket's descriptor (src/server/socket-limits.ts); the errno, 0 when set. */
  setNotsentLowat(fd: number, bytes: number): number;
  /**
   * src/engine/softmax.ts's shiftedExp (bin, count, mass null) or its binned form over float32
   * logits, the same doubles bit for bit (`tables`: its FRACTION, NEGATIVE_POWER and the five
   * coefficients); returns the sum.
   */
  shiftedExp?(x: Float32Array, max: number, scale: number, tables: Float64Array, out: Float64Array, bin: Uint16Array | null, count: Float64Array | null, mass: Float64Array | null): number;
  /** The largest of x (-Infinity for none). */
  maxOf?(x: Float32Array): number;
  /** The first index of the largest of x (0 when none is above -Infinity). */
  argmax?(x: Float32Array): number;
  /** sampleToken's draw over w[0, n): the kept weights' running sum against u. */
  drawKept?(w: Float64Array, n: number, threshold: number, atThreshold: number, lowest: number, u: number): number;
  /** The sum of the weights drawKept keeps, in index order. */
  keptMass?(w: Float64Array, n: number, threshold: number, atThreshold: number, lowest: number): number;
  /** top-cut.ts's gather: w[i] for bin[i] == b (above: > b), i < n, in order into out; returns the count. */
  gatherBin?(w: Float64Array, n: number, bin: Uint16Array, b: number, above: boolean, out: Float64Array): number;
  /** SO_RCVBUF on a socket's descriptor: a fixed receive buffer, for tests that play a client that stops reading; the errno, 0 when set. */
  setReceiveBuffer(fd: number, bytes: number): number;
}

/** Opaque handle of a matrix owned by the addon. */
export type NativeMatrixPtr = { readonly __nativeMatrix: unique symbol };

/** Where `npm install` (node-gyp in native/) puts the addon, relative to this file in dist/src/kernels/native. */
const CANDIDATES = ["../../../../native/build/Release/dsv4.node", "../../../../native/build/Debug/dsv4.node"];

let cached: { addon: NativeAddon } | { error: string } | undefined;

function load(): { addon: NativeAddon } | { error: string } {
  const paths = process.env.DSV4_NATIVE_ADDON ? [process.env.DSV4_NATIVE_ADDON] : CANDIDATES.map((p) => fileURLToPath(new URL(p, import.meta.url)));
  const found = paths.find((p) => existsSync(p));
  if (!found) return { error: `addon not built (no ${paths[0]})` };
  try {
    const addon = createRequire(import.meta.url)(found) as NativeAddon;
    addon.info();
    return { addon };
  } catch (err) {
    return { error: `cannot load ${found}: ${String((err as Error).message).split("\n")[0]}` };
  }
}

/** The addon, or why it is unavailable (loaded once per process). */
export function nativeAddon(): { addon: NativeAddon } | { error: string } {
  return (cached ??= load());
}

/**
 * How to get the addon back. `npm rebuild dsv4` re-runs the package's install script where dsv4
 * is a dependency (`npm run install` does not exist there); a checkout of dsv4 itself runs its
 * own script.
 */
export const REBUILD_ADVICE = "rebuild it with `npm rebuild dsv4` (needs a C++ compiler and python for node-gyp; in a dsv4 checkout: `npm run install`)";

export function requireNativeAddon(): NativeAddon {
  const r = nativeAddon();
  if ("error" in r) throw new Error(`native backend unavailable: ${r.error}; ${REBUILD_ADVICE}`);
  return r.addon;
}
