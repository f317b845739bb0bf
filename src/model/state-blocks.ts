/**
 * Prefix-cache blocks of a sequence's state: what a stretch of tokens adds, stored compactly.
 *
 * A block covering tokens [start, end) keeps the compressed rows (main and indexer) emitted
 * in that stretch; with a tip, it also keeps what a sequence needs to continue from `end`:
 * the raw KV of the window's last `window − 1` positions and each compressor's partial
 * state (for an overlapping compressor, the previous window's first halves, the only part
 * the next row reads, plus the slots already filled). A chain of blocks from position 0 whose
 * last block has a tip restores the state at `end` exactly; blocks without a tip only link.
 * Raw KV nope dims and compressed rows go through the lossless FP8/FP4 codec (state-codec.ts).
 */
import type { Vec } from "../kernels/backend.js";
import type { ModelConfig } from "./config.js";
import { packedBytes, packedSizeError, packRows, unpackRows, type PackedRows, type RowLayout } from "./state-codec.js";
import type { CompressorState, SequenceState } from "./state.js";

/** Compressed rows [from, from + rows.count) of one compressor. */
export interface RowsBlock {
  from: number;
  rows: PackedRows;
}

export interface CompressorTip {
  /** Previous window's first halves [ratio × headDim] (overlapping compressors only). */
  prevKv: Vec | null;
  prevScore: Vec | null;
  /** The current window's filled slots, full width. */
  kv: Vec;
  score: Vec;
}

export interface LayerTip {
  /** Raw KV of positions [end − window.count, end). */
  window: PackedRows;
  compressor: CompressorTip | null;
  indexer: CompressorTip | null;
}

export interface StateBlock {
  start: number;
  end: number;
  layers: Array<{ compressor: RowsBlock | null; indexer: RowsBlock | null }>;
  /** One entry per main layer, then (0731 checkpoints) one per DSpark stage: its ring, no compressor. */
  tip: LayerTip[] | null;
}

const FP8_BLOCK = 64;
const FP4_BLOCK = 32;

export function windowLayout(cfg: ModelConfig): RowLayout {
  return { width: cfg.headDim, grid: "e4m3", gridDims: cfg.headDim - cfg.ropeDim, block: FP8_BLOCK };
}

function rowLayout(cfg: ModelConfig, c: CompressorState, indexer: boolean): RowLayout {
  return indexer
    ? { width: c.headDim, grid: "e2m1", gridDims: c.headDim, block: FP4_BLOCK }
    : { width: c.headDim, grid: "e4m3", gridDims: c.headDim - cfg.ropeDim, block: FP8_BLOCK };
}

/** Raw-KV positions a sequence at `end` still reads: the window minus the slot the next token takes. */
const tipPositions = (cfg: ModelConfig, end: number) => Math.min(end, cfg.window - 1);

function captureRows(cfg: ModelConfig, c: CompressorState | null, start: number, indexer: boolean): RowsBlock | null {
  if (!c) return null;
  const from = Math.min(Math.floor(start / c.ratio), c.rows.count);
  return { from, rows: packRows(c.rows.data, from * c.headDim, c.rows.count - from, rowLayout(cfg, c, indexer)) };
}

function captureCompressorTip(c: CompressorState | null, end: number): CompressorTip | null {
  if (!c) return null;
  const filled = end % c.ratio;
  const cur = (c.overlap ? c.ratio : 0) * c.width;
  const tip: CompressorTip = {
    prevKv: null,
    prevScore: null,
    kv: c.kv.slice(cur, cur + filled * c.width) as Vec,
    score: c.score.slice(cur, cur + filled * c.width) as Vec,
  };
  if (c.overlap) {
    const d = c.headDim;
    const prevKv = c.kv.constructor as { new (n: number): Vec };
    tip.prevKv = new prevKv(c.ratio * d);
    tip.prevScore = new prevKv(c.ratio * d);
    for (let s = 0; s < c.ratio; s++) {
      tip.prevKv.set(c.kv.subarray(s * c.width, s * c.width + d), s * d);
      tip.prevScore.set(c.score.subarray(s * c.width, s * c.width + d), s * d);
    }
  }
  return tip;
}

/**
 * The window rings a tip carries: every main layer's and, for DSpark, every stage's (its ring
 * is written from the main model's positions, so it belongs to the prefix like the main KV;
 * the April MTP block's window is warmed again from the positions prefilled next instead).
 */
const tipRings = (seq: SequenceState) => (seq.cfg.dspark ? [...seq.layers, ...seq.mtp] : seq.layers);

/** The block of `seq` since `start` (its length is the block's end), with its tip. */
export function captureBlock(seq: SequenceState, start: number): StateBlock {
  const cfg = seq.cfg;
  seq.assertSettled("captureBlock");
  const end = seq.length;
  const layers = seq.layers.map((l) => ({ compressor: captureRows(cfg, l.compressor, start, false), indexer: captureRows(cfg, l.indexer, start, true) }));
  const n = tipPositions(cfg, end);
  const hd = cfg.headDim;
  const tip = tipRings(seq).map((l): LayerTip => {
    const Ctor = l.window.constructor as { new (n: number): Vec };
    const rows = new Ctor(n * hd);
    for (let k = 0; k < n; k++) {
      const slot = (end - n + k) % cfg.window;
      rows.set(l.window.subarray(slot * hd, (slot + 1) * hd), k * hd);
    }
    return { window: packRows(rows, 0, n, windowLayout(cfg)), compressor: captureCompressorTip(l.compressor, end), indexer: captureCompressorTip(l.indexer, end) };
  });
  return { start, end, layers, tip };
}

function restoreCompressor(c: CompressorState, tip: CompressorTip, rows: Array<RowsBlock | null>, layout: RowLayout, end: number): void {
  c.rows.count = 0;
  for (const b of rows) {
    if (!b) continue;
    if (b.from !== c.rows.count) throw new Error(`prefix-cache blocks: compressed rows start at ${b.from}, expected ${c.rows.count}`);
    for (let i = 0; i < b.rows.count; i++) c.rows.append();
    unpackRows(b.rows, layout, c.rows.data, b.from * c.headDim);
  }
  const want = Math.floor(end / c.ratio);
  if (c.rows.count !== want) throw new Error(`prefix-cache blocks: ${c.rows.count} compressed rows at length ${end}, expected ${want}`);
  // Slots not restored are never read before they are written again; reset them as a fresh state has them.
  c.kv.fill(0);
  c.score.fill(-Infinity);
  if (tip.prevKv && tip.prevScore) {
    const d = c.headDim;
    for (let s = 0; s < c.ratio; s++) {
      c.kv.set(tip.prevKv.subarray(s * d, (s + 1) * d), s * c.width);
      c.score.set(tip.prevScore.subarray(s * d, (s + 1) * d), s * c.width);
    }
  }
  const cur = (c.overlap ? c.ratio : 0) * c.width;
  c.kv.set(tip.kv, cur);
  c.score.set(tip.score, cur);
}

/** Restores `seq` (fresh) to the end of `chain`: contiguous blocks from 0, the last with a tip. */
export function restoreBlocks(seq: SequenceState, chain: readonly StateBlock[]): void {
  const cfg = seq.cfg;
  const last = chain[chain.length - 1];
  if (!last?.tip) throw new Error("prefix-cache blocks: the chain's last block has no tip to continue from");
  chain.forEach((b, i) => {
    const start = i === 0 ? 0 : chain[i - 1]!.end;
    if (b.start !== start) throw new Error(`prefix-cache blocks: block ${i} starts at ${b.start}, expected ${start}`);
  });
  const end = last.end;
  const hd = cfg.headDim;
  tipRings(seq).forEach((l, i) => {
    const tip = last.tip![i];
    if (!tip) throw new Error(`prefix-cache blocks: the tip has ${last.tip!.length} rings, the model has ${tipRings(seq).length}`);
    const n = tip.window.count;
    const Ctor = l.window.constructor as { new (n: number): Vec };
    const rows = new Ctor(n * hd);
    unpackRows(tip.window, windowLayout(cfg), rows, 0);
    for (let k = 0; k < n; k++) l.window.set(rows.subarray(k * hd, (k + 1) * hd), ((end - n + k) % cfg.window) * hd);
    if (l.compressor) restoreCompressor(l.compressor, tip.compressor!, chain.map((b) => b.layers[i]!.compressor), rowLayout(cfg, l.compressor, false), end);
    if (l.indexer) restoreCompressor(l.indexer, tip.indexer!, chain.map((b) => b.layers[i]!.indexer), rowLayout(cfg, l.indexer, true), end);
  });
  seq.length = end;
  seq.dsparkOwed?.clear();
  // The April MTP block's window is not cached: it is warmed again from the positions prefilled next.
  seq.mtpLength = end;
}

function tipBytes(t: CompressorTip | null): number {
  return t ? t.kv.byteLength + t.score.byteLength + (t.prevKv?.byteLength ?? 0) + (t.prevScore?.byteLength ?? 0) : 0;
}

/** Bytes per layer: compressed rows, the tip's window KV, and the tip's compressor state. */
export function blockLayerBytes(b: StateBlock): Array<{ rows: number; window: number; compressorState: number }> {
  return b.layers.map((l, i) => {
    const t = b.tip?.[i];
    return {
      rows: (l.compressor ? packedBytes(l.compressor.rows) : 0) + (l.indexer ? packedBytes(l.indexer.rows) : 0),
      window: t ? packedBytes(t.window) : 0,
      compressorState: t ? tipBytes(t.compressor) + tipBytes(t.indexer) : 0,
    };
  });
}

export function blockBytes(b: StateBlock): number {
  let n = 0;
  for (const l of b.layers) n += (l.compressor ? packedBytes(l.compressor.rows) : 0) + (l.indexer ? packedBytes(l.indexer.rows) : 0);
  for (const t of b.tip ?? []) n += packedBytes(t.window) + tipBytes(t.compressor) + tipBytes(t.indexer);
  return n;
}

/** Why a block (read from disk) does not fit this model, or null. */
export function blockShapeError(cfg: ModelConfig, b: StateBlock): string | null {
  if (!(Number.isInteger(b.start) && Number.isInteger(b.end) && b.start >= 0 && b.end > b.start)) return `bad range [${b.start}, ${b.end})`;
  if (b.layers.length !== cfg.layers.length) return `${b.layers.length} layers, the model has ${cfg.layers.length}`;
  const rings = cfg.layers.length + (cfg.dspark ? cfg.mtpLayers.length : 0);
  if (b.tip && b.tip.length !== rings) return `a tip of ${b.tip.length} rings, the model has ${rings}`;
  for (let k = cfg.layers.length; k < rings && b.tip; k++) {
    const t = b.tip[k]!;
    if (t.compressor || t.indexer) return `DSpark stage ${k - cfg.layers.length}: unexpected compressor state`;
    if (t.window.count !== tipPositions(cfg, b.end)) return `DSpark stage ${k - cfg.layers.length}: tip has ${t.window.count} window rows`;
    const e = packedSizeError(t.window, windowLayout(cfg));
    if (e) return `DSpark stage ${k - cfg.layers.length}: tip window ${e}`;
  }
  for (let i = 0; i < cfg.layers.length; i++) {
    const spec = cfg.layers[i]!;
    const m = spec.compressRatio;
    const l = b.layers[i]!;
    const check = (rb: RowsBlock | null, indexer: boolean, present: boolean): string | null => {
      if (!present) return rb ? "unexpected compressed rows" : null;
      if (!rb) return "missing compressed rows";
      const want = Math.floor(b.end / m) - Math.floor(b.start / m);
      if (rb.from !== Math.floor(b.start / m) || rb.rows.count !== want) return `rows [${rb.from}, +${rb.rows.count}), expected [${Math.floor(b.start / m)}, +${want})`;
      const d = indexer ? cfg.indexHeadDim : cfg.headDim;
      const layout: RowLayout = indexer ? { width: d, grid: "e2m1", gridDims: d, block: FP4_BLOCK } : { width: d, grid: "e4m3", gridDims: d - cfg.ropeDim, block: FP8_BLOCK };
      return packedSizeError(rb.rows, layout);
    };
    const err = check(l.compressor, false, m > 0) ?? check(l.indexer, true, spec.kind === "csa");
    if (err) return `layer ${i}: ${err}`;
    const t = b.tip?.[i];
    if (b.tip && !t) return `layer ${i}: missing tip`;
    if (t) {
      if (t.window.count !== tipPositions(cfg, b.end)) return `layer ${i}: tip has ${t.window.count} window rows`;
      const e = packedSizeError(t.window, windowLayout(cfg));
      if (e) return `layer ${i}: tip window ${e}`;
      const tipError = (ct: CompressorTip | null, present: boolean, d: number, overlap: boolean): string | null => {
        if (!present) return ct ? "unexpected compressor state" : null;
        if (!ct) return "missing compressor state";
        const w = (overlap ? 2 : 1) * d;
        if (ct.kv.length !== (b.end % m) * w || ct.score.length !== ct.kv.length) return "compressor state of the wrong size";
        if (overlap !== (ct.prevKv !== null) || (ct.prevKv && (ct.prevKv.length !== m * d || ct.prevScore?.length !== m * d))) return "previous-window state of the wrong size";
        return null;
      };
      const te = tipError(t.compressor, m > 0, cfg.headDim, spec.kind === "csa") ?? tipError(t.indexer, spec.kind === "csa", cfg.indexHeadDim, true);
      if (te) return `layer ${i}: tip ${te}`;
    }
  }
  return null;
}
