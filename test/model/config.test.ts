import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { Checkpoint } from "../../src/formats/safetensors.js";
import { ConfigError, loadConfig, parseConfig } from "../../src/model/config.js";
import { checkpointTensors } from "../../src/model/schema.js";
import { testDataDir } from "../helpers/paths.js";

const goldenDir = resolve(testDataDir, "golden/tiny-a");
const goldenRaw = (): Record<string, unknown> => JSON.parse(readFileSync(join(goldenDir, "config.json"), "utf8")) as Record<string, unknown>;

const tmp = mkdtempSync(join(tmpdir(), "dsv4-cfg-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Assert that parsing `raw` fails with a ConfigError naming `key`. */
function rejects(raw: Record<string, unknown>, key: string, pattern?: RegExp): void {
  assert.throws(() => parseConfig(raw), (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.key, key);
    assert.ok(err.message.includes(`"${key.replace(/\[.*$/, "")}`), `message should name "${key}": ${err.message}`);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

function without(key: string): Record<string, unknown> {
  const raw = goldenRaw();
  delete raw[key];
  return raw;
}

describe("golden tiny-a config.json", () => {
  const cfg = loadConfig(goldenDir);

  it("reads the dimensions", () => {
    assert.equal(cfg.vocabSize, 1024);
    assert.equal(cfg.dim, 256);
    assert.equal(cfg.numLayers, 6);
    assert.equal(cfg.numMtpLayers, 1);
    assert.equal(cfg.numHeads, 4);
    assert.equal(cfg.headDim, 128);
    assert.equal(cfg.ropeDim, 64);
    assert.equal(cfg.qLoraRank, 128);
    assert.equal(cfg.oGroups, 2);
    assert.equal(cfg.oLoraRank, 128);
    assert.equal(cfg.window, 16);
    assert.equal(cfg.indexHeads, 4);
    assert.equal(cfg.indexHeadDim, 64);
    assert.equal(cfg.indexTopk, 8);
    assert.equal(cfg.numRoutedExperts, 16);
    assert.equal(cfg.expertsPerToken, 4);
    assert.equal(cfg.moeInterDim, 128);
    assert.equal(cfg.numHashLayers, 3);
    assert.equal(cfg.expertDtype, "fp4");
    assert.equal(cfg.scoringFunc, "sqrtsoftplus");
    assert.equal(cfg.routedScale, 1.5);
    assert.equal(cfg.swigluLimit, 10);
    assert.equal(cfg.hcMult, 4);
    assert.equal(cfg.hcSinkhornIters, 20);
    assert.equal(cfg.hcEps, 1e-6);
    assert.equal(cfg.normEps, 1e-6);
    assert.equal(cfg.ropeTheta, 10000);
    assert.equal(cfg.compressRopeTheta, 160000);
    assert.deepEqual(cfg.yarn, { factor: 4, originalMaxPositions: 64, betaFast: 32, betaSlow: 1 });
    assert.equal(cfg.maxPositions, 256);
    assert.equal(cfg.bosTokenId, 0);
    assert.equal(cfg.eosTokenId, 1);
  });

  it("derives the layer schedule: hash layers 0-2, CSA 2 and 4, HCA 3 and 5, MTP sliding-window", () => {
    assert.deepEqual(cfg.layers.map((l) => l.kind), ["swa", "swa", "csa", "hca", "csa", "hca"]);
    assert.deepEqual(cfg.layers.map((l) => l.compressRatio), [0, 0, 4, 16, 4, 16]);
    assert.deepEqual(cfg.layers.map((l) => l.hashRouted), [true, true, true, false, false, false]);
    assert.deepEqual(cfg.layers.map((l) => l.prefix), [0, 1, 2, 3, 4, 5].map((i) => `layers.${i}`));
    assert.deepEqual(cfg.mtpLayers, [{ id: 6, prefix: "mtp.0", compressRatio: 0, kind: "swa", hashRouted: false }]);
  });

  it("the schema matches the golden checkpoint exactly (names, dtypes, shapes)", () => {
    const ckpt = Checkpoint.open(goldenDir);
    try {
      const specs = checkpointTensors(cfg);
      assert.deepEqual(specs.map((s) => s.name).sort(), ckpt.names().sort());
      for (const s of specs) {
        const info = ckpt.info(s.name);
        assert.equal(info.dtype, s.dtype, s.name);
        assert.deepEqual(info.shape, s.shape, s.name);
      }
    } finally {
      ckpt.close();
    }
  });

  it("nothing is Flash-specific: ratio 128 is HCA and ratio 4 CSA wherever they sit", () => {
    const raw = { ...goldenRaw(), compress_ratios: [128, 128, 4, 128, 4, 0, 4], num_hash_layers: 0 };
    const c = parseConfig(raw);
    assert.deepEqual(c.layers.map((l) => l.kind), ["hca", "hca", "csa", "hca", "csa", "swa"]);
    assert.equal(c.mtpLayers[0]!.kind, "csa");
    assert.ok(c.layers.every((l) => !l.hashRouted));
  });
});

describe("config errors name the key", () => {
  for (const key of ["hidden_size", "num_hidden_layers", "num_attention_heads", "head_dim", "qk_rope_head_dim", "q_lora_rank",
    "o_groups", "o_lora_rank", "sliding_window", "index_n_heads", "index_head_dim", "index_topk", "n_routed_experts",
    "num_experts_per_tok", "moe_intermediate_size", "vocab_size", "compress_ratios", "compress_rope_theta",
    "hc_mult", "hc_sinkhorn_iters", "hc_eps", "rms_norm_eps", "max_position_embeddings"]) {
    it(`missing ${key}`, () => rejects(without(key), key, /missing key/));
  }

  it("invalid values", () => {
    rejects({ ...goldenRaw(), hidden_size: "256" }, "hidden_size", /integer/);
    rejects({ ...goldenRaw(), hidden_size: 0 }, "hidden_size", /integer >= 1/);
    rejects({ ...goldenRaw(), num_attention_heads: 2.5 }, "num_attention_heads");
    rejects({ ...goldenRaw(), rms_norm_eps: -1 }, "rms_norm_eps", /positive number/);
    rejects({ ...goldenRaw(), num_key_value_heads: 2 }, "num_key_value_heads", /must be 1/);
    rejects({ ...goldenRaw(), qk_rope_head_dim: 63 }, "qk_rope_head_dim", /even/);
    rejects({ ...goldenRaw(), head_dim: 160 }, "head_dim", /multiple of 64/);
    rejects({ ...goldenRaw(), o_groups: 3 }, "o_groups");
    rejects({ ...goldenRaw(), index_head_dim: 96 }, "index_head_dim", /power of two/);
    rejects({ ...goldenRaw(), num_experts_per_tok: 17 }, "num_experts_per_tok", /exceeds n_routed_experts/);
    rejects({ ...goldenRaw(), num_hash_layers: 7 }, "num_hash_layers", /exceeds num_hidden_layers/);
    rejects({ ...goldenRaw(), n_shared_experts: 2 }, "n_shared_experts");
    rejects({ ...goldenRaw(), scoring_func: "relu" }, "scoring_func");
    rejects({ ...goldenRaw(), expert_dtype: "fp16" }, "expert_dtype");
    rejects({ ...goldenRaw(), model_type: "deepseek_v3" }, "model_type");
  });

  it("invalid compress_ratios", () => {
    rejects({ ...goldenRaw(), compress_ratios: [0, 0, 4] }, "compress_ratios", /has 3 entries/);
    rejects({ ...goldenRaw(), compress_ratios: 4 }, "compress_ratios", /missing key|array/);
    rejects({ ...goldenRaw(), compress_ratios: [0, 1, 4, 16, 4, 16, 0] }, "compress_ratios", /compress_ratios\[1\]/);
    rejects({ ...goldenRaw(), compress_ratios: [0, 0, 4, 16, 4, 16, "0"] }, "compress_ratios", /compress_ratios\[6\]/);
  });

  it("invalid nested objects name the nested key", () => {
    const raw = goldenRaw();
    rejects({ ...raw, quantization_config: { ...(raw.quantization_config as object), weight_block_size: [64, 64] } }, "quantization_config.weight_block_size");
    rejects({ ...raw, quantization_config: { ...(raw.quantization_config as object), fmt: "e5m2" } }, "quantization_config.fmt");
    rejects({ ...raw, rope_scaling: { ...(raw.rope_scaling as object), type: "linear" } }, "rope_scaling.type");
    rejects({ ...raw, rope_scaling: { ...(raw.rope_scaling as object), factor: -4 } }, "rope_scaling.factor");
    rejects({ ...raw, rope_scaling: { ...(raw.rope_scaling as object), original_max_position_embeddings: 0 } }, "rope_scaling.original_max_position_embeddings");
  });

  it("loadConfig names the file and the key", () => {
    const dir = mkdtempSync(join(tmp, "m-"));
    writeFileSync(join(dir, "config.json"), JSON.stringify(without("vocab_size")));
    assert.throws(() => loadConfig(dir), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.key, "vocab_size");
      assert.ok(err.message.includes(join(dir, "config.json")) && err.message.includes('"vocab_size"'), err.message);
      return true;
    });
    writeFileSync(join(dir, "config.json"), "{ not json");
    assert.throws(() => loadConfig(dir), (err: Error) => err instanceof ConfigError && err.message.includes(join(dir, "config.json")) && /not valid JSON/.test(err.message));
    assert.throws(() => loadConfig(join(dir, "absent")), (err: Error) => err instanceof ConfigError && /cannot read/.test(err.message));
  });
});
