import type { Backend, Vec } from "../kernels/backend.js";
import { compressorProjections, compressorStep } from "./compressor.js";
import type { LayerSchedule, ModelConfig } from "./config.js";
import { indexerQueries, selectCompressedRows } from "./indexer.js";
import type { RopeTable } from "./rope.js";
import type { LayerState } from "./state.js";
import type { AttentionWeights } from "./weights.js";

const KV_FP8_BLOCK = 64;

/** One row of a batch as attention sees it: the sequence's state for this layer and the token's position. */
export interface AttentionRow {
  state: LayerState;
  pos: number;
}

export interface AttentionTrace {
  indexer?(layer: number, row: number, selected: Int32Array): void;
}

/**
 * Attention of one layer for a batch of rows (spec §5): projections are batched, then each
 * row in order updates its sequence's window ring and compressors and attends its window
 * plus the visible (HCA) or indexer-selected (CSA) compressed rows.
 */
export function attentionForward(
  backend: Backend, cfg: ModelConfig, layer: LayerSchedule, w: AttentionWeights, rope: RopeTable,
  x: Vec, rows: readonly AttentionRow[], trace?: AttentionTrace,
): Vec {
  const R = rows.length;
  const H = cfg.numHeads;
  const hd = cfg.headDim;
  const nope = hd - cfg.ropeDim;

  const qr = backend.rmsNorm(backend.linear(x, R, w.wqA, true), R, cfg.qLoraRank, w.qNorm, cfg.normEps);
  const q = backend.linear(qr, R, w.wqB, true);
  backend.rmsNorm(q, R * H, hd, null, cfg.normEps, q);
  const kv = backend.rmsNorm(backend.linear(x, R, w.wkv, true), R, hd, w.kvNorm, cfg.normEps);
  const angles = rows.map((row) => rope.angles(row.pos));
  for (let r = 0; r < R; r++) {
    const { cos, sin } = angles[r]!;
    backend.rope(q, r * H * hd + nope, H, hd, cos, sin, false);
    backend.rope(kv, r * hd + nope, 1, hd, cos, sin, false);
    backend.fp8Simulate(kv, r * hd, nope, KV_FP8_BLOCK);
  }

  const comp = w.compressor ? compressorProjections(backend, w.compressor, x, R) : null;
  const idx = w.indexer ? indexerQueries(backend, cfg, w.indexer, x, qr, R, angles) : null;

  const o = backend.alloc(R * H * hd);
  const win = cfg.window;
  const windowIdx = new Int32Array(win);
  for (let r = 0; r < R; r++) {
    const { state, pos } = rows[r]!;
    state.window.set(kv.subarray(r * hd, (r + 1) * hd), (pos % win) * hd);
    if (comp && state.compressor) compressorStep(backend, cfg, w.compressor!, state.compressor, comp, r, pos, rope, "main");
    if (idx && state.indexer) compressorStep(backend, cfg, w.indexer!.compressor, state.indexer, idx.keys, r, pos, rope, "indexer");

    const first = Math.max(0, pos - win + 1);
    for (let p = first; p <= pos; p++) windowIdx[p - first] = p % win;
    const sources: Array<{ rows: Vec; indices: ArrayLike<number>; count: number }> = [{ rows: state.window, indices: windowIdx, count: pos - first + 1 }];
    if (state.compressor) {
      const visible = state.compressor.rows.count;
      let selected: ArrayLike<number>;
      if (idx && state.indexer) {
        selected = selectCompressedRows(backend, cfg, idx, r, state.indexer);
        trace?.indexer?.(layer.id, r, selected as Int32Array);
      } else {
        selected = Int32Array.from({ length: visible }, (_, i) => i);
      }
      sources.push({ rows: state.compressor.rows.data, indices: selected, count: selected.length });
    }
    backend.attention({ q, qOffset: r * H * hd, out: o, outOffset: r * H * hd, sources }, H, hd, w.sink, hd ** -0.5);
    const { cos, sin } = angles[r]!;
    backend.rope(o, r * H * hd + nope, H, hd, cos, sin, true);
  }

  // Grouped low-rank output: group g (heads g·H/G ..) goes through its own slice of wo_a.
  const G = cfg.oGroups;
  const gIn = (H * hd) / G;
  const z = backend.alloc(R * G * cfg.oLoraRank);
  const og = backend.alloc(R * gIn);
  for (let g = 0; g < G; g++) {
    for (let r = 0; r < R; r++) og.set(o.subarray(r * H * hd + g * gIn, r * H * hd + (g + 1) * gIn), r * gIn);
    const zg = backend.linear(og, R, w.woA[g]!, false);
    for (let r = 0; r < R; r++) z.set(zg.subarray(r * cfg.oLoraRank, (r + 1) * cfg.oLoraRank), (r * G + g) * cfg.oLoraRank);
  }
  return backend.linear(z, R, w.woB, true);
}
