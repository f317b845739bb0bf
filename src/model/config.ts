import { readFileSync } from "node:fs";
import { join } from "node:path";
import { checkConfigBounds } from "./config-bounds.js";

/** A config.json that cannot describe a DeepSeek-V4 model; names the key at fault. */
export class ConfigError extends Error {
  constructor(message: string, readonly key?: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export type AttentionKind = "swa" | "csa" | "hca";
export type ScoringFunc = "sqrtsoftplus" | "sigmoid" | "softmax";

export interface LayerSchedule {
  /** Layer id as the checkpoint numbers it; MTP blocks continue after the main layers. */
  id: number;
  /** Tensor-name prefix: `layers.{id}` or `mtp.{k}`. */
  prefix: string;
  /** 0 for window-only attention. */
  compressRatio: number;
  /** The reference overlaps windows and adds the lightning indexer exactly when the ratio is 4. */
  kind: AttentionKind;
  /** Routed by the frozen token-id table (`tid2eid`) instead of the learned gate. */
  hashRouted: boolean;
}

/** Which speculative drafter the checkpoint carries (spec §8, §8b). */
export type DrafterKind = "none" | "mtp" | "dspark";

/** The DSpark block drafter of the 0731 checkpoints (spec §8b). */
export interface DsparkConfig {
  /** Draft stages `mtp.0 .. mtp.{stages-1}`: len(compress_ratios) - num_hidden_layers. */
  stages: number;
  /** Tokens drafted per forward (B). */
  blockSize: number;
  /** Token id filling the block after the anchor. */
  noiseTokenId: number;
  /** Main layers whose hc-mean outputs are concatenated into the draft input (ascending). */
  targetLayerIds: number[];
  /** Rank R of the low-rank Markov head. */
  markovRank: number;
}

export interface YarnScaling {
  factor: number;
  originalMaxPositions: number;
  betaFast: number;
  betaSlow: number;
}

export interface ModelConfig {
  vocabSize: number;
  dim: number;
  numLayers: number;
  numMtpLayers: number;
  numHeads: number;
  headDim: number;
  ropeDim: number;
  qLoraRank: number;
  oGroups: number;
  oLoraRank: number;
  window: number;
  ropeTheta: number;
  compressRopeTheta: number;
  yarn: YarnScaling | null;
  maxPositions: number;
  indexHeads: number;
  indexHeadDim: number;
  indexTopk: number;
  numRoutedExperts: number;
  numSharedExperts: number;
  expertsPerToken: number;
  moeInterDim: number;
  numHashLayers: number;
  scoringFunc: ScoringFunc;
  routedScale: number;
  swigluLimit: number;
  expertDtype: "fp4" | "fp8";
  hcMult: number;
  hcSinkhornIters: number;
  hcEps: number;
  normEps: number;
  bosTokenId: number;
  eosTokenId: number;
  /** The main layers. */
  layers: LayerSchedule[];
  /** The drafter's blocks: the April MTP block, or the DSpark stages (ids continue after the main layers). */
  mtpLayers: LayerSchedule[];
  drafter: DrafterKind;
  dspark: DsparkConfig | null;
  /** The parsed config.json, for identity checks and pass-through. */
  raw: Record<string, unknown>;
}

type Raw = Record<string, unknown>;

/** `path` names nested keys in errors, e.g. "rope_scaling.factor". */
function int(raw: Raw, key: string, min = 0, fallback?: number, path = key): number {
  const v = raw[key] ?? fallback;
  if (v === undefined) throw new ConfigError(`config.json: missing key "${path}"`, path);
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    throw new ConfigError(`config.json: "${path}" must be an integer >= ${min}, got ${JSON.stringify(v)}`, path);
  }
  return v;
}

function num(raw: Raw, key: string, fallback?: number, positive = true, path = key): number {
  const v = raw[key] ?? fallback;
  if (v === undefined) throw new ConfigError(`config.json: missing key "${path}"`, path);
  if (typeof v !== "number" || !Number.isFinite(v) || (positive && v <= 0)) {
    throw new ConfigError(`config.json: "${path}" must be a ${positive ? "positive " : ""}number, got ${JSON.stringify(v)}`, path);
  }
  return v;
}

function check(cond: boolean, key: string, message: string): void {
  if (!cond) throw new ConfigError(`config.json: "${key}" ${message}`, key);
}

const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

/** Validate a Hugging Face DeepSeek-V4 config.json object (spec §1.1) into a typed config. */
export function parseConfig(raw: Raw): ModelConfig {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new ConfigError("config.json: not a JSON object");
  checkConfigBounds(raw);
  if (raw.model_type !== undefined && raw.model_type !== "deepseek_v4") {
    throw new ConfigError(`config.json: "model_type" is ${JSON.stringify(raw.model_type)}, expected "deepseek_v4"`, "model_type");
  }
  const dim = int(raw, "hidden_size", 1);
  const numLayers = int(raw, "num_hidden_layers", 1);
  const dsparkKeys = ["dspark_block_size", "dspark_noise_token_id", "dspark_target_layer_ids", "dspark_markov_rank"];
  const isDspark = dsparkKeys.some((k) => raw[k] !== undefined);
  // 0731 keeps num_nextn_predict_layers: 1; its stage count comes from compress_ratios (spec §8b).
  const numMtpLayers = isDspark
    ? (Array.isArray(raw.compress_ratios) ? raw.compress_ratios.length : 0) - numLayers
    : int(raw, "num_nextn_predict_layers", 0, 0);
  const numHeads = int(raw, "num_attention_heads", 1);
  const headDim = int(raw, "head_dim", 1);
  const ropeDim = int(raw, "qk_rope_head_dim", 2);
  const kvHeads = int(raw, "num_key_value_heads", 1, 1);
  check(kvHeads === 1, "num_key_value_heads", "must be 1 (DeepSeek-V4 shares one KV head)");
  check(ropeDim % 2 === 0 && ropeDim <= headDim, "qk_rope_head_dim", `must be even and <= head_dim (${headDim})`);
  check((headDim - ropeDim) % 64 === 0, "head_dim", "minus qk_rope_head_dim must be a multiple of 64 (KV FP8 simulation blocks)");
  const oGroups = int(raw, "o_groups", 1);
  check((numHeads * headDim) % oGroups === 0 && numHeads % oGroups === 0, "o_groups", `must divide num_attention_heads (${numHeads})`);
  const indexHeadDim = int(raw, "index_head_dim", 32);
  check(isPow2(indexHeadDim) && indexHeadDim >= ropeDim, "index_head_dim", "must be a power of two >= qk_rope_head_dim (Hadamard rotation, FP4 blocks)");

  const ratiosRaw = raw.compress_ratios;
  if (!Array.isArray(ratiosRaw)) throw new ConfigError('config.json: missing key "compress_ratios" (an array, one entry per layer incl. MTP)', "compress_ratios");
  if (isDspark) check(numMtpLayers >= 1, "compress_ratios", `has ${ratiosRaw.length} entries; a DSpark (0731) config needs num_hidden_layers (${numLayers}) + the stage count, at least one stage`);
  check(ratiosRaw.length >= numLayers + numMtpLayers, "compress_ratios",
    `has ${ratiosRaw.length} entries; num_hidden_layers + num_nextn_predict_layers = ${numLayers + numMtpLayers}`);
  const numHashLayers = int(raw, "num_hash_layers", 0, 0);
  check(numHashLayers <= numLayers, "num_hash_layers", `exceeds num_hidden_layers (${numLayers})`);
  const window = int(raw, "sliding_window", 1);
  const schedule = (id: number, prefix: string, hashRouted: boolean): LayerSchedule => {
    const r = ratiosRaw[id];
    if (typeof r !== "number" || !Number.isInteger(r) || r < 0 || r === 1) {
      throw new ConfigError(`config.json: "compress_ratios[${id}]" must be 0 or an integer >= 2, got ${JSON.stringify(r)}`, "compress_ratios");
    }
    return { id, prefix, compressRatio: r, kind: r === 0 ? "swa" : r === 4 ? "csa" : "hca", hashRouted };
  };
  const layers = Array.from({ length: numLayers }, (_, i) => schedule(i, `layers.${i}`, i < numHashLayers));
  const mtpLayers = Array.from({ length: numMtpLayers }, (_, k) => schedule(numLayers + k, `mtp.${k}`, false));

  const vocabSize = int(raw, "vocab_size", 1);
  const dspark = isDspark ? parseDspark(raw, numLayers, numMtpLayers, vocabSize) : null;
  if (dspark) {
    mtpLayers.forEach((l, k) => check(l.compressRatio === 0, "compress_ratios", `entry ${l.id} (DSpark stage ${k}) must be 0: the stages are window-only`));
  }

  const scoring = raw.scoring_func ?? "sqrtsoftplus";
  if (scoring !== "sqrtsoftplus" && scoring !== "sigmoid" && scoring !== "softmax") {
    throw new ConfigError(`config.json: "scoring_func" must be sqrtsoftplus, sigmoid or softmax, got ${JSON.stringify(scoring)}`, "scoring_func");
  }
  const expertDtype = raw.expert_dtype ?? "fp8";
  if (expertDtype !== "fp4" && expertDtype !== "fp8") {
    throw new ConfigError(`config.json: "expert_dtype" must be "fp4" or "fp8", got ${JSON.stringify(expertDtype)}`, "expert_dtype");
  }
  const q = raw.quantization_config as Raw | undefined;
  if (q !== undefined) {
    const block = q.weight_block_size;
    check(Array.isArray(block) && block[0] === 128 && block[1] === 128, "quantization_config.weight_block_size", "must be [128, 128]");
    check(q.fmt === undefined || q.fmt === "e4m3", "quantization_config.fmt", "must be e4m3");
    check(q.scale_fmt === undefined || q.scale_fmt === "ue8m0", "quantization_config.scale_fmt", "must be ue8m0");
  }

  let yarn: YarnScaling | null = null;
  const rs = raw.rope_scaling as Raw | null | undefined;
  if (rs) {
    check(typeof rs === "object", "rope_scaling", "must be an object");
    const type = rs.type ?? rs.rope_type;
    check(type === "yarn", "rope_scaling.type", `must be "yarn", got ${JSON.stringify(type)}`);
    yarn = {
      factor: num(rs, "factor", undefined, true, "rope_scaling.factor"),
      originalMaxPositions: int(rs, "original_max_position_embeddings", 1, undefined, "rope_scaling.original_max_position_embeddings"),
      betaFast: num(rs, "beta_fast", 32, true, "rope_scaling.beta_fast"),
      betaSlow: num(rs, "beta_slow", 1, true, "rope_scaling.beta_slow"),
    };
  }

  const numRoutedExperts = int(raw, "n_routed_experts", 1);
  const expertsPerToken = int(raw, "num_experts_per_tok", 1);
  check(expertsPerToken <= numRoutedExperts, "num_experts_per_tok", `exceeds n_routed_experts (${numRoutedExperts})`);
  const numSharedExperts = int(raw, "n_shared_experts", 0, 1);
  check(numSharedExperts === 1, "n_shared_experts", "must be 1 (the reference architecture has exactly one shared expert)");

  return {
    vocabSize,
    dim,
    numLayers,
    numMtpLayers,
    numHeads,
    headDim,
    ropeDim,
    qLoraRank: int(raw, "q_lora_rank", 1),
    oGroups,
    oLoraRank: int(raw, "o_lora_rank", 1),
    window,
    ropeTheta: num(raw, "rope_theta", 10000),
    compressRopeTheta: num(raw, "compress_rope_theta"),
    yarn,
    maxPositions: int(raw, "max_position_embeddings", 1),
    indexHeads: int(raw, "index_n_heads", 1),
    indexHeadDim,
    indexTopk: int(raw, "index_topk", 1),
    numRoutedExperts,
    numSharedExperts,
    expertsPerToken,
    moeInterDim: int(raw, "moe_intermediate_size", 1),
    numHashLayers,
    scoringFunc: scoring,
    routedScale: num(raw, "routed_scaling_factor", 1),
    swigluLimit: num(raw, "swiglu_limit", 0, false),
    expertDtype,
    hcMult: int(raw, "hc_mult", 1),
    hcSinkhornIters: int(raw, "hc_sinkhorn_iters", 1),
    hcEps: num(raw, "hc_eps"),
    normEps: num(raw, "rms_norm_eps"),
    bosTokenId: int(raw, "bos_token_id", 0, 0),
    eosTokenId: int(raw, "eos_token_id", 0, 1),
    layers,
    mtpLayers,
    drafter: dspark ? "dspark" : numMtpLayers > 0 ? "mtp" : "none",
    dspark,
    raw,
  };
}

function parseDspark(raw: Raw, numLayers: number, stages: number, vocabSize: number): DsparkConfig {
  for (const k of ["dspark_block_size", "dspark_noise_token_id", "dspark_target_layer_ids", "dspark_markov_rank"]) {
    if (raw[k] === undefined) throw new ConfigError(`config.json: missing key "${k}" (the other dspark_* keys make this a DSpark (0731) config)`, k);
  }
  const targets = raw.dspark_target_layer_ids;
  check(Array.isArray(targets) && targets.length >= 1, "dspark_target_layer_ids", "must be a non-empty array of layer ids");
  const ids = targets as unknown[];
  ids.forEach((t, j) => check(typeof t === "number" && Number.isInteger(t) && t >= 0 && t < numLayers && (j === 0 || t > (ids[j - 1] as number)),
    "dspark_target_layer_ids", `must be ascending main-layer ids in [0, ${numLayers}), got ${JSON.stringify(targets)}`));
  const noiseTokenId = int(raw, "dspark_noise_token_id", 0);
  check(noiseTokenId < vocabSize, "dspark_noise_token_id", `must be < vocab_size (${vocabSize}), got ${noiseTokenId}`);
  return {
    stages,
    blockSize: int(raw, "dspark_block_size", 1),
    noiseTokenId,
    targetLayerIds: ids as number[],
    markovRank: int(raw, "dspark_markov_rank", 1),
  };
}

export function loadConfig(modelDir: string): ModelConfig {
  const path = join(modelDir, "config.json");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); is --model a DeepSeek-V4 checkpoint directory?`);
  }
  let raw: Raw;
  try {
    raw = JSON.parse(text) as Raw;
  } catch (err) {
    throw new ConfigError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  try {
    return parseConfig(raw);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${path}: ${err.message.replace(/^config\.json: /, "")}`, err.key);
    throw err;
  }
}
