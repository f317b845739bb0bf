/**
 * Number formats of DeepSeek-V4 checkpoints (spec §3.3): decoding to float64 and
 * round-to-nearest-even encoding. All decoders are exact: every value of these
 * formats is representable in a double.
 */

export type DType = "F64" | "F32" | "F16" | "BF16" | "F8_E4M3" | "F8_E8M0" | "I8" | "U8" | "I16" | "I32" | "I64" | "BOOL";

/** Bytes per stored element. Packed FP4 lives in I8 tensors (two codes per byte). */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E8M0: 1, I8: 1, U8: 1, I16: 2, I32: 4, I64: 8, BOOL: 1,
};

export function isDType(s: string): s is DType {
  return Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

const f32Scratch = new Float32Array(1);
const u32View = new Uint32Array(f32Scratch.buffer);

const f64Scratch = new Float64Array(1);
const f64Words = new Uint32Array(f64Scratch.buffer); // little-endian: [low, high]

/** Exact power of two 2^e for any integer e in the double range, subnormals included. */
export function pow2(e: number): number {
  if (e >= -1022 && e <= 1023) {
    f64Words[0] = 0;
    f64Words[1] = (e + 1023) << 20;
    return f64Scratch[0]!;
  }
  return 2 ** (e + 600) * 2 ** -600;
}

/** floor(log2 |x|) for finite non-zero x, exact: read from the exponent bits. */
export function floorLog2(x: number): number {
  f64Scratch[0] = x;
  const biased = (f64Words[1]! >>> 20) & 0x7ff;
  if (biased !== 0) return biased - 1023;
  // Subnormal double: scale into the normal range first.
  f64Scratch[0] = x * 2 ** 64;
  return ((f64Words[1]! >>> 20) & 0x7ff) - 1023 - 64;
}

/** Round half to even on an arbitrary double. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

// ---------- BF16 / F16 / F32 ----------

export function bf16ToNumber(bits: number): number {
  u32View[0] = (bits & 0xffff) << 16;
  return f32Scratch[0]!;
}

/** float -> bf16 bits with round-to-nearest-even (NaN stays NaN). */
export function numberToBf16(x: number): number {
  f32Scratch[0] = x; // via f32: exact for f32 inputs (all the checkpoint needs); doubles round twice
  const u = u32View[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  const rounded = u + 0x7fff + ((u >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function f16ToNumber(bits: number): number {
  const s = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function numberToF16(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === 0) return sign;
  if (a >= 65520) return sign | 0x7c00; // rounds to infinity
  const e = Math.max(floorLog2(a), -14);
  const q = pow2(e - 10);
  const m = roundHalfEven(a / q); // 1024..2048 for normals, 0..1024 for subnormals
  if (e === -14 && m < 1024) return sign | m;
  if (m === 2048) return sign | ((e + 16) << 10);
  return sign | ((e + 15) << 10) | (m - 1024);
}

// ---------- FP8 E4M3FN ----------

export const E4M3_MAX = 448;

const E4M3_TABLE: Float64Array = (() => {
  const t = new Float64Array(256);
  for (let b = 0; b < 256; b++) {
    const s = b & 0x80 ? -1 : 1;
    const e = (b >> 3) & 0xf;
    const m = b & 7;
    if ((b & 0x7f) === 0x7f) t[b] = NaN;
    else if (e === 0) t[b] = s * m * 2 ** -9;
    else t[b] = s * (1 + m / 8) * 2 ** (e - 7);
  }
  return t;
})();

export function e4m3ToNumber(byte: number): number {
  return E4M3_TABLE[byte & 0xff]!;
}

/** The decoding table itself, for kernels that index it directly. */
export function e4m3Table(): Float64Array {
  return E4M3_TABLE;
}

/** Round to the E4M3 grid (RNE). Callers clamp to ±448 first, as the reference does. */
export function roundE4M3(v: number): number {
  if (v === 0 || !Number.isFinite(v)) return v;
  const e = Math.max(floorLog2(v), -6);
  const q = pow2(e - 3);
  return roundHalfEven(v / q) * q;
}

/** Encode to an E4M3 byte with RNE; magnitudes above 448 saturate to 448, NaN to 0x7f. */
export function numberToE4M3(x: number): number {
  if (Number.isNaN(x)) return 0x7f;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = roundE4M3(Math.min(Math.abs(x), E4M3_MAX));
  if (a === 0) return sign;
  if (a < 2 ** -6) return sign | (a / 2 ** -9);
  const e = floorLog2(a);
  const m = a / pow2(e) * 8 - 8;
  return sign | ((e + 7) << 3) | m;
}

// ---------- E8M0 (UE8M0 scale bytes) ----------

export function e8m0ToNumber(byte: number): number {
  const b = byte & 0xff;
  return b === 255 ? NaN : pow2(b - 127);
}

/** Encode a power of two 2^k (k in [-127, 127]) as an E8M0 byte. */
export function numberToE8M0(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) throw new RangeError(`E8M0 encodes positive powers of two, got ${x}`);
  const e = floorLog2(x);
  if (pow2(e) !== x) throw new RangeError(`E8M0 encodes powers of two only, got ${x}`);
  if (e < -127 || e > 127) throw new RangeError(`E8M0 exponent out of range: 2^${e}`);
  return e + 127;
}

// ---------- FP4 E2M1 ----------

/** Magnitudes of codes 0..7; bit 3 is the sign. */
const E2M1_MAGNITUDES = [0, 0.5, 1, 1.5, 2, 3, 4, 6] as const;
export const E2M1_MAX = 6;

const E2M1_TABLE: Float64Array = (() => {
  const t = new Float64Array(16);
  for (let c = 0; c < 16; c++) t[c] = (c & 8 ? -1 : 1) * E2M1_MAGNITUDES[c & 7]!;
  return t;
})();

export function e2m1ToNumber(code: number): number {
  return E2M1_TABLE[code & 0xf]!;
}

export function e2m1Table(): Float64Array {
  return E2M1_TABLE;
}

/** Round to the E2M1 grid (RNE). Callers clamp to ±6 first. */
export function roundE2M1(v: number): number {
  if (v === 0 || !Number.isFinite(v)) return v;
  const e = Math.max(floorLog2(v), 0);
  const q = pow2(e - 1);
  return roundHalfEven(v / q) * q;
}

export function numberToE2M1(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 8 : 0;
  const a = roundE2M1(Math.min(Math.abs(x), E2M1_MAX));
  const code = E2M1_MAGNITUDES.indexOf(a as (typeof E2M1_MAGNITUDES)[number]);
  return sign | code;
}

/** Pack E2M1 codes two per byte, element 2j in the low nibble. */
export function packE2M1(codes: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(codes.length / 2));
  for (let i = 0; i < codes.length; i++) out[i >> 1]! |= (codes[i]! & 0xf) << ((i & 1) * 4);
  return out;
}

// ---------- whole-tensor decoding ----------

/** Decode raw little-endian tensor bytes of any float-like dtype into float64. I8 decodes as integers. */
export function decodeToFloat64(dtype: DType, bytes: Uint8Array): Float64Array {
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  const out = new Float64Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "F64": for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true); break;
    case "F32": for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true); break;
    case "BF16": for (let i = 0; i < n; i++) out[i] = bf16ToNumber(view.getUint16(i * 2, true)); break;
    case "F16": for (let i = 0; i < n; i++) out[i] = f16ToNumber(view.getUint16(i * 2, true)); break;
    case "F8_E4M3": for (let i = 0; i < n; i++) out[i] = E4M3_TABLE[bytes[i]!]!; break;
    case "F8_E8M0": for (let i = 0; i < n; i++) out[i] = e8m0ToNumber(bytes[i]!); break;
    case "I8": for (let i = 0; i < n; i++) out[i] = view.getInt8(i); break;
    case "U8": case "BOOL": for (let i = 0; i < n; i++) out[i] = bytes[i]!; break;
    case "I16": for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true); break;
    case "I32": for (let i = 0; i < n; i++) out[i] = view.getInt32(i * 4, true); break;
    case "I64": for (let i = 0; i < n; i++) out[i] = Number(view.getBigInt64(i * 8, true)); break;
  }
  return out;
}

/** Unpack packed E2M1 bytes (I8 storage) into float64 values, low nibble first. */
export function decodeE2M1Packed(bytes: Uint8Array): Float64Array {
  const out = new Float64Array(bytes.length * 2);
  for (let i = 0; i < bytes.length; i++) {
    out[2 * i] = E2M1_TABLE[bytes[i]! & 0xf]!;
    out[2 * i + 1] = E2M1_TABLE[bytes[i]! >> 4]!;
  }
  return out;
}

/** Encode float64 values into raw little-endian bytes of `dtype` (RNE where rounding applies). */
export function encodeFromNumbers(dtype: DType, values: ArrayLike<number>): Uint8Array {
  const n = values.length;
  const out = new Uint8Array(n * DTYPE_BYTES[dtype]);
  const view = new DataView(out.buffer);
  switch (dtype) {
    case "F64": for (let i = 0; i < n; i++) view.setFloat64(i * 8, values[i]!, true); break;
    case "F32": for (let i = 0; i < n; i++) view.setFloat32(i * 4, values[i]!, true); break;
    case "BF16": for (let i = 0; i < n; i++) view.setUint16(i * 2, numberToBf16(values[i]!), true); break;
    case "F16": for (let i = 0; i < n; i++) view.setUint16(i * 2, numberToF16(values[i]!), true); break;
    case "F8_E4M3": for (let i = 0; i < n; i++) out[i] = numberToE4M3(values[i]!); break;
    case "F8_E8M0": for (let i = 0; i < n; i++) out[i] = numberToE8M0(values[i]!); break;
    case "I8": for (let i = 0; i < n; i++) view.setInt8(i, values[i]!); break;
    case "U8": case "BOOL": for (let i = 0; i < n; i++) out[i] = values[i]!; break;
    case "I16": for (let i = 0; i < n; i++) view.setInt16(i * 2, values[i]!, true); break;
    case "I32": for (let i = 0; i < n; i++) view.setInt32(i * 4, values[i]!, true); break;
    case "I64": for (let i = 0; i < n; i++) view.setBigInt64(i * 8, BigInt(values[i]!), true); break;
  }
  return out;
}
