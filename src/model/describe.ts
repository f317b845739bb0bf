import type { ModelConfig } from "./config.js";
import { drafterLayout } from "./weights.js";

/** What `dsv4 info` and load lines report about a checkpoint: its shape and its drafter. */
export interface ModelSummary {
  layers: number;
  attention: Record<"swa" | "csa" | "hca", number>;
  hashLayers: number;
  dim: number;
  heads: number;
  headDim: number;
  vocab: number;
  window: number;
  experts: number;
  expertsPerToken: number;
  expertDtype: string;
  maxPositions: number;
  /** "April MTP (1 block)", "0731 DSpark (3 stages, block 5)" or "none". */
  drafter: string;
  dspark: { targetLayerIds: number[]; markovRank: number; noiseTokenId: number } | null;
}

export function summarizeModel(cfg: ModelConfig): ModelSummary {
  const attention = { swa: 0, csa: 0, hca: 0 };
  for (const l of cfg.layers) attention[l.kind]++;
  return {
    layers: cfg.numLayers,
    attention,
    hashLayers: cfg.numHashLayers,
    dim: cfg.dim,
    heads: cfg.numHeads,
    headDim: cfg.headDim,
    vocab: cfg.vocabSize,
    window: cfg.window,
    experts: cfg.numRoutedExperts,
    expertsPerToken: cfg.expertsPerToken,
    expertDtype: cfg.expertDtype,
    maxPositions: cfg.maxPositions,
    drafter: drafterLayout(cfg),
    dspark: cfg.dspark ? { targetLayerIds: cfg.dspark.targetLayerIds, markovRank: cfg.dspark.markovRank, noiseTokenId: cfg.dspark.noiseTokenId } : null,
  };
}

/** One line, e.g. for a load message: "6 layers (SWA 2, CSA 2, HCA 2), dim 256, vocab 1024; drafter: 0731 DSpark (3 stages, block 5)". */
export function modelLine(cfg: ModelConfig): string {
  const s = summarizeModel(cfg);
  return `${s.layers} layers (SWA ${s.attention.swa}, CSA ${s.attention.csa}, HCA ${s.attention.hca}), dim ${s.dim}, vocab ${s.vocab}; drafter: ${s.drafter}`;
}
