import { e2m1Table, e4m3Table, e8m0ToNumber } from "../../formats/dtypes.js";
import type { MatrixHandle, StoredMatrix, Vec } from "../backend.js";
import { quantizeE4M3Blocks } from "./quant.js";
import { mappedRows, residentRows, type WeightRows } from "./weight-rows.js";

const E4M3 = e4m3Table();
const E2M1 = e2m1Table();
const ACT_BLOCK = 128;
const FP8_BLOCK = 128;
const FP4_BLOCK = 32;

/** The reference backend keeps the stored bytes (resident or read on demand) and the decoded power-of-two scales. */
export interface RefMatrix extends MatrixHandle {
  source: WeightRows;
  /** Block scales as stored (E8M0 bytes, decoded through a table at use) or F32 values. */
  scale: Uint8Array | Float32Array | undefined;
  e8m0: boolean;
}

let bf16Bits = new Int32Array(0);
let bf16Floats = new Float32Array(0);
function ensureBf16Scratch(K: number): void {
  if (bf16Bits.length < K) {
    bf16Bits = new Int32Array(K);
    bf16Floats = new Float32Array(bf16Bits.buffer);
  }
}

const E8M0 = Float32Array.from({ length: 256 }, (_, b) => e8m0ToNumber(b));

function storedScales(m: StoredMatrix): Uint8Array | Float32Array | undefined {
  if (!m.scale || m.scaleDtype !== "F32") return m.scale;
  return new Float32Array(m.scale.buffer.slice(m.scale.byteOffset, m.scale.byteOffset + m.scale.byteLength));
}

function scaleAt(w: RefMatrix, i: number): number {
  return w.e8m0 ? E8M0[w.scale![i]!]! : w.scale![i]!;
}

/** A reference matrix; `resident` false reads its rows from the checkpoint file at each use (it needs `m.location`). */
export function refMatrix(m: StoredMatrix, resident = true): RefMatrix {
  if ((m.format === "fp8" || m.format === "fp4") && !m.scale) throw new Error(`${m.name}: ${m.format} weight without scales`);
  let source: WeightRows;
  let dataBytes: number;
  if (!resident && m.location) {
    source = mappedRows({ ...m, location: m.location });
    dataBytes = m.location.byteLength;
  } else {
    let data = m.readData();
    if (data.byteOffset % 4 !== 0) data = data.slice();
    source = residentRows(data, m.outFeatures);
    dataBytes = data.byteLength;
  }
  return {
    name: m.name,
    format: m.format,
    outFeatures: m.outFeatures,
    inFeatures: m.inFeatures,
    source,
    scale: storedScales(m),
    e8m0: m.scaleDtype !== "F32",
    bytes: dataBytes + (m.scale ? m.scale.byteLength : 0),
  };
}

/** 16-bit words over row bytes (4-byte aligned: resident data is, the mapped buffer starts at 0). */
function words(d: Uint8Array): Uint16Array {
  return new Uint16Array(d.buffer, d.byteOffset, d.byteLength >> 1);
}

/** Decode weight row `n` (all K values, scales applied) into `out`. */
export function decodeRow(w: RefMatrix, n: number, out: Float64Array | Float32Array, outOffset = 0): void {
  decodeRowBytes(w, n, w.source.rows(n, n + 1), out, outOffset);
}

/** Calls `fn(n, bytes, base)` for every row n, `bytes.subarray(base)` holding row n, reading rows a chunk at a time. */
function forEachRow(w: RefMatrix, fn: (n: number, d: Uint8Array, base: number) => void): void {
  const N = w.outFeatures;
  const { chunkRows, rowBytes } = w.source;
  for (let n0 = 0; n0 < N; n0 += chunkRows) {
    const n1 = Math.min(N, n0 + chunkRows);
    const d = w.source.rows(n0, n1);
    for (let n = n0; n < n1; n++) fn(n, d, (n - n0) * rowBytes);
  }
}

/** Decode row `n` from its bytes `d` (the row alone) into `out`. */
function decodeRowBytes(w: RefMatrix, n: number, d: Uint8Array, out: Float64Array | Float32Array, outOffset: number): void {
  const K = w.inFeatures;
  ensureBf16Scratch(K);
  switch (w.format) {
    case "fp8": {
      const KB = Math.ceil(K / FP8_BLOCK);
      const srow = Math.floor(n / FP8_BLOCK) * KB;
      for (let k = 0; k < K; k++) out[outOffset + k] = E4M3[d[k]!]! * scaleAt(w, srow + Math.floor(k / FP8_BLOCK));
      break;
    }
    case "fp4": {
      const srow = n * (K / FP4_BLOCK);
      for (let k = 0; k < K; k += 2) {
        const byte = d[k >> 1]!;
        const s = scaleAt(w, srow + Math.floor(k / FP4_BLOCK));
        out[outOffset + k] = E2M1[byte & 15]! * s;
        out[outOffset + k + 1] = E2M1[byte >> 4]! * s;
      }
      break;
    }
    case "bf16": {
      // A bf16 is the top half of an f32: widen the words and reinterpret.
      const ws = words(d);
      for (let k = 0; k < K; k++) bf16Bits[k] = ws[k]! << 16;
      for (let k = 0; k < K; k++) out[outOffset + k] = bf16Floats[k]!;
      break;
    }
    case "f32": {
      const view = new DataView(d.buffer, d.byteOffset, K * 4);
      for (let k = 0; k < K; k++) out[outOffset + k] = view.getFloat32(k * 4, true);
      break;
    }
  }
}

/**
 * y = x · Wᵀ in float64. With activation quantisation the block products are exact
 * (E4M3 × E4M3/E2M1 grid values times powers of two), so the float64 result differs from
 * the reference's only by the order of the final additions.
 */
export function refLinear(x: Vec, rows: number, w: RefMatrix, actQuant: boolean, out: Float64Array): void {
  const K = w.inFeatures;
  const N = w.outFeatures;
  if (x.length < rows * K) throw new Error(`${w.name}: input has ${x.length} values, need ${rows} x ${K}`);
  let xs: Float64Array | Vec = x;
  let sx: Float64Array | null = null;
  const actBlocks = Math.ceil(K / ACT_BLOCK);
  if (actQuant) {
    const q = new Float64Array(rows * K);
    sx = new Float64Array(rows * actBlocks);
    for (let r = 0; r < rows; r++) {
      quantizeE4M3Blocks(x, r * K, K, ACT_BLOCK, q.subarray(r * K, (r + 1) * K), sx.subarray(r * actBlocks, (r + 1) * actBlocks));
    }
    xs = q;
  }
  const wrow = new Float64Array(K);
  if (w.format === "fp8" || w.format === "fp4") {
    // Keep the weight's grid values and its scales apart so every block sum is exact.
    const block = w.format === "fp8" ? FP8_BLOCK : FP4_BLOCK;
    const nb = Math.ceil(K / block);
    const wscale = new Float64Array(nb);
    forEachRow(w, (n, d, base) => {
      if (w.format === "fp8") {
        for (let k = 0; k < K; k++) wrow[k] = E4M3[d[base + k]!]!;
        const srow = Math.floor(n / FP8_BLOCK) * nb;
        for (let b = 0; b < nb; b++) wscale[b] = scaleAt(w, srow + b);
      } else {
        for (let k = 0; k < K; k += 2) {
          const byte = d[base + (k >> 1)]!;
          wrow[k] = E2M1[byte & 15]!;
          wrow[k + 1] = E2M1[byte >> 4]!;
        }
        for (let b = 0; b < nb; b++) wscale[b] = scaleAt(w, n * nb + b);
      }
      for (let r = 0; r < rows; r++) {
        const xo = r * K;
        let acc = 0;
        for (let b = 0; b < nb; b++) {
          const k0 = b * block;
          const k1 = Math.min(k0 + block, K);
          let s = 0;
          for (let k = k0; k < k1; k++) s += xs[xo + k]! * wrow[k]!;
          const xscale = sx ? sx[r * actBlocks + Math.floor(k0 / ACT_BLOCK)]! : 1;
          acc += s * xscale * wscale[b]!;
        }
        out[r * N + n] = acc;
      }
    });
    return;
  }
  if (w.format === "bf16" && !sx) {
    refLinearBf16(xs, rows, w, out);
    return;
  }
  forEachRow(w, (n, d, base) => {
    decodeRowBytes(w, n, d.subarray(base, base + w.source.rowBytes), wrow, 0);
    for (let r = 0; r < rows; r++) {
      const xo = r * K;
      let acc = 0;
      if (sx) {
        for (let b = 0; b < actBlocks; b++) {
          let s = 0;
          for (let k = b * ACT_BLOCK; k < Math.min(K, (b + 1) * ACT_BLOCK); k++) s += xs[xo + k]! * wrow[k]!;
          acc += s * sx[r * actBlocks + b]!;
        }
      } else {
        for (let k = 0; k < K; k++) acc += xs[xo + k]! * wrow[k]!;
      }
      out[r * N + n] = acc;
    }
  });
}

/** Unquantised product with a bf16 matrix: each weight row is widened once and used for every input row. */
function refLinearBf16(x: Vec, rows: number, w: RefMatrix, out: Float64Array): void {
  const K = w.inFeatures;
  const N = w.outFeatures;
  ensureBf16Scratch(K);
  const bits = bf16Bits;
  const wf = bf16Floats;
  let chunk: Uint8Array | null = null;
  let ws: Uint16Array = new Uint16Array(0);
  forEachRow(w, (n, d, base) => {
    if (d !== chunk) {
      chunk = d;
      ws = words(d);
    }
    const wbase = base >> 1;
    for (let k = 0; k < K; k++) bits[k] = ws[wbase + k]! << 16;
    for (let r = 0; r < rows; r++) {
      const xo = r * K;
      let acc = 0;
      for (let k = 0; k < K; k++) acc += x[xo + k]! * wf[k]!;
      out[r * N + n] = acc;
    }
  });
}
