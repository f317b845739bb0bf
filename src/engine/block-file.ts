/**
 * One prefix-cache block as a cache entry (cache-file.ts): the header says who the block
 * is (key, parent, token range), how its arrays are laid out and their kinds; the parts are
 * the arrays' bytes. Decoding trusts nothing: the kinds and counts must add up to the parts
 * the file really has, and the block's shape must fit the model (state-blocks.ts), before
 * anything restores from it.
 */
import type { Vec } from "../kernels/backend.js";
import type { ModelConfig } from "../model/config.js";
import { blockShapeError, type CompressorTip, type RowsBlock, type StateBlock } from "../model/state-blocks.js";
import type { PackedRows } from "../model/state-codec.js";

export const BLOCK_KIND = "dsv4-prefix-block-v2";

type Kind = "u8" | "f32" | "f64";
type AnyArray = Uint8Array | Float32Array | Float64Array;

export interface BlockHeader {
  kind: string;
  identity: string;
  key: string;
  parent: string | null;
  provisional: boolean;
  start: number;
  end: number;
  layers: Array<{ c: { from: number; count: number } | null; i: { from: number; count: number } | null }>;
  tip: Array<{ w: number; c: boolean | null; i: boolean | null }> | null;
  /** Kind of each part, in order. */
  arrays: Kind[];
}

const kindOf = (a: AnyArray): Kind => (a instanceof Float64Array ? "f64" : a instanceof Float32Array ? "f32" : "u8");
const WIDTH: Record<Kind, number> = { u8: 1, f32: 4, f64: 8 };

/** The header and the parts to write for `b`. */
export function blockEntry(meta: { identity: string; key: string; parent: string | null; provisional: boolean }, b: StateBlock): { header: BlockHeader; parts: Uint8Array[] } {
  const arrays: AnyArray[] = [];
  const packed = (p: PackedRows) => arrays.push(p.codes, p.exps, p.raw as AnyArray);
  const rows = (r: RowsBlock | null) => {
    if (!r) return null;
    packed(r.rows);
    return { from: r.from, count: r.rows.count };
  };
  const tipC = (t: CompressorTip | null) => {
    if (!t) return null;
    if (t.prevKv && t.prevScore) arrays.push(t.prevKv as AnyArray, t.prevScore as AnyArray);
    arrays.push(t.kv as AnyArray, t.score as AnyArray);
    return t.prevKv !== null;
  };
  const layers = b.layers.map((l) => ({ c: rows(l.compressor), i: rows(l.indexer) }));
  const tip = b.tip
    ? b.tip.map((t) => {
        packed(t.window);
        return { w: t.window.count, c: tipC(t.compressor), i: tipC(t.indexer) };
      })
    : null;
  return {
    header: { kind: BLOCK_KIND, ...meta, start: b.start, end: b.end, layers, tip, arrays: arrays.map(kindOf) },
    parts: arrays.map((a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)),
  };
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Why a header cannot be a block of this cache, or null (checked before the payload is used). */
export function blockHeaderError(h: Record<string, unknown>, identity: string): string | null {
  if (h.kind !== BLOCK_KIND) return "not a prefix-cache block of this version";
  if (h.identity !== identity) return "written for another model identity or precision";
  if (typeof h.key !== "string" || !(h.parent === null || typeof h.parent === "string")) return "bad key or parent";
  if (!isInt(h.start) || !isInt(h.end) || h.end <= h.start || typeof h.provisional !== "boolean") return "bad token range";
  if (!Array.isArray(h.layers) || !(h.tip === null || Array.isArray(h.tip)) || !Array.isArray(h.arrays)) return "bad layout";
  return null;
}

/** The block in an entry read from disk (header already passed blockHeaderError). */
export function blockFromEntry(h: BlockHeader, parts: Uint8Array[], cfg: ModelConfig, dtype: "f32" | "f64"): StateBlock | { error: string } {
  if (h.arrays.length !== parts.length) return { error: `${parts.length} parts for ${h.arrays.length} arrays` };
  const arrays: AnyArray[] = [];
  for (let k = 0; k < parts.length; k++) {
    const kind = h.arrays[k];
    const p = parts[k]!;
    if (kind !== "u8" && kind !== dtype) return { error: `array ${k} is ${String(kind)}, this backend stores ${dtype}` };
    if (p.byteLength % WIDTH[kind] !== 0) return { error: `array ${k}: ${p.byteLength} bytes of ${kind}` };
    // Parts start 8-aligned in the file's buffer (cache-file.ts), so floats are viewed in place.
    arrays.push(kind === "u8" ? p : kind === "f32" ? new Float32Array(p.buffer, p.byteOffset, p.byteLength / 4) : new Float64Array(p.buffer, p.byteOffset, p.byteLength / 8));
  }
  let i = 0;
  /** The next array, which the layout says is of `kind` ("float": the backend's float type). */
  const next = (kind: "u8" | "float"): AnyArray => {
    const a = arrays[i];
    if (!a) throw new Error("fewer arrays than the layout needs");
    if ((kind === "u8") !== (h.arrays[i] === "u8")) throw new Error(`array ${i} is ${h.arrays[i]}, the layout needs ${kind}`);
    i++;
    return a;
  };
  const packed = (count: unknown): PackedRows => {
    if (!isInt(count)) throw new Error("bad row count");
    return { count, codes: next("u8") as Uint8Array, exps: next("u8") as Uint8Array, raw: next("float") as Vec };
  };
  try {
    const layers = h.layers.map((l) => ({
      compressor: l.c ? { from: l.c.from, rows: packed(l.c.count) } : null,
      indexer: l.i ? { from: l.i.from, rows: packed(l.i.count) } : null,
    }));
    const tipC = (prev: boolean | null): CompressorTip | null => {
      if (prev === null) return null;
      const prevKv = prev ? (next("float") as Vec) : null;
      const prevScore = prev ? (next("float") as Vec) : null;
      return { prevKv, prevScore, kv: next("float") as Vec, score: next("float") as Vec };
    };
    const tip = h.tip ? h.tip.map((t) => ({ window: packed(t.w), compressor: tipC(t.c), indexer: tipC(t.i) })) : null;
    if (i !== arrays.length) return { error: "more arrays than the layout needs" };
    const block: StateBlock = { start: h.start, end: h.end, layers, tip };
    const err = blockShapeError(cfg, block);
    return err ? { error: err } : block;
  } catch (e) {
    return { error: (e as Error).message };
  }
}
