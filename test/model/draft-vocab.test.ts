import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { Vec } from "../../src/kernels/backend.js";
import { RefBackend } from "../../src/kernels/ref/index.js";
import { Dsv4Model } from "../../src/model/transformer.js";
import { writeTinyCheckpoint } from "../../src/tiny/tiny.js";

// A draft vocabulary (Dsv4Model.setDraftVocab): drafts read only its rows of the head (and of
// DSpark's Markov bias), so their logits are the full draft's on its ids, bit for bit, and
// -Infinity elsewhere; the main model's logits do not change.

const root = mkdtempSync(join(tmpdir(), "dsv4-draft-vocab-"));
after(() => rmSync(root, { recursive: true, force: true }));

const tokensFor = (vocab: number, n: number) => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % vocab);
const inRanges = (ranges: ReadonlyArray<readonly [number, number]>, id: number) => ranges.some(([a, b]) => a <= id && id < b);

/** Row `row` equals `full` on the ranges and is -Infinity elsewhere. */
function restricted(row: Vec, full: Vec, ranges: ReadonlyArray<readonly [number, number]>, what: string): void {
  assert.equal(row.length, full.length, what);
  for (let v = 0; v < full.length; v++) {
    if (inRanges(ranges, v)) assert.equal(row[v], full[v], `${what}: id ${v}`);
    else assert.equal(row[v], -Infinity, `${what}: id ${v} is outside the draft vocabulary`);
  }
}

async function load(preset: string): Promise<Dsv4Model> {
  const dir = join(root, preset);
  await writeTinyCheckpoint(dir, { preset, seed: 3 });
  const model = Dsv4Model.load(dir, { backend: new RefBackend() });
  after(() => model.close());
  return model;
}

for (const preset of ["micro-0731", "tiny-0731"]) {
  describe(`a draft vocabulary with DSpark (${preset})`, async () => {
    const model = await load(preset);
    const V = model.cfg.vocabSize;
    // Two ranges: the low ids and a slice at the top (as the added tokens are on V4).
    const ranges: Array<[number, number]> = [[0, Math.floor(V / 3)], [V - 40, V]];
    const seq = model.newSequence();
    const ids = tokensFor(V, 20);
    const [pre] = model.forward([{ seq, tokens: ids, dspark: true, mainXLast: 1 }]);
    const anchor = ids[5]!;
    model.setDraftVocab(null);
    const full = model.dsparkDraft([{ seq, mainX: pre!.mainX[0]!, anchor }])[0]!;
    model.setDraftVocab(ranges);
    after(() => model.setDraftVocab(null));

    test("its size counts the ranges' ids", () => {
      assert.equal(model.draftVocabSize, Math.floor(V / 3) + 40);
    });

    test("with the full draft's tokens chosen, every row is the full draft's logits on its ids and -Infinity elsewhere, confidence unchanged", () => {
      const d = model.dsparkDraft([{ seq, mainX: pre!.mainX[0]!, anchor, choose: (i) => full.tokens[i]! }])[0]!;
      d.logits.forEach((row, i) => restricted(row, full.logits[i]!, ranges, `draft row ${i}`));
      assert.deepEqual(d.confidence, full.confidence);
    });

    test("greedy drafts propose only its ids: each the best of the row among them", () => {
      const d = model.dsparkDraft([{ seq, mainX: pre!.mainX[0]!, anchor }])[0]!;
      d.tokens.forEach((t, i) => {
        assert.ok(inRanges(ranges, t), `draft ${i} proposed ${t}`);
        const row = d.logits[i]!;
        for (let v = 0; v < V; v++) assert.ok(row[v]! <= row[t]!, `draft ${i}: id ${v} scores above the proposal`);
      });
    });

    test("the main model's logits do not change", () => {
      const a = model.newSequence();
      const b = model.newSequence();
      model.setDraftVocab(null);
      const plain = model.forward([{ seq: a, tokens: ids, logits: "all" }])[0]!;
      model.setDraftVocab(ranges);
      const restrictedRun = model.forward([{ seq: b, tokens: ids, logits: "all" }])[0]!;
      plain.logits.forEach((row, i) => assert.deepEqual(restrictedRun.logits[i], row, `position ${i}`));
    });
  });
}

describe("a draft vocabulary with the April MTP block (micro)", async () => {
  const model = await load("micro");
  const V = model.cfg.vocabSize;
  const ranges: Array<[number, number]> = [[10, 300], [900, 1000]];
  const ids = tokensFor(V, 12);
  const mtpLogits = () => {
    const seq = model.newSequence();
    const out = model.forward([{ seq, tokens: ids }], { logits: "none", residual: "all" })[0]!;
    return model.mtpForward([{ seq, hidden: out.residual[0]!, token: ids[1]! }])[0]!.logits!;
  };
  const full = mtpLogits();
  model.setDraftVocab(ranges);
  after(() => model.setDraftVocab(null));

  test("MTP draft logits are the full ones on its ids and -Infinity elsewhere", () => {
    restricted(mtpLogits(), full, ranges, "MTP row");
  });
});

describe("setDraftVocab", async () => {
  const model = await load("micro-0731");
  const V = model.cfg.vocabSize;
  after(() => model.setDraftVocab(null));

  test("ranges covering the whole vocabulary restrict nothing", () => {
    model.setDraftVocab([[0, 100], [100, V]]);
    assert.equal(model.draftVocabSize, V);
  });

  test("overlapping, unsorted, empty or out-of-vocabulary ranges are refused, naming the range", () => {
    for (const bad of [[[0, 10], [5, 20]], [[20, 30], [0, 10]], [[3, 3]], [[0, V + 1]], [[-1, 4]], [[0.5, 4]]] as Array<Array<[number, number]>>) {
      assert.throws(() => model.setDraftVocab(bad), /draft vocabulary: range \d+ \[/, JSON.stringify(bad));
    }
  });
});
