import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeShardedCheckpointStreaming, type TensorSource } from "../formats/safetensors-writer.js";
import { DTYPE_BYTES } from "../formats/dtypes.js";
import { elementCount, INDEX_FILE } from "../formats/safetensors.js";
import { writeDefaultTokenizerFiles } from "../text/tokenizer.js";
import { parseConfig, type ModelConfig } from "../model/config.js";
import { checkpointTensors, type TensorSpec } from "../model/schema.js";
import { DEFAULT_PRESET, TINY_PRESETS, V4_VOCAB_SIZE, type HfConfig } from "./tiny-presets.js";
import { FP4_CODE_STD, FP8_CODE_STD, generateTensor, scaleExponent, type Recipe } from "./tiny-values.js";

export { DEFAULT_PRESET, TINY_PRESETS, V4_VOCAB_SIZE, type HfConfig, type TinyPreset } from "./tiny-presets.js";

/**
 * Random DeepSeek-V4-architecture checkpoints in the official layout (spec §9): config.json,
 * `model-0000K-of-0000N.safetensors` shards and `model.safetensors.index.json`, holding exactly
 * checkpointTensors(config). Same (preset, overrides, seed) -> byte-identical files.
 */

export interface TinyOptions {
  preset?: string;
  seed?: number;
  /** HF config.json keys merged over the preset (nested objects merged one level deep). */
  overrides?: HfConfig;
  /** Shard size; defaults to the preset's. */
  shardBytes?: number;
  /** Write the tokenizer files; defaults to true when the vocabulary is the real V4 one. */
  tokenizer?: boolean;
}

export interface TinyResult {
  dir: string;
  config: ModelConfig;
  shards: string[];
  tensorCount: number;
  /** Tensor bytes (without headers). */
  tensorBytes: number;
  /** Bytes of every file written (shards with headers, index, config, tokenizer). */
  fileBytes: number;
  tokenizerWritten: boolean;
}

export class TinyPresetError extends Error {
  constructor(readonly preset: string) {
    super(`unknown preset "${preset}"; presets: ${Object.keys(TINY_PRESETS).join(", ")}`);
    this.name = "TinyPresetError";
  }
}

/** The config.json object a preset plus overrides gives (validated by parseConfig on use). */
export function tinyHfConfig(preset: string = DEFAULT_PRESET, overrides: HfConfig = {}): HfConfig {
  const p = TINY_PRESETS[preset];
  if (!p) throw new TinyPresetError(preset);
  const out: HfConfig = structuredClone(p.config);
  for (const [key, value] of Object.entries(overrides)) {
    const base = out[key];
    out[key] = isPlainObject(base) && isPlainObject(value) ? { ...base, ...structuredClone(value) } : structuredClone(value);
  }
  return out;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

/**
 * Value distributions, close to those of the official golden checkpoint tiny-a: linears have
 * std ~ 1/sqrt(fan_in) so activations keep their scale through every block; norms ~1; mHC as
 * in the HF initialisation but with std 1/sqrt(hc_mult * dim) so its logits stay O(1) at any width.
 */
export function tinyRecipe(spec: TensorSpec, cfg: ModelConfig, byName: ReadonlyMap<string, TensorSpec>): Recipe {
  const n = spec.name;
  const invSqrt = (k: number) => 1 / Math.sqrt(k);
  switch (spec.role) {
    case "fp8-weight": return { kind: "fp8-codes" };
    case "fp4-weight": return { kind: "fp4-codes" };
    case "fp8-scale":
    case "fp4-scale": {
      const weight = byName.get(n.replace(/\.scale$/, ".weight"));
      if (!weight) throw new Error(`tiny: scale ${n} has no weight`);
      const fp4 = spec.role === "fp4-scale";
      const fanIn = weight.shape[1]! * (fp4 ? 2 : 1);
      return { kind: "scale", exponent: scaleExponent(fanIn, fp4 ? FP4_CODE_STD : FP8_CODE_STD) };
    }
    case "plain": break;
  }
  if (n === "embed.weight") return { kind: "normal", mean: 0, std: 1 };
  // An embedding of the previous token, like embed (golden README: markov_w1 N(0,1)).
  if (n.endsWith(".markov_head.markov_w1.weight")) return { kind: "normal", mean: 0, std: 1 };
  if (n === "head.weight") return { kind: "normal", mean: 0, std: 2 * invSqrt(cfg.dim) };
  if (n.endsWith("norm.weight")) return { kind: "normal", mean: 1, std: 0.1 };
  if (/hc_\w+_fn$/.test(n)) return { kind: "normal", mean: 0, std: invSqrt(spec.shape[1]!) };
  if (/hc_\w+_base$/.test(n)) return { kind: "normal", mean: 0, std: 0.5 };
  if (/hc_\w+_scale$/.test(n)) return { kind: "uniform", mean: 0.5, halfWidth: 0.25 };
  if (n.endsWith(".attn_sink")) return { kind: "normal", mean: 0, std: 0.5 };
  if (n.endsWith(".ape")) return { kind: "normal", mean: 0, std: 0.5 };
  if (n.endsWith("compressor.wgate.weight")) return { kind: "normal", mean: 0, std: 1.5 * invSqrt(cfg.dim) };
  if (n.endsWith(".gate.bias")) return { kind: "normal", mean: 0, std: 0.1 };
  if (n.endsWith(".gate.tid2eid")) return { kind: "tid2eid", experts: cfg.numRoutedExperts };
  // compressor wkv, indexer weights_proj, router gate and anything added to the schema later
  if (spec.shape.length === 2) return { kind: "normal", mean: 0, std: invSqrt(spec.shape[1]!) };
  if (spec.dtype === "BF16" || spec.dtype === "F32") return { kind: "normal", mean: 0, std: 0.1 };
  throw new Error(`tiny: no value recipe for ${n} (${spec.dtype})`);
}

const SHARD_FILE = /^model(-\d{5}-of-\d{5})?\.safetensors$/;

/** Generate a checkpoint into `dir`, tensor by tensor (memory stays at one 8 MiB chunk). */
export async function writeTinyCheckpoint(dir: string, options: TinyOptions = {}): Promise<TinyResult> {
  const presetName = options.preset ?? DEFAULT_PRESET;
  const preset = TINY_PRESETS[presetName];
  if (!preset) throw new TinyPresetError(presetName);
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`tiny: seed must be a non-negative integer, got ${seed}`);
  const raw = tinyHfConfig(presetName, options.overrides);
  const cfg = parseConfig(raw);

  mkdirSync(dir, { recursive: true });
  // config.json goes last and marks the directory complete, so clear it (and stale shards) first
  for (const f of ["config.json", INDEX_FILE]) rmSync(join(dir, f), { force: true });
  for (const f of readdirSync(dir)) if (SHARD_FILE.test(f)) rmSync(join(dir, f), { force: true });

  const specs = checkpointTensors(cfg);
  const byName = new Map(specs.map((s) => [s.name, s]));
  const sources: TensorSource[] = specs.map((spec) => {
    const recipe = tinyRecipe(spec, cfg, byName);
    return { name: spec.name, dtype: spec.dtype, shape: spec.shape, produce: (emit) => generateTensor(spec, recipe, seed, emit) };
  });
  const shards = writeShardedCheckpointStreaming(dir, sources, options.shardBytes ?? preset.shardBytes, { format: "pt" });

  // The real tokenizer only fits a model with the real vocabulary
  const tokenizerWritten = options.tokenizer ?? cfg.vocabSize === V4_VOCAB_SIZE;
  if (tokenizerWritten) await writeDefaultTokenizerFiles(dir);
  writeFileSync(join(dir, "config.json"), JSON.stringify(raw, null, 2) + "\n");

  const written = [...shards, INDEX_FILE, "config.json", ...(tokenizerWritten ? ["tokenizer.json", "tokenizer_config.json"] : [])];
  const fileBytes = written.reduce((a, f) => a + statSync(join(dir, f)).size, 0);
  const tensorBytes = specs.reduce((a, s) => a + elementCount(s.shape) * DTYPE_BYTES[s.dtype], 0);
  return { dir, config: cfg, shards, tensorCount: specs.length, tensorBytes, fileBytes, tokenizerWritten };
}
