import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseConfig } from "../../src/model/config.js";
import { draftBytesRatio } from "../../src/model/draft-cost.js";
import { tinyHfConfig } from "../../src/tiny/tiny.js";

const cfgOf = (preset: string, overrides = {}) => parseConfig(tinyHfConfig(preset, overrides));

describe("draft cost prior (weight bytes of a draft over a plain step)", () => {
  test("a DSpark block at flash-slice's two layers costs more than a step, as bench spec measures (2,351 vs 1,533 MB)", () => {
    const r = draftBytesRatio(cfgOf("flash-slice-0731"))!;
    assert.ok(r > 1.3 && r < 2.2, `ratio ${r}`);
  });

  test("the same stages next to V4-Flash's 43 layers cost a fraction of a step", () => {
    const ratios = tinyHfConfig("flash-slice-0731").compress_ratios as number[];
    const full = cfgOf("flash-slice-0731", { num_hidden_layers: 43, compress_ratios: [...Array<number>(43).fill(4), ...ratios.slice(-3)], dspark_target_layer_ids: [40, 41, 42] });
    const r = draftBytesRatio(full)!;
    assert.ok(r > 0.1 && r < 0.5, `ratio ${r}`);
  });

  test("a draft vocabulary saves draft head and Markov bytes in proportion to the ids it leaves out", () => {
    for (const preset of ["flash-slice-0731", "flash-slice"]) {
      const cfg = cfgOf(preset);
      const r = (ids: number) => draftBytesRatio(cfg, ids)!;
      const V = cfg.vocabSize;
      assert.ok(r(V / 4) < r(V / 2) && r(V / 2) < r(V), preset);
      assert.ok(Math.abs((r(V) - r(V / 4)) / (r(V) - r(V / 2)) - 1.5) < 1e-9, preset);
    }
  });

  test("an April MTP draft is one block and the head; no drafter, no prior", () => {
    const mtp = draftBytesRatio(cfgOf("flash-slice"))!;
    assert.ok(mtp > 0.5 && mtp < 1, `ratio ${mtp}`);
    assert.equal(draftBytesRatio(cfgOf("flash-slice", { num_nextn_predict_layers: 0 })), null);
  });
});
