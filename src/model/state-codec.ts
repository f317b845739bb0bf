/**
 * Lossless compact storage for rows of decoding state (prefix-cache blocks).
 *
 * The model puts much of its state on a quantisation grid: the raw KV's nope dims and the
 * main compressed rows are FP8-simulated in blocks of 64 (spec §5.2, §5.5), the indexer
 * keys FP4-simulated in blocks of 32. Such a block is exactly code × 2^k, so it is stored as
 * one byte (E4M3) or nibble (E2M1) per value plus an E8M0 exponent, which is 4x-8x smaller
 * than float32 and loses nothing. Every block is checked on the way in: one that is not on
 * the grid (it never happens with the model's own state, but the codec does not assume it)
 * is kept as raw floats, so decoding always gives back the exact values.
 */
import { E2M1_MAX, E4M3_MAX } from "../formats/dtypes.js";
import type { Vec } from "../kernels/backend.js";

export type Grid = "e4m3" | "e2m1";

/** How a row is laid out: its first `gridDims` dims are on `grid` in blocks of `block`; the rest are raw. */
export interface RowLayout {
  width: number;
  grid: Grid | null;
  gridDims: number;
  block: number;
}

export interface PackedRows {
  count: number;
  /** Grid codes, row by row: one byte per value (E4M3) or two values per byte (E2M1, low nibble first). */
  codes: Uint8Array;
  /** One E8M0 exponent byte per grid block; RAW_BLOCK marks a block stored in `raw`. */
  exps: Uint8Array;
  /** Raw values: the raw grid blocks in order, then each row's non-grid dims. */
  raw: Vec;
}

const RAW_BLOCK = 0xff;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** E4M3 code of y when y is exactly on the grid (|y| ≤ 448), else -1. */
function e4m3Exact(y: number): number {
  if (y === 0) return Object.is(y, -0) ? 0x80 : 0;
  f32[0] = y;
  if (f32[0] !== y) return -1;
  const b = u32[0]!;
  const sign = (b >>> 24) & 0x80;
  const exp = (b >>> 23) & 0xff;
  const man = b & 0x7fffff;
  const E = exp - 120;
  if (E >= 1) {
    if (E > 15 || (man & 0xfffff) !== 0) return -1;
    const m = man >>> 20;
    if (E === 15 && m === 7) return -1; // 0x7f is NaN in E4M3
    return sign | (E << 3) | m;
  }
  const m = Math.abs(y) * 512; // subnormals: m · 2^-9, m in 1..7
  return Number.isInteger(m) && m >= 1 && m <= 7 ? sign | m : -1;
}

const E2M1_CODE = new Map<number, number>([[0, 0], [1, 1], [2, 2], [3, 3], [4, 4], [6, 5], [8, 6], [12, 7]]);

/** E2M1 code of y when y is exactly on the grid, else -1. */
function e2m1Exact(y: number): number {
  const c = E2M1_CODE.get(Math.abs(y) * 2);
  if (c === undefined) return -1;
  return (y < 0 || Object.is(y, -0) ? 8 : 0) | c;
}

const E4M3_VALUES = new Float64Array(256).map((_, b) => {
  const s = b & 0x80 ? -1 : 1;
  const e = (b >> 3) & 0xf;
  const m = b & 7;
  return e === 0 ? s * m * 2 ** -9 : s * (1 + m / 8) * 2 ** (e - 7);
});
const E2M1_VALUES = new Float64Array(16).map((_, c) => (c & 8 ? -1 : 1) * [0, 0.5, 1, 1.5, 2, 3, 4, 6][c & 7]!);

function codeBytes(layout: RowLayout): number {
  return layout.grid === "e2m1" ? Math.ceil(layout.gridDims / 2) : layout.grid === "e4m3" ? layout.gridDims : 0;
}

/** Packs `count` rows of `layout.width` values starting at `data[offset]`. */
export function packRows(data: Vec, offset: number, count: number, layout: RowLayout): PackedRows {
  const { width, grid, gridDims, block } = layout;
  const blocksPerRow = grid ? Math.ceil(gridDims / block) : 0;
  const rowCodes = codeBytes(layout);
  const codes = new Uint8Array(count * rowCodes);
  const exps = new Uint8Array(count * blocksPerRow);
  const raw: number[] = [];
  const max = grid === "e2m1" ? E2M1_MAX : E4M3_MAX;
  const exact = grid === "e2m1" ? e2m1Exact : e4m3Exact;
  const tail: number[] = [];
  for (let r = 0; r < count; r++) {
    const row = offset + r * width;
    for (let b = 0; b < blocksPerRow; b++) {
      const i0 = b * block;
      const i1 = Math.min(i0 + block, gridDims);
      let amax = 0;
      for (let i = i0; i < i1; i++) amax = Math.max(amax, Math.abs(data[row + i]!));
      // The smallest power-of-two scale that keeps the block within the grid's range.
      let k = amax > 0 ? Math.ceil(Math.log2(amax / max)) : 0;
      if (amax > 0 && amax / 2 ** k > max) k++;
      const s = 2 ** k;
      let ok = k >= -127 && k <= 127;
      const at = r * rowCodes;
      for (let i = i0; ok && i < i1; i++) {
        const c = exact(data[row + i]! / s);
        if (c < 0) ok = false;
        else if (grid === "e2m1") codes[at + (i >> 1)]! |= c << ((i & 1) * 4);
        else codes[at + i] = c;
      }
      if (ok) {
        exps[r * blocksPerRow + b] = k + 127;
      } else {
        exps[r * blocksPerRow + b] = RAW_BLOCK;
        if (grid === "e2m1") for (let i = i0; i < i1; i++) codes[at + (i >> 1)]! &= ~(0xf << ((i & 1) * 4));
        for (let i = i0; i < i1; i++) raw.push(data[row + i]!);
      }
    }
    for (let i = gridDims; i < width; i++) tail.push(data[row + i]!);
  }
  const Ctor = data.constructor as { new (values: number[]): Vec };
  return { count, codes, exps, raw: new Ctor([...raw, ...tail]) };
}

/** Writes the rows back, exactly as packed, into `out[offset...]`. */
export function unpackRows(p: PackedRows, layout: RowLayout, out: Vec, offset: number): void {
  const { width, grid, gridDims, block } = layout;
  const blocksPerRow = grid ? Math.ceil(gridDims / block) : 0;
  const rowCodes = codeBytes(layout);
  const values = grid === "e2m1" ? E2M1_VALUES : E4M3_VALUES;
  let rawAt = 0;
  for (let r = 0; r < p.count; r++) {
    const row = offset + r * width;
    for (let b = 0; b < blocksPerRow; b++) {
      const i0 = b * block;
      const i1 = Math.min(i0 + block, gridDims);
      const e = p.exps[r * blocksPerRow + b]!;
      if (e === RAW_BLOCK) {
        for (let i = i0; i < i1; i++) out[row + i] = p.raw[rawAt++]!;
        continue;
      }
      const s = 2 ** (e - 127);
      const at = r * rowCodes;
      for (let i = i0; i < i1; i++) {
        const c = grid === "e2m1" ? (p.codes[at + (i >> 1)]! >> ((i & 1) * 4)) & 0xf : p.codes[at + i]!;
        out[row + i] = values[c]! * s;
      }
    }
  }
  for (let r = 0; r < p.count; r++) {
    const row = offset + r * width;
    for (let i = gridDims; i < width; i++) out[row + i] = p.raw[rawAt++]!;
  }
}

/** Checks that a packed block has the sizes `layout` implies for its row count (data read from disk). */
export function packedSizeError(p: PackedRows, layout: RowLayout): string | null {
  const blocksPerRow = layout.grid ? Math.ceil(layout.gridDims / layout.block) : 0;
  if (p.codes.length !== p.count * codeBytes(layout)) return `codes: ${p.codes.length} bytes for ${p.count} rows`;
  if (p.exps.length !== p.count * blocksPerRow) return `exponents: ${p.exps.length} for ${p.count} rows`;
  let rawBlocks = 0;
  for (let r = 0; r < p.count; r++) {
    for (let b = 0; b < blocksPerRow; b++) {
      if (p.exps[r * blocksPerRow + b] !== RAW_BLOCK) continue;
      rawBlocks += Math.min((b + 1) * layout.block, layout.gridDims) - b * layout.block;
    }
  }
  const want = rawBlocks + p.count * (layout.width - layout.gridDims);
  return p.raw.length === want ? null : `raw values: ${p.raw.length}, expected ${want}`;
}

export function packedBytes(p: PackedRows): number {
  return p.codes.byteLength + p.exps.byteLength + p.raw.byteLength;
}
