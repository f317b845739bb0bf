import { resolve } from "node:path";
import type { AttentionQuery, Backend, ExpertPicks, MatrixHandle, StoredMatrix, Vec, WeightFormat } from "../backend.js";
import { requireNativeAddon, type NativeAddon, type NativeMatrixPtr } from "./addon.js";

const FORMAT_CODE: Record<WeightFormat, number> = { fp8: 0, fp4: 1, bf16: 2, f32: 3 };

export interface NativeMatrix extends MatrixHandle {
  readonly ptr: NativeMatrixPtr;
}

/** The addon works on Float32Array; anything else (a caller's Float64Array) goes through a copy. */
function asF32(v: Vec): Float32Array {
  return v instanceof Float32Array ? v : Float32Array.from(v);
}

function asI32(a: ArrayLike<number>): Int32Array {
  return a instanceof Int32Array ? a : Int32Array.from(a);
}

/**
 * The addon's error with the weight's name in front ("layers.3.ffn.w2: dsv4 native: linear
 * (fp4 4096x2048, 16 rows): could not allocate … bytes of scratch"): the addon knows shapes,
 * not which tensor a product was for.
 */
function withMatrixName(err: unknown, name: string): Error {
  if (!(err instanceof Error)) return new Error(`${name}: ${String(err)}`);
  return new Error(`${name}: ${err.message}`, { cause: err });
}

const MiB = 1024 * 1024;
let heapKept = false;

/**
 * Once per process, unless DSV4_HEAP_TUNING=0: the C heap keeps freed blocks of up to 32 MiB
 * for reuse (native/src/heap_tuning.h). A step's outputs are fresh Float32Arrays (the logits
 * of 6 rows 3 MiB, of 16 rows 8 MiB), which glibc would otherwise map anew each time, and the
 * kernels then page-fault on every first write (flash-slice, 6 rows: ~940 faults a step, the
 * head product 36-41 ms instead of 33).
 */
function keepFreedMemory(addon: NativeAddon): void {
  if (heapKept || process.env.DSV4_HEAP_TUNING === "0" || typeof addon.keepFreedMemory !== "function") return;
  heapKept = true;
  addon.keepFreedMemory(32 * MiB, 512 * MiB);
}

/**
 * The C++ backend (native/): float32 activations, weights used in place from the mapped
 * checkpoint in their stored FP8/FP4/BF16 formats, SIMD kernels and a thread pool. Same
 * operations as the reference backend, in float32 (the golden's float32 criterion).
 */
export class NativeBackend implements Backend {
  readonly name = "native";
  readonly precision = "f32" as const;

  constructor(private readonly addon: NativeAddon = requireNativeAddon()) {
    // An addon built from an older checkout has no routedExperts: the model then runs the
    // experts one product at a time, as before.
    if (typeof addon.routedExperts !== "function") (this as { routedExperts?: unknown }).routedExperts = undefined;
    if (typeof addon.greedyRows !== "function") (this as { greedyRows?: unknown }).greedyRows = undefined;
    keepFreedMemory(addon);
  }

  /** Instruction set and thread count in use. */
  info(): { isa: string; threads: number; isas: string[] } {
    return this.addon.info();
  }

  alloc(n: number): Float32Array {
    return new Float32Array(n);
  }

  fromValues(values: ArrayLike<number>): Float32Array {
    return Float32Array.from(values);
  }

  uploadMatrix(m: StoredMatrix): NativeMatrix {
    const { format, outFeatures, inFeatures } = m;
    // FP4 scales (routed experts) are used in place from the mapping, so creating an expert
    // on its first use reads nothing; FP8 scales are few and become floats.
    const mappedScale = format === "fp4" && m.location && m.scaleLocation && m.scaleDtype !== "F32" ? m.scaleLocation : null;
    const scale = mappedScale ? null : (m.scale ?? null);
    if ((format === "fp8" || format === "fp4") && !scale && !mappedScale) throw new Error(`${m.name}: ${format} weight without scales`);
    const scaleF32 = m.scaleDtype === "F32";
    const scaleBytes = mappedScale ? mappedScale.byteLength : (scale?.byteLength ?? 0);
    let ptr: NativeMatrixPtr;
    let dataBytes: number;
    try {
      if (m.location) {
        ptr = this.addon.createMatrix(FORMAT_CODE[format], outFeatures, inFeatures, resolve(m.location.file), m.location.offset, m.location.byteLength, null, scale, scaleF32,
          mappedScale && resolve(mappedScale.file), mappedScale?.offset, mappedScale?.byteLength, m.repack === true);
        dataBytes = m.location.byteLength;
      } else {
        const data = m.readData();
        ptr = this.addon.createMatrix(FORMAT_CODE[format], outFeatures, inFeatures, null, 0, 0, data, scale, scaleF32, null, 0, 0, m.repack === true);
        dataBytes = data.byteLength;
      }
    } catch (err) {
      throw new Error(`${m.name}: ${(err as Error).message}`);
    }
    return { name: m.name, format, outFeatures, inFeatures, bytes: dataBytes + scaleBytes, ptr };
  }

  prefetchFile(path: string): number {
    return this.addon.prefetchMapping(path);
  }

  repacksFp4(): boolean {
    return this.addon.info().repacksFp4 === true;
  }

  alignRows(m: MatrixHandle): boolean {
    // (An addon built from an older checkout has no alignMatrix: its matrices stay mapped.)
    return typeof this.addon.alignMatrix === "function" && this.addon.alignMatrix((m as NativeMatrix).ptr);
  }

  lockFile(path: string): string | null {
    if (typeof this.addon.lockMapping !== "function") return "the native addon was built from an older checkout and cannot lock memory: rebuild it (npm rebuild dsv4)";
    return this.addon.lockMapping(path);
  }

  matrixRow(m: MatrixHandle, row: number, out: Vec, outOffset: number): void {
    if (out instanceof Float32Array) {
      this.addon.matrixRow((m as NativeMatrix).ptr, row, out, outOffset);
      return;
    }
    const tmp = new Float32Array(m.inFeatures);
    this.addon.matrixRow((m as NativeMatrix).ptr, row, tmp, 0);
    out.set(tmp, outOffset);
  }

  linear(x: Vec, rows: number, w: MatrixHandle, actQuant: boolean, out?: Vec): Vec {
    const y = out instanceof Float32Array ? out : new Float32Array(rows * w.outFeatures);
    try {
      this.addon.linear(asF32(x), rows, (w as NativeMatrix).ptr, actQuant, y);
    } catch (err) {
      throw withMatrixName(err, w.name);
    }
    if (out && out !== y) out.set(y);
    return out ?? y;
  }

  greedyRows(x: Vec, rows: number, w: MatrixHandle, masked: ReadonlyArray<readonly number[]>, exact?: Int32Array): Int32Array {
    const maskAt = new Int32Array(rows + 1);
    for (let r = 0; r < rows; r++) maskAt[r + 1] = maskAt[r]! + (masked[r]?.length ?? 0);
    const ids = new Int32Array(maskAt[rows]!);
    for (let r = 0; r < rows; r++) ids.set(masked[r] ?? [], maskAt[r]!);
    const out = new Int32Array(rows);
    try {
      this.addon.greedyRows!((w as NativeMatrix).ptr, asF32(x), rows, ids, maskAt, out, exact ?? null);
    } catch (err) {
      throw withMatrixName(err, w.name);
    }
    return out;
  }

  rmsNorm(x: Vec, rows: number, dim: number, weight: Vec | null, eps: number, out?: Vec): Vec {
    const y = out instanceof Float32Array ? out : new Float32Array(rows * dim);
    this.addon.rmsNorm(asF32(x), rows, dim, weight ? asF32(weight) : null, eps, y);
    if (out && out !== y) out.set(y);
    return out ?? y;
  }

  rope(x: Vec, start: number, segments: number, stride: number, cos: Float64Array, sin: Float64Array, inverse: boolean): void {
    this.inPlace(x, (xf) => this.addon.rope(xf, start, segments, stride, cos, sin, inverse));
  }

  fp8Simulate(x: Vec, start: number, length: number, block: number): void {
    this.inPlace(x, (xf) => this.addon.fp8Simulate(xf, start, length, block));
  }

  fp4Simulate(x: Vec, start: number, length: number, block: number): void {
    this.inPlace(x, (xf) => this.addon.fp4Simulate(xf, start, length, block));
  }

  hadamard(x: Vec, start: number, length: number, n: number): void {
    this.inPlace(x, (xf) => this.addon.hadamard(xf, start, length, n));
  }

  attention(query: AttentionQuery, heads: number, headDim: number, sink: Vec, scale: number): void {
    const rows = query.sources.map((s) => asF32(s.rows));
    const indices = query.sources.map((s) => asI32(s.indices));
    const counts = Int32Array.from(query.sources, (s) => s.count);
    this.inPlace(query.out, (out) => this.addon.attention(asF32(query.q), query.qOffset, out, query.outOffset, rows, indices, counts, heads, headDim, asF32(sink), scale));
  }

  softmaxPool(kv: Vec, score: Vec, slots: ReadonlyArray<{ row: number; offset: number }>, width: number, rowStride: number, out: Vec, outOffset: number): void {
    const pairs = new Int32Array(2 * slots.length);
    slots.forEach((s, i) => {
      pairs[2 * i] = s.row;
      pairs[2 * i + 1] = s.offset;
    });
    this.inPlace(out, (o) => this.addon.softmaxPool(asF32(kv), asF32(score), pairs, width, rowStride, o, outOffset));
  }

  indexerScores(q: Vec, qOffset: number, weights: Vec, wOffset: number, heads: number, headDim: number, keys: Vec, count: number, out: Float64Array): void {
    this.addon.indexerScores(asF32(q), qOffset, asF32(weights), wOffset, heads, headDim, asF32(keys), count, out);
  }

  hcCollapse(X: Vec, rows: number, hc: number, dim: number, pre: Float64Array): Float32Array {
    const out = new Float32Array(rows * dim);
    this.addon.hcCollapse(asF32(X), rows, hc, dim, pre, out);
    return out;
  }

  hcExpand(y: Vec, X: Vec, rows: number, hc: number, dim: number, post: Float64Array, comb: Float64Array): Float32Array {
    const out = new Float32Array(rows * hc * dim);
    this.addon.hcExpand(asF32(y), asF32(X), rows, hc, dim, post, comb, out);
    return out;
  }

  swiglu(g: Vec, u: Vec, rows: number, dim: number, limit: number, rowWeights: Float64Array | null): void {
    this.inPlace(g, (gf) => this.addon.swiglu(gf, asF32(u), rows, dim, limit, rowWeights));
  }

  addRows(y: Vec, src: Vec, rowIndex: Int32Array, dim: number): void {
    this.inPlace(y, (yf) => this.addon.addRows(yf, asF32(src), rowIndex, dim));
  }

  routedExperts(x: Vec, dim: number, experts: readonly ExpertPicks[], inter: number, limit: number, y: Vec): void {
    let picks = 0;
    for (const e of experts) picks += e.rows.length;
    const rowIndex = new Int32Array(picks);
    const rowWeights = new Float64Array(picks);
    const counts = new Int32Array(experts.length);
    const matrices: NativeMatrixPtr[] = [];
    let at = 0;
    experts.forEach((e, i) => {
      if (e.weights.length !== e.rows.length) throw new RangeError(`routedExperts: expert ${i} has ${e.rows.length} rows but ${e.weights.length} weights`);
      rowIndex.set(e.rows, at);
      rowWeights.set(e.weights, at);
      at += e.rows.length;
      counts[i] = e.rows.length;
      matrices.push((e.w1 as NativeMatrix).ptr, (e.w3 as NativeMatrix).ptr, (e.w2 as NativeMatrix).ptr);
    });
    try {
      this.inPlace(y, (yf) => this.addon.routedExperts(asF32(x), dim, rowIndex, rowWeights, counts, matrices, inter, limit, yf));
    } catch (err) {
      throw withMatrixName(err, `${experts[0]?.w1.name ?? "routed experts"} and ${experts.length - 1} more`);
    }
  }

  /** Runs an in-place kernel on x, through a float32 copy when x is not float32. */
  private inPlace(x: Vec, fn: (xf: Float32Array) => void): void {
    if (x instanceof Float32Array) {
      fn(x);
      return;
    }
    const xf = Float32Array.from(x);
    fn(xf);
    x.set(xf);
  }
}
