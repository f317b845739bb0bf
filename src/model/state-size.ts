/**
 * Sequence state bytes at a given length (spec §6), computed from the loaded
 * config with the same layout state.ts allocates: the window ring, the
 * compressed rows (main and indexer) and the compressors' partial windows,
 * for the main layers and the MTP block or DSpark stages, and for DSpark the
 * taps a sequence may owe the stages' rings. `bytesPerValue` is the backend's
 * float width (8 for the float64 reference); 2 gives the bf16 figure of the
 * spec's table.
 */
import type { LayerSchedule, ModelConfig } from "./config.js";

export interface StateBreakdown {
  total: number;
  /** Fixed part: rings and partial windows. */
  fixed: number;
  /** Part that grows with the length: compressed rows and indexer keys. */
  rows: number;
  /** Growth per token, averaged. */
  perToken: number;
}

function layerValues(cfg: ModelConfig, l: LayerSchedule, tokens: number): { fixed: number; rows: number } {
  let fixed = cfg.window * cfg.headDim;
  let rows = 0;
  const m = l.compressRatio;
  if (m > 0) {
    const overlap = l.kind === "csa";
    const c = overlap ? 2 : 1;
    fixed += 2 * (c * m) * (c * cfg.headDim);
    rows += Math.floor(tokens / m) * cfg.headDim;
    if (overlap) {
      fixed += 2 * (2 * m) * (2 * cfg.indexHeadDim);
      rows += Math.floor(tokens / m) * cfg.indexHeadDim;
    }
  }
  return { fixed, rows };
}

export function stateBreakdown(cfg: ModelConfig, tokens: number, bytesPerValue: number): StateBreakdown {
  let fixed = 0;
  let rows = 0;
  for (const l of cfg.layers) {
    const v = layerValues(cfg, l, tokens);
    fixed += v.fixed;
    rows += v.rows;
  }
  // The MTP block runs over the same positions as the main model.
  for (const l of cfg.mtpLayers) {
    const v = layerValues(cfg, l, tokens);
    fixed += v.fixed;
    rows += v.rows;
  }
  // DSpark: the taps of the positions a sequence may owe its stages' rings (dspark-owed.ts),
  // allocated at the first step that owes them.
  if (cfg.dspark) fixed += cfg.window * cfg.dspark.targetLayerIds.length * cfg.dim;
  return {
    total: (fixed + rows) * bytesPerValue,
    fixed: fixed * bytesPerValue,
    rows: rows * bytesPerValue,
    perToken: tokens > 0 ? (rows * bytesPerValue) / tokens : 0,
  };
}

export function stateBytes(cfg: ModelConfig, tokens: number, bytesPerValue: number): number {
  return stateBreakdown(cfg, tokens, bytesPerValue).total;
}
