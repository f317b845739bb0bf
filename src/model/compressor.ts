import type { Backend, Vec } from "../kernels/backend.js";
import type { ModelConfig } from "./config.js";
import type { RopeTable } from "./rope.js";
import type { CompressorState } from "./state.js";
import type { CompressorWeights } from "./weights.js";

/** Block of the KV "FP8 simulation" on the nope dims (spec §3.5). */
const KV_FP8_BLOCK = 64;
const FP4_BLOCK = 32;

/**
 * Per-token projections of a compressor for a batch (spec §5.5): `kv = x·Wkvᵀ` and the gate
 * `score = x·Wgateᵀ`, unquantised. The position-dependent `ape` bias is added per token in step().
 */
export function compressorProjections(backend: Backend, w: CompressorWeights, x: Vec, rows: number): { kv: Vec; score: Vec } {
  return { kv: backend.linear(x, rows, w.wkv, false), score: backend.linear(x, rows, w.wgate, false) };
}

export type RowFinish = "main" | "indexer";

/**
 * Push token `pos` (row `r` of the batch projections) into the compressor's partial window.
 * When the token completes a window, pool it into a compressed row, normalise, rotate at the
 * window's first position and apply the main (FP8) or indexer (Hadamard + FP4) simulation.
 * Returns true when a row was emitted.
 */
export function compressorStep(
  backend: Backend, cfg: ModelConfig, w: CompressorWeights, st: CompressorState, proj: { kv: Vec; score: Vec }, r: number,
  pos: number, rope: RopeTable, finish: RowFinish,
): boolean {
  const m = st.ratio;
  const width = st.width;
  const d = st.headDim;
  const slot = (st.overlap ? m : 0) + (pos % m);
  st.beforeStep(pos, slot);
  const apeRow = (pos % m) * width;
  for (let j = 0; j < width; j++) {
    st.kv[slot * width + j] = proj.kv[r * width + j]!;
    st.score[slot * width + j] = proj.score[r * width + j]! + w.ape[apeRow + j]!;
  }
  if ((pos + 1) % m !== 0) return false;

  const slots: Array<{ row: number; offset: number }> = [];
  if (st.overlap) {
    // Previous window's first halves, then this window's second halves.
    for (let s = 0; s < m; s++) slots.push({ row: s, offset: 0 });
    for (let s = m; s < 2 * m; s++) slots.push({ row: s, offset: d });
  } else {
    for (let s = 0; s < m; s++) slots.push({ row: s, offset: 0 });
  }
  const pooled = backend.alloc(d);
  backend.softmaxPool(st.kv, st.score, slots, d, width, pooled, 0);
  if (st.overlap) {
    st.kv.copyWithin(0, m * width, 2 * m * width);
    st.score.copyWithin(0, m * width, 2 * m * width);
  }

  const row = backend.rmsNorm(pooled, 1, d, w.norm, cfg.normEps);
  const { cos, sin } = rope.angles(pos + 1 - m);
  backend.rope(row, d - cfg.ropeDim, 1, d, cos, sin, false);
  if (finish === "main") {
    backend.fp8Simulate(row, 0, d - cfg.ropeDim, KV_FP8_BLOCK);
  } else {
    backend.hadamard(row, 0, d, d);
    backend.fp4Simulate(row, 0, d, FP4_BLOCK);
  }
  const at = st.rows.append();
  st.rows.data.set(row.subarray(0, d), at);
  return true;
}
