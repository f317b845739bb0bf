import type { ModelConfig } from "./config.js";

/**
 * Weight bytes one draft reads over those of one plain decode step (one sequence), from the
 * config alone: a prior for the speculation policy before it has timed a draft. Each step reads
 * every dense matrix once and each routed expert a row picks once; a DSpark block's B rows
 * pick up to B·k experts per stage, and it adds B Markov GEMVs and main_proj; an MTP draft is
 * one block, the head and its two input projections. FP8 counts one byte per weight, FP4 half,
 * BF16 two; scales, norms, gates and compressors are left out (small next to these).
 * `draftIds`: the ids a draft vocabulary keeps (the draft's head and Markov rows), default all.
 * Null when the checkpoint has no drafter.
 */
export function draftBytesRatio(cfg: ModelConfig, draftIds = cfg.vocabSize): number | null {
  if (cfg.drafter === "none") return null;
  const D = cfg.dim;
  const attention = D * cfg.qLoraRank + cfg.qLoraRank * cfg.numHeads * cfg.headDim + D * cfg.headDim +
    cfg.numHeads * cfg.headDim * cfg.oLoraRank + cfg.oGroups * cfg.oLoraRank * D;
  const expert = 3 * D * cfg.moeInterDim * (cfg.expertDtype === "fp4" ? 0.5 : 1);
  const shared = 3 * D * cfg.moeInterDim * cfg.numSharedExperts;
  const block = (rows: number) => attention + shared + Math.min(cfg.numRoutedExperts, rows * cfg.expertsPerToken) * expert;
  const head = 2 * cfg.vocabSize * D;
  const step = cfg.layers.length * block(1) + head;
  const draftHead = 2 * draftIds * D;
  if (cfg.drafter === "mtp") return (block(1) + draftHead + 2 * D * D) / step;
  const ds = cfg.dspark!;
  const draft = ds.stages * block(ds.blockSize) + draftHead + ds.blockSize * 2 * draftIds * ds.markovRank + ds.targetLayerIds.length * D * D;
  return draft / step;
}
