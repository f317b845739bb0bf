import type { Backend, Vec } from "../kernels/backend.js";
import { compressorProjections, compressorStep } from "./compressor.js";
import type { LayerSchedule, ModelConfig } from "./config.js";
import { indexerQueries, selectCompressedRows } from "./indexer.js";
import type { RopeTable } from "./rope.js";
import { selectRows } from "./rows.js";
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
 *
 * `outRows` (ascending batch indices) limits the output to those rows: every row still
 * updates the state (its key, compressors and indexer keys), but only those rows compute
 * queries, attend and project, and the result has one row per entry. The last layer uses it
 * for rows whose output nobody reads (a prompt's positions before the last one).
 */
export function attentionForward(
  backend: Backend, cfg: ModelConfig, layer: LayerSchedule, w: AttentionWeights, rope: RopeTable,
  x: Vec, rows: readonly AttentionRow[], trace?: AttentionTrace, outRows?: readonly number[],
): Vec {
  const R = rows.length;
  const H = cfg.numHeads;
  const hd = cfg.headDim;
  const nope = hd - cfg.ropeDim;
  const angles = rows.map((row) => rope.angles(row.pos));

  // Key side, every row.
  const kv = keyRows(backend, cfg, w, x, R, angles);
  const comp = w.compressor ? compressorProjections(backend, w.compressor, x, R) : null;
  const indexKeys = w.indexer ? compressorProjections(backend, w.indexer.compressor, x, R) : null;

  // Query side, the output rows only.
  const out = outRows ?? null;
  const Q = out ? out.length : R;
  const xq = out ? selectRows(backend, x, out, cfg.dim) : x;
  const anglesQ = out ? out.map((r) => angles[r]!) : angles;
  const { qr, q } = Q > 0 ? queryRows(backend, cfg, w, xq, Q, anglesQ) : { qr: null, q: backend.alloc(0) };
  const idx = w.indexer && qr ? indexerQueries(backend, cfg, w.indexer, xq, qr, Q, anglesQ) : null;

  const o = backend.alloc(Q * H * hd);
  const win = cfg.window;
  const windowIdx = new Int32Array(win);
  let next = 0; // position in `out` of the next output row
  for (let r = 0; r < R; r++) {
    const { state, pos } = rows[r]!;
    state.window.set(kv.subarray(r * hd, (r + 1) * hd), (pos % win) * hd);
    if (comp && state.compressor) compressorStep(backend, cfg, w.compressor!, state.compressor, comp, r, pos, rope, "main");
    if (indexKeys && state.indexer) compressorStep(backend, cfg, w.indexer!.compressor, state.indexer, indexKeys, r, pos, rope, "indexer");
    if (out && out[next] !== r) continue;
    const i = out ? next++ : r; // this row's index among the output rows

    const first = Math.max(0, pos - win + 1);
    for (let p = first; p <= pos; p++) windowIdx[p - first] = p % win;
    const sources: Array<{ rows: Vec; indices: ArrayLike<number>; count: number }> = [{ rows: state.window, indices: windowIdx, count: pos - first + 1 }];
    if (state.compressor) {
      const visible = state.compressor.rows.count;
      let selected: ArrayLike<number>;
      if (idx && state.indexer) {
        selected = selectCompressedRows(backend, cfg, idx, i, state.indexer);
        trace?.indexer?.(layer.id, r, selected as Int32Array);
      } else {
        selected = Int32Array.from({ length: visible }, (_, i) => i);
      }
      sources.push({ rows: state.compressor.rows.data, indices: selected, count: selected.length });
    }
    backend.attention({ q, qOffset: i * H * hd, out: o, outOffset: i * H * hd, sources }, H, hd, w.sink, hd ** -0.5);
    const { cos, sin } = angles[r]!;
    backend.rope(o, i * H * hd + nope, H, hd, cos, sin, true);
  }
  if (Q === 0) return backend.alloc(0);
  return outputProjection(backend, cfg, w, o, Q);
}

/** Keys [R, headDim] (spec §5.2): kv_norm(wkv(x)), RoPE on the last dims, FP8 simulation of the rest. */
export function keyRows(backend: Backend, cfg: ModelConfig, w: AttentionWeights, x: Vec, R: number, angles: ReadonlyArray<{ cos: Float64Array; sin: Float64Array }>): Vec {
  const hd = cfg.headDim;
  const nope = hd - cfg.ropeDim;
  const kv = backend.rmsNorm(backend.linear(x, R, w.wkv, true), R, hd, w.kvNorm, cfg.normEps);
  for (let r = 0; r < R; r++) {
    const { cos, sin } = angles[r]!;
    backend.rope(kv, r * hd + nope, 1, hd, cos, sin, false);
    backend.fp8Simulate(kv, r * hd, nope, KV_FP8_BLOCK);
  }
  return kv;
}

/** Queries [Q, heads, headDim] (spec §5.2) and the low-rank `qr` the indexer reuses. */
export function queryRows(backend: Backend, cfg: ModelConfig, w: AttentionWeights, x: Vec, Q: number, angles: ReadonlyArray<{ cos: Float64Array; sin: Float64Array }>): { qr: Vec; q: Vec } {
  const H = cfg.numHeads;
  const hd = cfg.headDim;
  const nope = hd - cfg.ropeDim;
  const qr = backend.rmsNorm(backend.linear(x, Q, w.wqA, true), Q, cfg.qLoraRank, w.qNorm, cfg.normEps);
  const q = backend.linear(qr, Q, w.wqB, true);
  backend.rmsNorm(q, Q * H, hd, null, cfg.normEps, q);
  for (let i = 0; i < Q; i++) {
    const { cos, sin } = angles[i]!;
    backend.rope(q, i * H * hd + nope, H, hd, cos, sin, false);
  }
  return { qr, q };
}

/** Attention output [Q, heads·headDim] through the grouped low-rank `wo_a` and `wo_b` (spec §5.3). */
export function outputProjection(backend: Backend, cfg: ModelConfig, w: AttentionWeights, o: Vec, Q: number): Vec {
  const H = cfg.numHeads;
  const hd = cfg.headDim;
  // Grouped low-rank output: group g (heads g·H/G ..) goes through its own slice of wo_a.
  const G = cfg.oGroups;
  const gIn = (H * hd) / G;
  const z = backend.alloc(Q * G * cfg.oLoraRank);
  const og = backend.alloc(Q * gIn);
  for (let g = 0; g < G; g++) {
    for (let i = 0; i < Q; i++) og.set(o.subarray(i * H * hd + g * gIn, i * H * hd + (g + 1) * gIn), i * gIn);
    const zg = backend.linear(og, Q, w.woA[g]!, false);
    for (let i = 0; i < Q; i++) z.set(zg.subarray(i * cfg.oLoraRank, (i + 1) * cfg.oLoraRank), (i * G + g) * cfg.oLoraRank);
  }
  return backend.linear(z, Q, w.woB, true);
}
