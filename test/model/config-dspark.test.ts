import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import { ConfigError, loadConfig, parseConfig } from "../../src/model/config.js";
import { checkpointTensors } from "../../src/model/schema.js";
import { tinyHfConfig } from "../../src/tiny/tiny.js";
import { testDataDir } from "../helpers/paths.js";

const dsparkDir = resolve(testDataDir, "golden/tiny-dspark-a");
const dsparkRaw = (): Record<string, unknown> => JSON.parse(readFileSync(join(dsparkDir, "config.json"), "utf8")) as Record<string, unknown>;

function rejects(raw: Record<string, unknown>, key: string, pattern: RegExp): void {
  assert.throws(() => parseConfig(raw), (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.key, key);
    assert.match(err.message, pattern);
    return true;
  });
}

describe("0731 (DSpark) config.json", () => {
  it("takes the stage count from compress_ratios, not num_nextn_predict_layers (1 in the 0731 file)", () => {
    const cfg = loadConfig(dsparkDir);
    assert.equal(cfg.raw.num_nextn_predict_layers, 1);
    assert.equal(cfg.drafter, "dspark");
    assert.deepEqual(cfg.dspark, { stages: 3, blockSize: 5, noiseTokenId: 1000, targetLayerIds: [1, 3, 5], markovRank: 32 });
    assert.deepEqual(cfg.mtpLayers.map((l) => [l.id, l.prefix, l.kind, l.hashRouted]), [[6, "mtp.0", "swa", false], [7, "mtp.1", "swa", false], [8, "mtp.2", "swa", false]]);
  });

  it("April and drafter-less configs keep their layouts", () => {
    const april = parseConfig(tinyHfConfig("micro"));
    assert.equal(april.drafter, "mtp");
    assert.equal(april.dspark, null);
    const none = parseConfig(tinyHfConfig("micro", { num_nextn_predict_layers: 0, compress_ratios: [0, 4, 8] }));
    assert.equal(none.drafter, "none");
    assert.equal(none.mtpLayers.length, 0);
  });

  it("refuses inconsistent DSpark keys, naming the key", () => {
    const with_ = (patch: Record<string, unknown>) => ({ ...dsparkRaw(), ...patch });
    rejects(with_({ dspark_target_layer_ids: [3, 1, 5] }), "dspark_target_layer_ids", /ascending main-layer ids in \[0, 6\)/);
    rejects(with_({ dspark_target_layer_ids: [1, 6] }), "dspark_target_layer_ids", /ascending/);
    rejects(with_({ dspark_target_layer_ids: [] }), "dspark_target_layer_ids", /non-empty/);
    rejects(with_({ dspark_noise_token_id: 1024 }), "dspark_noise_token_id", /< vocab_size \(1024\)/);
    rejects(with_({ dspark_block_size: 0 }), "dspark_block_size", />= 1/);
    rejects(with_({ dspark_markov_rank: 0 }), "dspark_markov_rank", />= 1/);
    rejects(with_({ compress_ratios: [0, 0, 4, 16, 4, 16, 0, 4, 0] }), "compress_ratios", /entry 7 \(DSpark stage 1\) must be 0/);
    rejects(with_({ compress_ratios: [0, 0, 4, 16, 4, 16] }), "compress_ratios", /at least one stage/);
    const raw = dsparkRaw();
    delete raw.dspark_markov_rank;
    rejects(raw, "dspark_markov_rank", /missing key "dspark_markov_rank" \(the other dspark_\* keys/);
  });

  it("the schema adds main_proj/main_norm to the first stage and the draft head to the last", () => {
    const names = new Set(checkpointTensors(loadConfig(dsparkDir)).map((t) => t.name));
    for (const n of ["mtp.0.main_proj.weight", "mtp.0.main_proj.scale", "mtp.0.main_norm.weight", "mtp.2.norm.weight", "mtp.2.hc_head_fn", "mtp.2.markov_head.markov_w1.weight", "mtp.2.markov_head.markov_w2.weight", "mtp.2.confidence_head.proj.weight"]) {
      assert.ok(names.has(n), n);
    }
    for (const n of ["mtp.0.e_proj.weight", "mtp.0.enorm.weight", "mtp.0.norm.weight", "mtp.1.main_proj.weight", "mtp.1.hc_head_fn", "mtp.0.markov_head.markov_w1.weight"]) assert.ok(!names.has(n), n);
  });

  it("at the real dimensions the stages hold 1,568 / 1,565 / 1,572 tensors (the real 0731 index, spec §8b)", () => {
    const tensors = checkpointTensors(parseConfig(tinyHfConfig("flash-slice-0731")));
    const count = (k: number) => tensors.filter((t) => t.name.startsWith(`mtp.${k}.`)).length;
    assert.deepEqual([count(0), count(1), count(2)], [1568, 1565, 1572]);
  });
});
