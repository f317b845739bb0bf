import type { Backend, Vec } from "../kernels/backend.js";
import type { ModelConfig } from "./config.js";
import type { CompressorState } from "./state.js";
import { topkIndices } from "./topk.js";
import type { IndexerWeights } from "./weights.js";

const FP4_BLOCK = 32;

/** Batch-level lightning-indexer queries (spec §5.6): rotated FP4 queries and head weights. */
export interface IndexerBatch {
  q: Vec; // [rows, heads, indexHeadDim]
  weights: Vec; // [rows, heads]
}

export function indexerQueries(
  backend: Backend, cfg: ModelConfig, w: IndexerWeights, x: Vec, qr: Vec, rows: number,
  angles: ReadonlyArray<{ cos: Float64Array; sin: Float64Array }>,
): IndexerBatch {
  const nh = cfg.indexHeads;
  const ihd = cfg.indexHeadDim;
  const q = backend.linear(qr, rows, w.wqB, true);
  for (let r = 0; r < rows; r++) {
    const { cos, sin } = angles[r]!;
    backend.rope(q, r * nh * ihd + ihd - cfg.ropeDim, nh, ihd, cos, sin, false);
    backend.hadamard(q, r * nh * ihd, nh * ihd, ihd);
    backend.fp4Simulate(q, r * nh * ihd, nh * ihd, FP4_BLOCK);
  }
  const weights = backend.linear(x, rows, w.weightsProj, false);
  const scale = ihd ** -0.5 * nh ** -0.5;
  for (let i = 0; i < weights.length; i++) weights[i] = weights[i]! * scale;
  return { q, weights };
}

/** The compressed rows row `r` attends: the top-k visible rows by indexer score. */
export function selectCompressedRows(backend: Backend, cfg: ModelConfig, batch: IndexerBatch, r: number, keys: CompressorState): Int32Array {
  const visible = keys.rows.count;
  const scores = new Float64Array(visible);
  backend.indexerScores(batch.q, r * cfg.indexHeads * cfg.indexHeadDim, batch.weights, r * cfg.indexHeads, cfg.indexHeads, cfg.indexHeadDim, keys.rows.data, visible, scores);
  return topkIndices(scores, visible, cfg.indexTopk);
}
