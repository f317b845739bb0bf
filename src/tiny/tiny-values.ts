import { numberToBf16, numberToE2M1, numberToE4M3, E2M1_MAX, E4M3_MAX } from "../formats/dtypes.js";
import { elementCount } from "../formats/safetensors.js";
import type { TensorSpec } from "../model/schema.js";
import { normalQuantiles, Rng } from "./tiny-random.js";

/**
 * How one generated tensor's values are drawn. Quantised weights are random codes times
 * random power-of-two block scales, the shape of what the reference quantiser produces
 * from Gaussian weights, generated directly because that is ~10x cheaper at Flash sizes.
 */
export type Recipe =
  | { kind: "normal"; mean: number; std: number } // BF16 or F32
  | { kind: "uniform"; mean: number; halfWidth: number } // F32
  | { kind: "fp8-codes" } // F8_E4M3 codes, std FP8_CODE_STD
  | { kind: "fp4-codes" } // I8, two E2M1 codes per byte, std FP4_CODE_STD
  | { kind: "scale"; exponent: number } // F8_E8M0 bytes 2^(exponent + {-1,0,0,+1})
  | { kind: "tid2eid"; experts: number }; // I64 rows of distinct expert ids

/** Spread of the stored codes before scaling; a block's scale brings them to the target std. */
export const FP8_CODE_STD = 100;
export const FP4_CODE_STD = 2;

/**
 * The E8M0 exponent that gives codes of spread `codeStd` a spread of about 1/sqrt(fanIn).
 * Written with log2 of the integers so that half-way cases (odd powers of two) are exact
 * and round the same way everywhere.
 */
export function scaleExponent(fanIn: number, codeStd: number): number {
  return Math.round(-0.5 * Math.log2(fanIn) - Math.log2(codeStd));
}

let fp8Table: Uint8Array | null = null;
let fp4PairTable: Uint8Array | null = null;

/** 16 random bits -> an E4M3 code of a discretised N(0, FP8_CODE_STD^2). */
function fp8Codes(): Uint8Array {
  if (fp8Table) return fp8Table;
  const q = normalQuantiles();
  fp8Table = new Uint8Array(q.length);
  for (let i = 0; i < q.length; i++) fp8Table[i] = numberToE4M3(clamp(q[i]! * FP8_CODE_STD, E4M3_MAX));
  return fp8Table;
}

/** 16 random bits -> a packed byte of two E2M1 codes (8 bits each), low nibble first. */
function fp4Pairs(): Uint8Array {
  if (fp4PairTable) return fp4PairTable;
  const q = normalQuantiles();
  const code = new Uint8Array(256);
  for (let i = 0; i < 256; i++) code[i] = numberToE2M1(clamp(q[(i << 8) | 0x80]! * FP4_CODE_STD, E2M1_MAX));
  fp4PairTable = new Uint8Array(1 << 16);
  for (let i = 0; i < 1 << 16; i++) fp4PairTable[i] = code[i & 0xff]! | (code[i >>> 8]! << 4);
  return fp4PairTable;
}

const clamp = (v: number, max: number) => Math.max(-max, Math.min(max, v));

/** Bytes per emitted chunk: bounds memory for Flash-size tensors. */
const CHUNK_BYTES = 8 << 20;

/**
 * Produce the bytes of one tensor, in order, through `emit` (chunks are reused: consume them
 * before returning). Depends only on (seed, spec.name, recipe), never on chunking.
 */
export function generateTensor(spec: TensorSpec, recipe: Recipe, seed: number, emit: (chunk: Uint8Array) => void): void {
  const rng = new Rng(seed, spec.name);
  const n = elementCount(spec.shape);
  switch (recipe.kind) {
    case "fp8-codes": return fromPairTable(rng, n, fp8Codes(), emit);
    case "fp4-codes": return fromPairTable(rng, n, fp4Pairs(), emit);
    case "scale": return scales(rng, n, recipe.exponent, spec.name, emit);
    case "normal":
      if (spec.dtype === "BF16") return fromPairTable(rng, n, bf16NormalTable(recipe.mean, recipe.std), emit);
      if (spec.dtype === "F32") return f32From(rng, n, (r) => recipe.mean + recipe.std * continuousNormal(r), emit);
      break;
    case "uniform":
      if (spec.dtype === "F32") return f32From(rng, n, (r) => recipe.mean + recipe.halfWidth * ((r / 2 ** 31) - 1), emit);
      break;
    case "tid2eid":
      if (spec.dtype === "I64" && spec.shape.length === 2) return tid2eid(rng, spec.shape[0]!, spec.shape[1]!, recipe.experts, emit);
      break;
  }
  throw new Error(`tiny: no generator for ${spec.name} (${spec.dtype}, recipe ${recipe.kind})`);
}

/**
 * One 16-bit table lookup per output element (a byte code, or bf16 bits), two per random
 * word. Chunks hold an even number of elements, so the words drawn never depend on chunking.
 */
function fromPairTable(rng: Rng, n: number, table: Uint8Array | Uint16Array, emit: (c: Uint8Array) => void): void {
  const perChunk = Math.min(CHUNK_BYTES / table.BYTES_PER_ELEMENT, n + (n & 1));
  const words = new Uint32Array(perChunk / 2);
  const out = table instanceof Uint8Array ? new Uint8Array(perChunk) : new Uint16Array(perChunk);
  for (let done = 0; done < n;) {
    const len = Math.min(perChunk, n - done);
    const w = Math.ceil(len / 2);
    rng.fill(words, w);
    for (let i = 0, j = 0; i < w; i++, j += 2) {
      const r = words[i]!;
      out[j] = table[r & 0xffff]!;
      out[j + 1] = table[r >>> 16]!;
    }
    emit(littleEndianBytes(out, len));
    done += len;
  }
}

function scales(rng: Rng, n: number, exponent: number, name: string, emit: (c: Uint8Array) => void): void {
  if (exponent < -126 || exponent > 126) throw new Error(`tiny: scale exponent ${exponent} out of E8M0 range for ${name}`);
  const jitter = [-1, 0, 0, 1];
  const words = new Uint32Array(Math.ceil(n / 16)); // 2 bits per scale
  rng.fill(words);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = 127 + exponent + jitter[(words[i >>> 4]! >>> ((i & 15) * 2)) & 3]!;
  emit(out);
}

/** 16 random bits -> the bf16 bits of a discretised N(mean, std^2). */
function bf16NormalTable(mean: number, std: number): Uint16Array {
  const q = normalQuantiles();
  const bits = new Uint16Array(q.length);
  for (let i = 0; i < q.length; i++) bits[i] = numberToBf16(mean + std * q[i]!);
  return bits;
}

/** A standard normal from 32 random bits: table value plus linear interpolation to the next. */
function continuousNormal(r: number): number {
  const q = normalQuantiles();
  const idx = r >>> 16;
  const a = q[idx]!;
  if (idx + 1 >= q.length) return a;
  return a + ((r & 0xffff) / 65536) * (q[idx + 1]! - a);
}

function f32From(rng: Rng, n: number, value: (r: number) => number, emit: (c: Uint8Array) => void): void {
  const perChunk = Math.min(CHUNK_BYTES / 4, n);
  const words = new Uint32Array(perChunk);
  const out = new Float32Array(perChunk);
  for (let done = 0; done < n;) {
    const len = Math.min(perChunk, n - done);
    rng.fill(words, len);
    for (let i = 0; i < len; i++) out[i] = value(words[i]!);
    emit(littleEndianBytes(out, len));
    done += len;
  }
}

/** Each row: `k` distinct expert ids drawn uniformly (the reference counts duplicates twice). */
function tid2eid(rng: Rng, rows: number, k: number, experts: number, emit: (c: Uint8Array) => void): void {
  if (k > experts) throw new Error(`tiny: tid2eid needs ${k} distinct experts of ${experts}`);
  const rowsPerChunk = Math.max(1, Math.min(rows, Math.floor(CHUNK_BYTES / (8 * k))));
  const out = new BigInt64Array(rowsPerChunk * k);
  const row: number[] = [];
  for (let done = 0; done < rows;) {
    const len = Math.min(rowsPerChunk, rows - done);
    for (let i = 0; i < len; i++) {
      row.length = 0;
      while (row.length < k) {
        const e = rng.below(experts);
        if (!row.includes(e)) row.push(e);
      }
      for (let j = 0; j < k; j++) out[i * k + j] = BigInt(row[j]!);
    }
    emit(littleEndianBytes(out, len * k));
    done += len;
  }
}

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The first `count` elements of a typed array as little-endian bytes (safetensors byte order). */
function littleEndianBytes(a: Uint8Array | Uint16Array | Float32Array | BigInt64Array, count: number): Uint8Array {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, count * a.BYTES_PER_ELEMENT);
  if (hostIsLittleEndian) return bytes;
  const swapped = new Uint8Array(bytes.length);
  const w = a.BYTES_PER_ELEMENT;
  for (let i = 0; i < bytes.length; i += w) for (let j = 0; j < w; j++) swapped[i + j] = bytes[i + w - 1 - j]!;
  return swapped;
}
