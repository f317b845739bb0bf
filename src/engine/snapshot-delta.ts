/**
 * Prefix-cache snapshots stored as deltas. Compressed rows and indexer keys
 * only ever grow, so the snapshot at block k keeps just the rows added since
 * block k-1 plus the fixed-size parts (window ring, partial windows). A chain
 * of deltas rebuilds the full SequenceSnapshot; memory stays O(length) for a
 * whole prompt instead of O(length²/block).
 */
import type { Vec } from "../kernels/backend.js";
import type { CompressorState, LayerState, SequenceSnapshot, SequenceState } from "../model/state.js";

export interface CompressorDelta {
  kv: Vec;
  score: Vec;
  /** Rows [from, count) of width `width`. */
  rows: Vec;
  from: number;
  count: number;
  width: number;
}

export interface LayerDelta {
  window: Vec;
  compressor: CompressorDelta | null;
  indexer: CompressorDelta | null;
}

export interface SnapshotDelta {
  length: number;
  mtpLength: number;
  layers: LayerDelta[];
  mtp: LayerDelta[];
}

/** Rows a compressor of ratio m holds after `length` tokens. */
const rowsAt = (length: number, ratio: number) => Math.floor(length / ratio);

function captureCompressor(c: CompressorState | null, parentLength: number): CompressorDelta | null {
  if (!c) return null;
  const from = Math.min(rowsAt(parentLength, c.ratio), c.rows.count);
  return {
    kv: c.kv.slice() as Vec,
    score: c.score.slice() as Vec,
    rows: c.rows.data.slice(from * c.rows.width, c.rows.count * c.rows.width) as Vec,
    from,
    count: c.rows.count,
    width: c.rows.width,
  };
}

function captureLayer(l: LayerState, parentLength: number): LayerDelta {
  return { window: l.window.slice() as Vec, compressor: captureCompressor(l.compressor, parentLength), indexer: captureCompressor(l.indexer, parentLength) };
}

/** The state now, relative to the same sequence at `parentLength` (0: a full snapshot). */
export function captureDelta(seq: SequenceState, parentLength: number): SnapshotDelta {
  return {
    length: seq.length,
    mtpLength: seq.mtpLength,
    layers: seq.layers.map((l) => captureLayer(l, parentLength)),
    mtp: seq.mtp.map((l) => captureLayer(l, 0)),
  };
}

function compressorBytes(c: CompressorDelta | null): number {
  return c ? c.kv.byteLength + c.score.byteLength + c.rows.byteLength : 0;
}

export function deltaBytes(d: SnapshotDelta): number {
  let n = 0;
  for (const l of [...d.layers, ...d.mtp]) n += l.window.byteLength + compressorBytes(l.compressor) + compressorBytes(l.indexer);
  return n;
}

/** Rebuild a full snapshot from a root-first chain of deltas. */
export function assemble(chain: readonly SnapshotDelta[]): SequenceSnapshot {
  const last = chain[chain.length - 1]!;
  const joinRows = (pick: (d: SnapshotDelta) => CompressorDelta | null) => {
    const final = pick(last)!;
    const out = new (final.rows.constructor as { new (n: number): Vec })(final.count * final.width);
    for (const d of chain) {
      const c = pick(d)!;
      out.set(c.rows, c.from * c.width);
    }
    return out;
  };
  const layer = (l: LayerDelta, pick: (d: SnapshotDelta) => LayerDelta) => ({
    window: l.window,
    compressor: l.compressor
      ? { kv: l.compressor.kv, score: l.compressor.score, rows: joinRows((d) => pick(d).compressor), count: l.compressor.count }
      : null,
    indexer: l.indexer ? { kv: l.indexer.kv, score: l.indexer.score, rows: joinRows((d) => pick(d).indexer), count: l.indexer.count } : null,
  });
  return {
    length: last.length,
    mtpLength: last.mtpLength,
    layers: last.layers.map((l, i) => layer(l, (d) => d.layers[i]!)),
    // MTP layers are captured whole (sliding window only), so the last delta is enough.
    mtp: last.mtp.map((l) => ({
      window: l.window,
      compressor: l.compressor ? { kv: l.compressor.kv, score: l.compressor.score, rows: l.compressor.rows, count: l.compressor.count } : null,
      indexer: l.indexer ? { kv: l.indexer.kv, score: l.indexer.score, rows: l.indexer.rows, count: l.indexer.count } : null,
    })),
  };
}
