import type { DType } from "../formats/dtypes.js";
import type { LayerSchedule, ModelConfig } from "./config.js";

/**
 * The tensors a DeepSeek-V4 checkpoint holds for a config (spec §5.1, §7, §9): names as
 * the official checkpoint spells them, storage dtype and shape. The loader checks a
 * checkpoint against it; the tiny-checkpoint generator writes exactly this.
 */
export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: number[];
  /** How the values are stored: plain, FP8 with 128x128 E8M0 block scales, or packed FP4 with 1x32 scales. */
  role: "plain" | "fp8-weight" | "fp8-scale" | "fp4-weight" | "fp4-scale";
}

const QBLOCK = 128;
const FP4_BLOCK = 32;
const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

function fp8Linear(name: string, out: number, inp: number): TensorSpec[] {
  return [
    { name: `${name}.weight`, dtype: "F8_E4M3", shape: [out, inp], role: "fp8-weight" },
    { name: `${name}.scale`, dtype: "F8_E8M0", shape: [ceilDiv(out, QBLOCK), ceilDiv(inp, QBLOCK)], role: "fp8-scale" },
  ];
}

function fp4Linear(name: string, out: number, inp: number): TensorSpec[] {
  return [
    { name: `${name}.weight`, dtype: "I8", shape: [out, inp / 2], role: "fp4-weight" },
    { name: `${name}.scale`, dtype: "F8_E8M0", shape: [out, inp / FP4_BLOCK], role: "fp4-scale" },
  ];
}

const plain = (name: string, dtype: DType, shape: number[]): TensorSpec => ({ name, dtype, shape, role: "plain" });

function hcSet(prefix: string, tag: string, cfg: ModelConfig): TensorSpec[] {
  const mix = (2 + cfg.hcMult) * cfg.hcMult;
  return [
    plain(`${prefix}hc_${tag}_fn`, "F32", [mix, cfg.hcMult * cfg.dim]),
    plain(`${prefix}hc_${tag}_base`, "F32", [mix]),
    plain(`${prefix}hc_${tag}_scale`, "F32", [3]),
  ];
}

function hcHead(prefix: string, cfg: ModelConfig): TensorSpec[] {
  return [
    plain(`${prefix}hc_head_fn`, "F32", [cfg.hcMult, cfg.hcMult * cfg.dim]),
    plain(`${prefix}hc_head_base`, "F32", [cfg.hcMult]),
    plain(`${prefix}hc_head_scale`, "F32", [1]),
  ];
}

function compressor(prefix: string, cfg: ModelConfig, ratio: number, headDim: number, overlap: boolean): TensorSpec[] {
  const width = (overlap ? 2 : 1) * headDim;
  return [
    plain(`${prefix}.wkv.weight`, "BF16", [width, cfg.dim]),
    plain(`${prefix}.wgate.weight`, "BF16", [width, cfg.dim]),
    plain(`${prefix}.ape`, "F32", [ratio, width]),
    plain(`${prefix}.norm.weight`, "BF16", [headDim]),
  ];
}

export function blockTensors(cfg: ModelConfig, layer: LayerSchedule): TensorSpec[] {
  const p = layer.prefix;
  const D = cfg.dim;
  const qkv = cfg.numHeads * cfg.headDim;
  const t: TensorSpec[] = [
    plain(`${p}.attn_norm.weight`, "BF16", [D]),
    plain(`${p}.ffn_norm.weight`, "BF16", [D]),
    ...hcSet(`${p}.`, "attn", cfg),
    ...hcSet(`${p}.`, "ffn", cfg),
    ...fp8Linear(`${p}.attn.wq_a`, cfg.qLoraRank, D),
    plain(`${p}.attn.q_norm.weight`, "BF16", [cfg.qLoraRank]),
    ...fp8Linear(`${p}.attn.wq_b`, qkv, cfg.qLoraRank),
    ...fp8Linear(`${p}.attn.wkv`, cfg.headDim, D),
    plain(`${p}.attn.kv_norm.weight`, "BF16", [cfg.headDim]),
    ...fp8Linear(`${p}.attn.wo_a`, cfg.oGroups * cfg.oLoraRank, qkv / cfg.oGroups),
    ...fp8Linear(`${p}.attn.wo_b`, D, cfg.oGroups * cfg.oLoraRank),
    plain(`${p}.attn.attn_sink`, "F32", [cfg.numHeads]),
  ];
  if (layer.compressRatio > 0) {
    t.push(...compressor(`${p}.attn.compressor`, cfg, layer.compressRatio, cfg.headDim, layer.kind === "csa"));
  }
  if (layer.kind === "csa") {
    t.push(
      ...fp8Linear(`${p}.attn.indexer.wq_b`, cfg.indexHeads * cfg.indexHeadDim, cfg.qLoraRank),
      plain(`${p}.attn.indexer.weights_proj.weight`, "BF16", [cfg.indexHeads, D]),
      ...compressor(`${p}.attn.indexer.compressor`, cfg, layer.compressRatio, cfg.indexHeadDim, true),
    );
  }
  t.push(plain(`${p}.ffn.gate.weight`, "BF16", [cfg.numRoutedExperts, D]));
  t.push(layer.hashRouted
    ? plain(`${p}.ffn.gate.tid2eid`, "I64", [cfg.vocabSize, cfg.expertsPerToken])
    : plain(`${p}.ffn.gate.bias`, "F32", [cfg.numRoutedExperts]));
  const expert = cfg.expertDtype === "fp4" ? fp4Linear : fp8Linear;
  for (let e = 0; e < cfg.numRoutedExperts; e++) {
    t.push(
      ...expert(`${p}.ffn.experts.${e}.w1`, cfg.moeInterDim, D),
      ...expert(`${p}.ffn.experts.${e}.w2`, D, cfg.moeInterDim),
      ...expert(`${p}.ffn.experts.${e}.w3`, cfg.moeInterDim, D),
    );
  }
  t.push(
    ...fp8Linear(`${p}.ffn.shared_experts.w1`, cfg.moeInterDim, D),
    ...fp8Linear(`${p}.ffn.shared_experts.w2`, D, cfg.moeInterDim),
    ...fp8Linear(`${p}.ffn.shared_experts.w3`, cfg.moeInterDim, D),
  );
  if (p.startsWith("mtp.") && cfg.dspark) {
    t.push(...dsparkStageExtras(cfg, layer));
  } else if (p.startsWith("mtp.")) {
    t.push(
      ...fp8Linear(`${p}.e_proj`, D, D),
      ...fp8Linear(`${p}.h_proj`, D, D),
      plain(`${p}.enorm.weight`, "BF16", [D]),
      plain(`${p}.hnorm.weight`, "BF16", [D]),
      plain(`${p}.norm.weight`, "BF16", [D]),
      ...hcHead(`${p}.`, cfg),
    );
  }
  return t;
}

/**
 * What a DSpark stage holds beyond an ordinary block (spec §8b): the first stage projects the
 * main model's taps, the last one carries the draft head (HCHead, norm, Markov and confidence heads).
 */
function dsparkStageExtras(cfg: ModelConfig, layer: LayerSchedule): TensorSpec[] {
  const ds = cfg.dspark!;
  const p = layer.prefix;
  const D = cfg.dim;
  const k = layer.id - cfg.numLayers;
  const t: TensorSpec[] = [];
  if (k === 0) {
    t.push(...fp8Linear(`${p}.main_proj`, D, D * ds.targetLayerIds.length), plain(`${p}.main_norm.weight`, "BF16", [D]));
  }
  if (k === ds.stages - 1) {
    t.push(
      plain(`${p}.norm.weight`, "BF16", [D]),
      ...hcHead(`${p}.`, cfg),
      plain(`${p}.markov_head.markov_w1.weight`, "BF16", [cfg.vocabSize, ds.markovRank]),
      plain(`${p}.markov_head.markov_w2.weight`, "BF16", [cfg.vocabSize, ds.markovRank]),
      plain(`${p}.confidence_head.proj.weight`, "BF16", [1, D + ds.markovRank]),
    );
  }
  return t;
}

/** Every tensor of the checkpoint, top level first, then each layer, then the MTP blocks. */
export function checkpointTensors(cfg: ModelConfig): TensorSpec[] {
  return [
    plain("embed.weight", "BF16", [cfg.vocabSize, cfg.dim]),
    plain("head.weight", "BF16", [cfg.vocabSize, cfg.dim]),
    plain("norm.weight", "BF16", [cfg.dim]),
    ...hcHead("", cfg),
    ...cfg.layers.flatMap((l) => blockTensors(cfg, l)),
    ...cfg.mtpLayers.flatMap((l) => blockTensors(cfg, l)),
  ];
}
