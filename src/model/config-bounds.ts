/**
 * Upper bounds on config.json's sizes, checked before anything is derived from them: the
 * tensor schema and every allocation grow with these numbers, so a corrupted value (say
 * n_routed_experts: 1e9) must be refused before it is used, not discovered as an
 * allocation that never ends. Each bound is far above any DeepSeek-V4 checkpoint
 * (Flash: hidden 4096, 43 layers, 256 experts; Pro: hidden 7168, 61 layers, 384 experts).
 */
import { ConfigError } from "./config.js";

const BOUNDS: Record<string, number> = {
  vocab_size: 1 << 22,
  hidden_size: 1 << 16,
  num_hidden_layers: 1024,
  num_nextn_predict_layers: 64,
  num_attention_heads: 1024,
  head_dim: 1 << 13,
  qk_rope_head_dim: 1 << 13,
  num_key_value_heads: 1024,
  o_groups: 1024,
  o_lora_rank: 1 << 16,
  q_lora_rank: 1 << 16,
  index_head_dim: 1 << 13,
  index_n_heads: 1024,
  index_topk: 1 << 20,
  sliding_window: 1 << 20,
  max_position_embeddings: 1 << 26,
  n_routed_experts: 1 << 14,
  num_experts_per_tok: 1024,
  n_shared_experts: 64,
  moe_intermediate_size: 1 << 18,
  num_hash_layers: 1024,
  hc_mult: 64,
  hc_sinkhorn_iters: 10_000,
  bos_token_id: 1 << 22,
  eos_token_id: 1 << 22,
  dspark_block_size: 1024,
  dspark_noise_token_id: 1 << 22,
  dspark_markov_rank: 1 << 16,
};
/** compress_ratios has one entry per layer and drafter block. */
const MAX_COMPRESS_RATIOS = 1024 + 64;
const MAX_COMPRESS_RATIO = 1 << 16;

/** Throws a ConfigError naming the first key whose number is above its bound. */
export function checkConfigBounds(raw: Record<string, unknown>): void {
  for (const [key, max] of Object.entries(BOUNDS)) {
    const v = raw[key];
    if (typeof v === "number" && v > max) {
      throw new ConfigError(`config.json: "${key}" is ${v}, above the largest accepted value ${max}: the file is corrupted or not a DeepSeek-V4 config`, key);
    }
  }
  const ratios = raw.compress_ratios;
  if (Array.isArray(ratios)) {
    if (ratios.length > MAX_COMPRESS_RATIOS) throw new ConfigError(`config.json: "compress_ratios" has ${ratios.length} entries, more than the ${MAX_COMPRESS_RATIOS} accepted`, "compress_ratios");
    const i = ratios.findIndex((r) => typeof r === "number" && r > MAX_COMPRESS_RATIO);
    if (i >= 0) throw new ConfigError(`config.json: "compress_ratios[${i}]" is ${String(ratios[i])}, above the largest accepted ratio ${MAX_COMPRESS_RATIO}`, "compress_ratios");
  }
  const targets = raw.dspark_target_layer_ids;
  if (Array.isArray(targets) && targets.length > 1024) throw new ConfigError(`config.json: "dspark_target_layer_ids" has ${targets.length} entries, more than the 1024 accepted`, "dspark_target_layer_ids");
}
