/**
 * Configurations for generated DeepSeek-V4-architecture checkpoints, as Hugging Face
 * config.json objects (spec §1.1). Every GEMM input dimension is a multiple of 128 and every
 * other constraint of the reference code (spec §12a) holds, so the official model.py could run
 * each of them; beyond that the presets deliberately differ from tiny-a and from each other
 * (dims, rope dim, ratios, windows, top-k, expert dtype and count, hash-layer count), so an
 * implementation tuned to one configuration fails on another.
 */

export type HfConfig = Record<string, unknown>;

export interface TinyPreset {
  summary: string;
  /** Target shard size: small presets use several shards so that sharding is always exercised. */
  shardBytes: number;
  config: HfConfig;
}

/** The real DeepSeek-V4 vocabulary; presets with it get the real tokenizer files. */
export const V4_VOCAB_SIZE = 129280;

/** The 0731 DSpark drafter's config keys (spec §8b). */
interface DsparkDims {
  stages: number;
  block: number;
  noise: number;
  targets: number[];
  rank: number;
}

interface Dims {
  vocab: number;
  hidden: number;
  ratios: number[]; // main layers, then MTP layers or DSpark stages
  mtp: number;
  /** A 0731 layout: `ratios` ends with the stages' zeros; `mtp` stays the value the real config keeps (1). */
  dspark?: DsparkDims;
  hashLayers: number;
  heads: number;
  headDim: number;
  ropeDim: number;
  qLora: number;
  oGroups: number;
  oLora: number;
  experts: number;
  topk: number;
  moeInter: number;
  expertDtype: "fp4" | "fp8";
  indexHeads: number;
  indexHeadDim: number;
  indexTopk: number;
  window: number;
  yarnFactor: number;
  yarnOriginal: number;
  ropeTheta?: number;
  compressRopeTheta?: number;
  routedScale?: number;
  swigluLimit?: number;
}

/** A complete config.json in the key order of the official one. */
function v4Config(d: Dims): HfConfig {
  const drafterBlocks = d.dspark ? d.dspark.stages : d.mtp;
  const config: HfConfig = {
    architectures: ["DeepseekV4ForCausalLM"],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 0,
    eos_token_id: 1,
    expert_dtype: d.expertDtype,
    hc_eps: 1e-6,
    hc_mult: 4,
    hc_sinkhorn_iters: 20,
    head_dim: d.headDim,
    hidden_act: "silu",
    hidden_size: d.hidden,
    index_head_dim: d.indexHeadDim,
    index_n_heads: d.indexHeads,
    index_topk: d.indexTopk,
    initializer_range: 0.02,
    max_position_embeddings: d.yarnOriginal * d.yarnFactor,
    model_type: "deepseek_v4",
    moe_intermediate_size: d.moeInter,
    n_routed_experts: d.experts,
    n_shared_experts: 1,
    norm_topk_prob: true,
    num_attention_heads: d.heads,
    num_experts_per_tok: d.topk,
    num_hidden_layers: d.ratios.length - drafterBlocks,
    num_hash_layers: d.hashLayers,
    num_key_value_heads: 1,
    num_nextn_predict_layers: d.mtp,
    o_groups: d.oGroups,
    o_lora_rank: d.oLora,
    q_lora_rank: d.qLora,
    qk_rope_head_dim: d.ropeDim,
    quantization_config: {
      activation_scheme: "dynamic",
      fmt: "e4m3",
      quant_method: "fp8",
      scale_fmt: "ue8m0",
      weight_block_size: [128, 128],
    },
    rms_norm_eps: 1e-6,
    rope_scaling: {
      beta_fast: 32,
      beta_slow: 1,
      factor: d.yarnFactor,
      original_max_position_embeddings: d.yarnOriginal,
      type: "yarn",
    },
    rope_theta: d.ropeTheta ?? 10000,
    routed_scaling_factor: d.routedScale ?? 1.5,
    scoring_func: "sqrtsoftplus",
    sliding_window: d.window,
    swiglu_limit: d.swigluLimit ?? 10.0,
    tie_word_embeddings: false,
    topk_method: "noaux_tc",
    torch_dtype: "bfloat16",
    transformers_version: "4.57.1",
    use_cache: true,
    vocab_size: d.vocab,
    compress_rope_theta: d.compressRopeTheta ?? 160000,
    compress_ratios: d.ratios,
  };
  // The real 0731 config.json appends these after compress_ratios (golden README, "Config conventions").
  if (d.dspark) {
    config.dspark_block_size = d.dspark.block;
    config.dspark_noise_token_id = d.dspark.noise;
    config.dspark_target_layer_ids = d.dspark.targets;
    config.dspark_markov_rank = d.dspark.rank;
  }
  return config;
}

/** The noise token of the real 0731 checkpoint (a reserved id of the V4 vocabulary). */
export const V4_DSPARK_NOISE_TOKEN_ID = 128799;

const MiB = 1 << 20;

export const TINY_PRESETS: Readonly<Record<string, TinyPreset>> = {
  tiny: {
    summary: "the embedded default model: real V4 vocabulary, hidden 128, SWA/CSA/HCA(16)/CSA + MTP, 1M context",
    shardBytes: 32 * MiB,
    config: v4Config({
      vocab: V4_VOCAB_SIZE, hidden: 128, ratios: [0, 4, 16, 4, 0], mtp: 1, hashLayers: 1,
      heads: 4, headDim: 128, ropeDim: 64, qLora: 128, oGroups: 2, oLora: 128,
      experts: 8, topk: 2, moeInter: 128, expertDtype: "fp4",
      indexHeads: 2, indexHeadDim: 64, indexTopk: 8, window: 32, yarnFactor: 16, yarnOriginal: 65536,
    }),
  },
  micro: {
    summary: "smallest useful model for fast tests: vocab 1024, rope 32, HCA ratio 8, window 8, index top-2",
    shardBytes: 512 * 1024,
    config: v4Config({
      vocab: 1024, hidden: 128, ratios: [0, 4, 8, 0], mtp: 1, hashLayers: 1,
      heads: 4, headDim: 96, ropeDim: 32, qLora: 128, oGroups: 1, oLora: 128,
      experts: 4, topk: 2, moeInter: 128, expertDtype: "fp4",
      indexHeads: 2, indexHeadDim: 64, indexTopk: 2, window: 8, yarnFactor: 2, yarnOriginal: 128,
    }),
  },
  "small-fp8experts": {
    summary: "FP8 experts (Base-style), CSA first, HCA ratios 32 and 8, rope 16, 2 hash layers, other thetas and scaling",
    shardBytes: 2 * MiB,
    config: v4Config({
      vocab: 2048, hidden: 256, ratios: [4, 32, 0, 8, 4, 0], mtp: 1, hashLayers: 2,
      heads: 8, headDim: 80, ropeDim: 16, qLora: 128, oGroups: 1, oLora: 256,
      experts: 6, topk: 3, moeInter: 256, expertDtype: "fp8",
      indexHeads: 4, indexHeadDim: 32, indexTopk: 2, window: 8, yarnFactor: 8, yarnOriginal: 64,
      ropeTheta: 20000, compressRopeTheta: 40000, routedScale: 2.5, swigluLimit: 7,
    }),
  },
  "small-nohash": {
    summary: "V4-Pro-like schedule (HCA 128 first), no hash layers, 16 experts top-6, head_dim 192, 8 indexer heads of 128",
    shardBytes: 1 * MiB,
    config: v4Config({
      vocab: 1024, hidden: 128, ratios: [128, 128, 4, 128, 4, 0], mtp: 1, hashLayers: 0,
      heads: 4, headDim: 192, ropeDim: 64, qLora: 256, oGroups: 2, oLora: 128,
      experts: 16, topk: 6, moeInter: 128, expertDtype: "fp4",
      indexHeads: 8, indexHeadDim: 128, indexTopk: 16, window: 16, yarnFactor: 16, yarnOriginal: 256,
    }),
  },
  "flash-slice": {
    summary: "real V4-Flash dimensions with 2 layers (CSA, HCA 128) + MTP, for benchmarks (~12 GB)",
    shardBytes: 4 * 1024 * MiB,
    config: v4Config({
      vocab: V4_VOCAB_SIZE, hidden: 4096, ratios: [4, 128, 0], mtp: 1, hashLayers: 1,
      heads: 64, headDim: 512, ropeDim: 64, qLora: 1024, oGroups: 8, oLora: 1024,
      experts: 256, topk: 6, moeInter: 2048, expertDtype: "fp4",
      indexHeads: 64, indexHeadDim: 128, indexTopk: 512, window: 128, yarnFactor: 16, yarnOriginal: 65536,
    }),
  },
  "tiny-0731": {
    summary: "0731 layout: tiny's dims and real V4 vocabulary, 4 layers + 3 DSpark stages (block 5, rank 32, taps of layers 1-3)",
    shardBytes: 32 * MiB,
    config: v4Config({
      vocab: V4_VOCAB_SIZE, hidden: 128, ratios: [0, 4, 16, 4, 0, 0, 0], mtp: 1, hashLayers: 1,
      dspark: { stages: 3, block: 5, noise: V4_DSPARK_NOISE_TOKEN_ID, targets: [1, 2, 3], rank: 32 },
      heads: 4, headDim: 128, ropeDim: 64, qLora: 128, oGroups: 2, oLora: 128,
      experts: 8, topk: 2, moeInter: 128, expertDtype: "fp4",
      indexHeads: 2, indexHeadDim: 64, indexTopk: 8, window: 32, yarnFactor: 16, yarnOriginal: 65536,
    }),
  },
  "micro-0731": {
    summary: "smallest 0731 layout for fast tests: micro's dims, 2 DSpark stages, block 4, rank 16, taps of layers 0 and 2, window 8",
    shardBytes: 512 * 1024,
    config: v4Config({
      vocab: 1024, hidden: 128, ratios: [0, 4, 8, 0, 0], mtp: 1, hashLayers: 1,
      dspark: { stages: 2, block: 4, noise: 1021, targets: [0, 2], rank: 16 },
      heads: 4, headDim: 96, ropeDim: 32, qLora: 128, oGroups: 1, oLora: 128,
      experts: 4, topk: 2, moeInter: 128, expertDtype: "fp4",
      indexHeads: 2, indexHeadDim: 64, indexTopk: 2, window: 8, yarnFactor: 2, yarnOriginal: 128,
    }),
  },
  "flash-slice-0731": {
    summary: "real V4-Flash-0731 dimensions with 2 layers (CSA, HCA 128) + 3 DSpark stages (block 5, rank 256), for benchmarks (~22 GB)",
    shardBytes: 4 * 1024 * MiB,
    config: v4Config({
      vocab: V4_VOCAB_SIZE, hidden: 4096, ratios: [4, 128, 0, 0, 0], mtp: 1, hashLayers: 1,
      dspark: { stages: 3, block: 5, noise: V4_DSPARK_NOISE_TOKEN_ID, targets: [0, 1], rank: 256 },
      heads: 64, headDim: 512, ropeDim: 64, qLora: 1024, oGroups: 8, oLora: 1024,
      experts: 256, topk: 6, moeInter: 2048, expertDtype: "fp4",
      indexHeads: 64, indexHeadDim: 128, indexTopk: 512, window: 128, yarnFactor: 16, yarnOriginal: 65536,
    }),
  },
  "attn-flash": {
    summary: "V4-Flash's attention shapes on a small model: head_dim 512 (rope 64), window 128, 64 indexer heads of 128, top-512 (binding past 2,048 positions), CSA + HCA 128",
    shardBytes: 4 * MiB,
    config: v4Config({
      vocab: 1024, hidden: 256, ratios: [4, 128, 0], mtp: 1, hashLayers: 1,
      heads: 2, headDim: 512, ropeDim: 64, qLora: 256, oGroups: 2, oLora: 128,
      experts: 4, topk: 2, moeInter: 128, expertDtype: "fp4",
      indexHeads: 64, indexHeadDim: 128, indexTopk: 512, window: 128, yarnFactor: 4, yarnOriginal: 1024,
    }),
  },
};

export const DEFAULT_PRESET = "tiny";
