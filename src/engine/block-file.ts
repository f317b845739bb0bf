/**
 * One prefix-cache block as bytes: a JSON header (who it is, where it sits in the tree,
 * the shape of each array) and the arrays, with a SHA-256 of everything after the header
 * length. `decodeBlockFile` never throws and never trusts the file: every length is
 * checked against the file size before anything is allocated, the checksum before any
 * array is read, and the block's shape against the model (state-blocks.ts).
 */
import { createHash } from "node:crypto";
import type { Vec } from "../kernels/backend.js";
import type { ModelConfig } from "../model/config.js";
import { blockShapeError, type CompressorTip, type RowsBlock, type StateBlock } from "../model/state-blocks.js";
import type { PackedRows } from "../model/state-codec.js";

const MAGIC = "dsv4-prefix-block-v2";
/** Headers of a 1M-token model stay far below this; a larger length field is corruption. */
const MAX_HEADER_BYTES = 1 << 20;

type Kind = "u8" | "f32" | "f64";
type AnyArray = Uint8Array | Float32Array | Float64Array;

export interface BlockFileHeader {
  magic: string;
  identity: string;
  key: string;
  parent: string | null;
  provisional: boolean;
  start: number;
  end: number;
  layers: Array<{ c: { from: number; count: number } | null; i: { from: number; count: number } | null }>;
  tip: Array<{ w: number; c: boolean | null; i: boolean | null }> | null;
  arrays: Array<[Kind, number]>;
  sha256: string;
}

const kindOf = (a: AnyArray): Kind => (a instanceof Float64Array ? "f64" : a instanceof Float32Array ? "f32" : "u8");
const width: Record<Kind, number> = { u8: 1, f32: 4, f64: 8 };

function flatten(b: StateBlock): { arrays: AnyArray[]; layers: BlockFileHeader["layers"]; tip: BlockFileHeader["tip"] } {
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
  return { arrays, layers, tip };
}

export function encodeBlockFile(meta: { identity: string; key: string; parent: string | null; provisional: boolean }, b: StateBlock): Buffer {
  const { arrays, layers, tip } = flatten(b);
  const parts: Buffer[] = [];
  let off = 0;
  for (const a of arrays) {
    const pad = (width[kindOf(a)] - (off % width[kindOf(a)])) % width[kindOf(a)];
    if (pad) parts.push(Buffer.alloc(pad));
    parts.push(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
    off += pad + a.byteLength;
  }
  const payload = Buffer.concat(parts);
  const header: BlockFileHeader = {
    magic: MAGIC, ...meta, start: b.start, end: b.end, layers, tip,
    arrays: arrays.map((a) => [kindOf(a), a.length]), sha256: createHash("sha256").update(payload).digest("hex"),
  };
  const h = Buffer.from(JSON.stringify(header), "utf8");
  const len = Buffer.alloc(8);
  len.writeUInt32LE(h.length, 0);
  // The payload starts 8-aligned, so float arrays can be viewed in place.
  const pad = Buffer.alloc((8 - ((8 + h.length) % 8)) % 8);
  return Buffer.concat([len, h, pad, payload]);
}

/** Just the header (for the index at start-up); an error string when it is not a valid one. */
export function decodeBlockHeader(buf: Buffer): { header: BlockFileHeader; payloadAt: number } | { error: string } {
  if (buf.length < 8) return { error: "shorter than its length field" };
  const n = buf.readUInt32LE(0);
  if (n === 0 || n > MAX_HEADER_BYTES || 8 + n > buf.length) return { error: `header length ${n} does not fit the file (${buf.length} bytes)` };
  let header: BlockFileHeader;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as BlockFileHeader;
  } catch {
    return { error: "header is not JSON" };
  }
  if (typeof header !== "object" || header === null || header.magic !== MAGIC) return { error: "not a dsv4 prefix-cache block" };
  if (typeof header.key !== "string" || !(header.parent === null || typeof header.parent === "string")) return { error: "bad key or parent" };
  if (!Array.isArray(header.arrays) || !Array.isArray(header.layers) || !(header.tip === null || Array.isArray(header.tip))) return { error: "bad header shape" };
  if (typeof header.sha256 !== "string" || typeof header.provisional !== "boolean") return { error: "bad header shape" };
  return { header, payloadAt: 8 + n + ((8 - ((8 + n) % 8)) % 8) };
}

/** The block a file holds, checked against its checksum and the model; an error string otherwise. */
export function decodeBlockFile(buf: Buffer, cfg: ModelConfig, dtype: "f32" | "f64"): { header: BlockFileHeader; block: StateBlock } | { error: string } {
  const h = decodeBlockHeader(buf);
  if ("error" in h) return h;
  const { header, payloadAt } = h;
  let off = 0;
  const spans: Array<[Kind, number, number]> = [];
  for (const entry of header.arrays) {
    if (!Array.isArray(entry) || !(entry[0] === "u8" || entry[0] === dtype) || !Number.isSafeInteger(entry[1]) || entry[1] < 0) return { error: "bad array entry" };
    const w = width[entry[0]];
    off += (w - (off % w)) % w;
    spans.push([entry[0], off, entry[1]]);
    off += entry[1] * w;
  }
  if (payloadAt + off !== buf.length) return { error: `payload is ${buf.length - payloadAt} bytes, the header describes ${off}` };
  const payload = buf.subarray(payloadAt);
  if (createHash("sha256").update(payload).digest("hex") !== header.sha256) return { error: "checksum mismatch" };
  // Copies, so the block owns aligned memory whatever the read buffer was.
  const arrays: AnyArray[] = spans.map(([k, at, n]) => {
    const bytes = payload.subarray(at, at + n * width[k]);
    const out = k === "u8" ? new Uint8Array(n) : k === "f32" ? new Float32Array(n) : new Float64Array(n);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  });
  let i = 0;
  const next = () => {
    const a = arrays[i++];
    if (!a) throw new Error("fewer arrays than the layout needs");
    return a;
  };
  const packed = (count: number): PackedRows => ({ count, codes: next() as Uint8Array, exps: next() as Uint8Array, raw: next() as Vec });
  try {
    const layers = header.layers.map((l) => ({
      compressor: l.c ? { from: l.c.from, rows: packed(l.c.count) } : null,
      indexer: l.i ? { from: l.i.from, rows: packed(l.i.count) } : null,
    }));
    const tipC = (prev: boolean | null): CompressorTip | null => {
      if (prev === null) return null;
      const prevKv = prev ? (next() as Vec) : null;
      const prevScore = prev ? (next() as Vec) : null;
      return { prevKv, prevScore, kv: next() as Vec, score: next() as Vec };
    };
    const tip = header.tip ? header.tip.map((t) => ({ window: packed(t.w), compressor: tipC(t.c), indexer: tipC(t.i) })) : null;
    if (i !== arrays.length) return { error: "more arrays than the layout needs" };
    const block: StateBlock = { start: header.start, end: header.end, layers, tip };
    const err = blockShapeError(cfg, block);
    return err ? { error: err } : { header, block };
  } catch (e) {
    return { error: (e as Error).message };
  }
}
