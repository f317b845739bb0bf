import assert from "node:assert/strict";
import { test } from "node:test";
import { draftVocabRanges, resolveSpeculation } from "../../src/engine/drafter.js";
import { Engine } from "../../src/engine/engine.js";
import { loadConfig } from "../../src/model/config.js";
import { checkpoint } from "./helpers.js";

test("a draft vocabulary is the n lowest ids and the added tokens above them, as coalesced ranges", () => {
  const added = new Set([100, 101, 102, 5, 150, 151, 199]);
  assert.deepEqual(draftVocabRanges(200, 50, (id) => added.has(id)), [[0, 50], [100, 103], [150, 152], [199, 200]]);
  assert.deepEqual(draftVocabRanges(200, 50, null), [[0, 50]]);
  assert.deepEqual(draftVocabRanges(200, 500, (id) => added.has(id)), [[0, 200]]);
});

test("speculative.draftVocab must be a positive integer; one the size of the vocabulary or more restricts nothing", async () => {
  const cfg = loadConfig(await checkpoint("micro-0731"));
  for (const bad of [0, -3, 2.5, Number.NaN]) {
    assert.throws(() => resolveSpeculation(cfg, { mode: "dspark", draftVocab: bad }), /speculative\.draftVocab: .* is not a positive integer/);
  }
  assert.equal(resolveSpeculation(cfg, { mode: "dspark", draftVocab: 300 }).draftVocab, 300);
  assert.equal(resolveSpeculation(cfg, { mode: "dspark", draftVocab: cfg.vocabSize }).draftVocab, undefined);
});

test("a draft vocabulary with speculation off is refused, saying why", async () => {
  const cfg = loadConfig(await checkpoint("micro-0731"));
  assert.throws(() => resolveSpeculation(cfg, { mode: "off", draftVocab: 300 }), /speculative\.draftVocab restricts what drafts propose, but speculative decoding is off; drop it or turn speculation on/);
});

test("the engine's model info says how many ids drafts range over, and nothing without a draft vocabulary", async () => {
  const dir = await checkpoint("micro-0731");
  for (const [speculative, want] of [[{ mode: "dspark" as const, draftVocab: 300 }, 300], [{ mode: "dspark" as const }, undefined], [{ mode: "off" as const }, undefined]] as const) {
    const engine = await Engine.load(dir, { prefixCache: { enabled: false }, speculative });
    try {
      assert.equal(engine.model.draftVocab, want, JSON.stringify(speculative));
    } finally {
      await engine.dispose();
    }
  }
});
