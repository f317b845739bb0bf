/**
 * The whole checkpoint checked before the engine spends anything on it: the
 * shard index, every shard's header, config.json against the headers, and every
 * tensor's presence, dtype and shape. Only headers are read, so a broken
 * checkpoint is refused in milliseconds, before the identity hash reads every
 * byte and before any weight is allocated.
 */
import { Checkpoint } from "../formats/safetensors.js";
import type { ModelConfig } from "./config.js";
import { validateCheckpoint } from "./weights.js";

export function preflightCheckpoint(dir: string, cfg: ModelConfig): void {
  const ckpt = Checkpoint.open(dir);
  try {
    validateCheckpoint(ckpt, cfg);
  } finally {
    ckpt.close();
  }
}
