import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeE2M1Packed, decodeToFloat64, DTYPE_BYTES, e8m0ToNumber } from "../../src/formats/dtypes.js";
import { Checkpoint, elementCount, INDEX_FILE } from "../../src/formats/safetensors.js";
import { loadConfig, parseConfig } from "../../src/model/config.js";
import { checkpointTensors } from "../../src/model/schema.js";
import { TINY_PRESETS, TinyPresetError, tinyHfConfig, writeTinyCheckpoint, type TinyResult } from "../../src/tiny/tiny.js";
import { repoRoot, testDataDir } from "../helpers/paths.js";

const cli = join(repoRoot, "dist/src/cli/main.js");

const tmp = mkdtempSync(join(tmpdir(), "dsv4-tiny-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function sameFiles(a: string, b: string): boolean {
  const fa = readdirSync(a).sort();
  const fb = readdirSync(b).sort();
  if (JSON.stringify(fa) !== JSON.stringify(fb)) return false;
  return fa.every((f) => readFileSync(join(a, f)).equals(readFileSync(join(b, f))));
}

/** The written checkpoint holds exactly the schema of its own config.json, and sane values. */
function checkWritten(dir: string, result: TinyResult): void {
  const cfg = loadConfig(dir);
  const specs = checkpointTensors(cfg);
  const ckpt = Checkpoint.open(dir);
  try {
    assert.deepEqual(ckpt.names().sort(), specs.map((s) => s.name).sort());
    assert.equal(result.tensorCount, specs.length);
    assert.equal(ckpt.totalBytes(), result.tensorBytes);
    for (const s of specs) {
      const info = ckpt.info(s.name);
      assert.equal(info.dtype, s.dtype, s.name);
      assert.deepEqual(info.shape, s.shape, s.name);
      if (elementCount(s.shape) * DTYPE_BYTES[s.dtype] > 4 << 20) continue; // embed/head: checked below by sampling
      const bytes = ckpt.read(s.name);
      const values = s.role === "fp4-weight" ? decodeE2M1Packed(bytes) : decodeToFloat64(s.dtype, bytes);
      assert.ok(values.every(Number.isFinite), `${s.name} has non-finite values`);
      if (s.role === "fp8-scale" || s.role === "fp4-scale") {
        // valid E8M0 (255 = NaN excluded) and in a plausible weight-scale range
        assert.ok(bytes.every((b) => b !== 255 && e8m0ToNumber(b) > 2 ** -30 && e8m0ToNumber(b) < 1), s.name);
      }
      if (s.name.endsWith(".tid2eid")) {
        const k = s.shape[1]!;
        for (let r = 0; r < s.shape[0]!; r++) {
          const row = values.subarray(r * k, r * k + k);
          assert.equal(new Set(row).size, k, `${s.name} row ${r} repeats an expert`);
          assert.ok(row.every((e) => Number.isInteger(e) && e >= 0 && e < cfg.numRoutedExperts), `${s.name} row ${r}`);
        }
      }
    }
    const embedRows = decodeToFloat64("BF16", ckpt.readRange("embed.weight", 0, 64 * cfg.dim * 2));
    const std = Math.sqrt(embedRows.reduce((a, v) => a + v * v, 0) / embedRows.length);
    assert.ok(std > 0.8 && std < 1.2, `embedding std ${std}`);
  } finally {
    ckpt.close();
  }
}

describe("writeTinyCheckpoint", () => {
  let micro: TinyResult;
  const microDir = join(tmp, "micro-7");
  before(async () => {
    micro = await writeTinyCheckpoint(microDir, { preset: "micro", seed: 7 });
  });

  it("writes the official layout: config.json, sharded safetensors and the index", () => {
    const files = readdirSync(microDir).sort();
    assert.ok(files.includes("config.json") && files.includes(INDEX_FILE));
    const shards = files.filter((f) => f.endsWith(".safetensors"));
    assert.ok(shards.length >= 3, `micro should be sharded, got ${shards.length} shard(s)`);
    assert.deepEqual(shards, micro.shards);
    shards.forEach((f, i) => assert.equal(f, `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`));
    const index = JSON.parse(readFileSync(join(microDir, INDEX_FILE), "utf8")) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    assert.equal(index.metadata.total_size, micro.tensorBytes);
    assert.equal(Object.keys(index.weight_map).length, micro.tensorCount);
    assert.equal(micro.tokenizerWritten, false); // vocab 1024 is not the real tokenizer's
  });

  it("config.json carries every HF key of the official config", () => {
    const golden = JSON.parse(readFileSync(resolve(testDataDir, "golden/tiny-a/config.json"), "utf8")) as Record<string, unknown>;
    const written = JSON.parse(readFileSync(join(microDir, "config.json"), "utf8")) as Record<string, unknown>;
    // The official key order, and the values `--preset micro` documents, written out here
    // rather than read back from the preset object the file was generated from.
    assert.deepEqual(Object.keys(written), Object.keys(golden));
    assert.deepEqual(written.quantization_config, golden.quantization_config);
    const micro = {
      vocab_size: 1024, hidden_size: 128, compress_ratios: [0, 4, 8, 0], num_hidden_layers: 3, num_nextn_predict_layers: 1,
      num_hash_layers: 1, num_attention_heads: 4, head_dim: 96, qk_rope_head_dim: 32, q_lora_rank: 128, o_groups: 1,
      o_lora_rank: 128, n_routed_experts: 4, num_experts_per_tok: 2, moe_intermediate_size: 128, expert_dtype: "fp4",
      index_n_heads: 2, index_head_dim: 64, index_topk: 2, sliding_window: 8, max_position_embeddings: 256,
      rope_scaling: { beta_fast: 32, beta_slow: 1, factor: 2, original_max_position_embeddings: 128, type: "yarn" },
    };
    for (const [key, value] of Object.entries(micro)) assert.deepEqual(written[key], value, key);
    // Keys the preset does not set carry the official config's values.
    for (const key of ["hc_mult", "hc_sinkhorn_iters", "scoring_func", "topk_method", "rms_norm_eps", "num_key_value_heads"]) {
      assert.deepEqual(written[key], golden[key], key);
    }
  });

  it("holds exactly checkpointTensors(loadConfig(dir)) with finite values and valid scales", () => {
    checkWritten(microDir, micro);
  });

  it("same seed gives byte-identical files, another seed different tensors", async () => {
    const again = join(tmp, "micro-7b");
    await writeTinyCheckpoint(again, { preset: "micro", seed: 7 });
    assert.ok(sameFiles(microDir, again));
    const other = join(tmp, "micro-8");
    await writeTinyCheckpoint(other, { preset: "micro", seed: 8 });
    assert.ok(readFileSync(join(microDir, "config.json")).equals(readFileSync(join(other, "config.json"))));
    for (const shard of micro.shards) assert.ok(!readFileSync(join(microDir, shard)).equals(readFileSync(join(other, shard))), shard);
    const a = Checkpoint.open(microDir);
    const b = Checkpoint.open(other);
    try {
      for (const name of a.names()) {
        if (/\.(scale|hc_\w+_scale)$/.test(name) || name.endsWith("_scale")) continue; // 1-element and few-value tensors may coincide
        assert.ok(!Buffer.from(a.read(name)).equals(Buffer.from(b.read(name))), `${name} identical across seeds`);
      }
    } finally {
      a.close();
      b.close();
    }
  });

  it("overwrites a previous checkpoint, removing its stale shards", async () => {
    const dir = join(tmp, "reuse");
    await writeTinyCheckpoint(dir, { preset: "small-nohash", seed: 1 });
    const r = await writeTinyCheckpoint(dir, { preset: "micro", seed: 7 });
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".safetensors")).sort(), r.shards);
    assert.ok(sameFiles(dir, microDir));
  });

  for (const preset of ["small-fp8experts", "small-nohash", "micro-0731"]) {
    it(`preset ${preset} matches its schema`, async () => {
      const dir = join(tmp, preset);
      checkWritten(dir, await writeTinyCheckpoint(dir, { preset, seed: 3 }));
    });
  }

  it("preset tiny (the embedded default) has the real vocabulary and the tokenizer files", async () => {
    const dir = join(tmp, "tiny");
    const r = await writeTinyCheckpoint(dir);
    assert.equal(r.config.vocabSize, 129280);
    assert.deepEqual(r.config.layers.map((l) => l.kind), ["swa", "csa", "hca", "csa"]);
    assert.equal(r.config.mtpLayers.length, 1);
    assert.ok(r.fileBytes < 90e6, `tiny is ${r.fileBytes} bytes`);
    assert.ok(r.tokenizerWritten && existsSync(join(dir, "tokenizer.json")) && existsSync(join(dir, "tokenizer_config.json")));
    checkWritten(dir, r);
  });

  it("preset tiny-0731 has the real vocabulary, the tokenizer files and 3 DSpark stages under the official names", async () => {
    const dir = join(tmp, "tiny-0731");
    const r = await writeTinyCheckpoint(dir, { preset: "tiny-0731" });
    assert.equal(r.config.vocabSize, 129280);
    assert.equal(r.config.drafter, "dspark");
    assert.equal(r.config.raw.num_nextn_predict_layers, 1);
    assert.deepEqual(r.config.dspark, { stages: 3, blockSize: 5, noiseTokenId: 128799, targetLayerIds: [1, 2, 3], markovRank: 32 });
    assert.ok(r.fileBytes < 110e6, `tiny-0731 is ${r.fileBytes} bytes`);
    assert.ok(r.tokenizerWritten && existsSync(join(dir, "tokenizer.json")));
    const ckpt = Checkpoint.open(dir);
    try {
      assert.equal(ckpt.info("mtp.0.main_proj.weight").dtype, "F8_E4M3");
      assert.equal(ckpt.info("mtp.2.markov_head.markov_w1.weight").dtype, "BF16");
      assert.ok(!ckpt.has("mtp.0.e_proj.weight"));
    } finally {
      ckpt.close();
    }
    checkWritten(dir, r);
  });

  it("overrides merge into the preset, nested objects one level deep", async () => {
    const dir = join(tmp, "override");
    const r = await writeTinyCheckpoint(dir, {
      preset: "micro",
      seed: 2,
      overrides: { num_hidden_layers: 2, num_nextn_predict_layers: 0, compress_ratios: [4, 128], expert_dtype: "fp8", num_hash_layers: 0, rope_scaling: { factor: 8 } },
      shardBytes: 1 << 20,
    });
    assert.deepEqual(r.config.layers.map((l) => l.kind), ["csa", "hca"]);
    assert.equal(r.config.mtpLayers.length, 0);
    assert.equal(r.config.expertDtype, "fp8");
    assert.deepEqual(r.config.yarn, { factor: 8, originalMaxPositions: 128, betaFast: 32, betaSlow: 1 });
    checkWritten(dir, r);
  });

  it("FP8 weights dequantise to about 1/sqrt(fan_in)", () => {
    const ckpt = Checkpoint.open(microDir);
    try {
      for (const name of ["layers.1.attn.wq_b", "layers.2.ffn.shared_experts.w2", "mtp.0.attn.wo_a"]) {
        const info = ckpt.info(`${name}.weight`);
        const [rows, cols] = info.shape as [number, number];
        const w = decodeToFloat64("F8_E4M3", ckpt.read(`${name}.weight`));
        const s = decodeToFloat64("F8_E8M0", ckpt.read(`${name}.scale`));
        const sBlocks = Math.ceil(cols / 128);
        let sum = 0;
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) sum += (w[r * cols + c]! * s[Math.floor(r / 128) * sBlocks + Math.floor(c / 128)]!) ** 2;
        const ratio = Math.sqrt(sum / (rows * cols)) * Math.sqrt(cols);
        assert.ok(ratio > 0.4 && ratio < 2.5, `${name}: std * sqrt(fan_in) = ${ratio}`);
      }
    } finally {
      ckpt.close();
    }
  });

  it("rejects unknown presets and bad seeds", async () => {
    await assert.rejects(writeTinyCheckpoint(join(tmp, "x"), { preset: "huge" }), TinyPresetError);
    await assert.rejects(writeTinyCheckpoint(join(tmp, "x"), { preset: "micro", seed: -1 }), RangeError);
    assert.throws(() => tinyHfConfig("huge"), /unknown preset "huge"; presets: tiny, micro/);
  });
});

describe("presets", () => {
  it("every preset is a valid config; flash-slice has the real Flash dimensions", () => {
    for (const [name, p] of Object.entries(TINY_PRESETS)) {
      const cfg = parseConfig(p.config);
      const kinds = new Set([...cfg.layers, ...cfg.mtpLayers].map((l) => l.kind));
      assert.ok(kinds.has("csa") && kinds.has("hca"), `${name} covers CSA and HCA`);
    }
    const f = parseConfig(TINY_PRESETS["flash-slice"]!.config);
    assert.deepEqual(
      [f.dim, f.numHeads, f.headDim, f.ropeDim, f.qLoraRank, f.oGroups, f.oLoraRank, f.numRoutedExperts, f.expertsPerToken, f.moeInterDim, f.indexHeads, f.indexHeadDim, f.indexTopk, f.window, f.vocabSize],
      [4096, 64, 512, 64, 1024, 8, 1024, 256, 6, 2048, 64, 128, 512, 128, 129280],
    );
    const bytes = checkpointTensors(f).reduce((a, s) => a + elementCount(s.shape) * DTYPE_BYTES[s.dtype], 0);
    assert.ok(bytes > 10e9 && bytes < 16e9, `flash-slice is ${bytes} bytes`);
    const f0731 = parseConfig(TINY_PRESETS["flash-slice-0731"]!.config);
    assert.deepEqual([f0731.dim, f0731.numHeads, f0731.headDim, f0731.numRoutedExperts, f0731.moeInterDim, f0731.window, f0731.vocabSize], [4096, 64, 512, 256, 2048, 128, 129280]);
    assert.deepEqual([f0731.numLayers, f0731.dspark?.stages, f0731.dspark?.blockSize, f0731.dspark?.markovRank, f0731.dspark?.noiseTokenId], [2, 3, 5, 256, 128799]);
  });
});

describe("dsv4 tiny (CLI)", () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, "tiny", ...args], { encoding: "utf8" });

  it("writes a checkpoint identical to the programmatic one", async () => {
    const dir = join(tmp, "cli-micro");
    const r = run("--out", dir, "--preset", "micro", "--seed", "7");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^wrote .*preset micro, seed 7, \d+ tensors/);
    const ref = join(tmp, "cli-ref");
    await writeTinyCheckpoint(ref, { preset: "micro", seed: 7 });
    assert.ok(sameFiles(dir, ref));
  });

  it("an unknown preset exits non-zero with a one-line message listing the presets", () => {
    const r = run("--out", join(tmp, "cli-bad"), "--preset", "gigantic");
    assert.notEqual(r.status, 0);
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /unknown preset "gigantic"; presets: tiny, micro, small-fp8experts, small-nohash, flash-slice/);
    assert.ok(!existsSync(join(tmp, "cli-bad")));
  });

  it("refuses to overwrite a checkpoint without --force, and validates --seed and --out", () => {
    const dir = join(tmp, "cli-existing");
    assert.equal(run("--out", dir, "--preset", "micro").status, 0);
    const again = run("--out", dir, "--preset", "micro");
    assert.equal(again.status, 2);
    assert.match(again.stderr, /already holds a checkpoint; pass --force/);
    assert.equal(run("--out", dir, "--preset", "micro", "--force").status, 0);
    const seed = run("--out", join(tmp, "cli-seed"), "--seed", "abc");
    assert.equal(seed.status, 2);
    assert.match(seed.stderr, /--seed must be a non-negative integer/);
    const noOut = run("--preset", "micro");
    assert.equal(noOut.status, 2);
    assert.match(noOut.stderr, /missing required option --out/);
  });

  it("--help lists the presets", () => {
    const r = run("--help");
    assert.equal(r.status, 0);
    for (const name of Object.keys(TINY_PRESETS)) assert.ok(r.stdout.includes(name), name);
    assert.match(r.stdout, /--seed N/);
  });

  it("leaves unrelated files in the output directory alone", () => {
    const dir = join(tmp, "cli-notes");
    rmSync(dir, { recursive: true, force: true });
    assert.equal(run("--out", dir, "--preset", "micro").status, 0);
    writeFileSync(join(dir, "NOTES.txt"), "mine");
    assert.equal(run("--out", dir, "--preset", "micro", "--force", "--seed", "5").status, 0);
    assert.equal(readFileSync(join(dir, "NOTES.txt"), "utf8"), "mine");
  });
});
