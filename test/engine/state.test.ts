import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { stateBytes } from "../../src/model/state-size.js";
import { createBackend } from "../../src/kernels/index.js";
import { Dsv4Model } from "../../src/model/transformer.js";
import { checkpoint, promptIds } from "./helpers.js";

describe("sequence state", async () => {
  const model = Dsv4Model.load(await checkpoint("micro"), { backend: createBackend() });
  const bpv = model.backend.alloc(1).BYTES_PER_ELEMENT;

  // Positions around window completions of ratio 4 (CSA) and 8 (HCA), and the window ring (8).
  test("dropTail undoes a rejected draft exactly, window completions included", () => {
    const ids = promptIds(40);
    for (const L of [1, 2, 3, 6, 7, 10, 14, 15, 16, 22, 23, 31]) {
      const a = model.newSequence();
      model.forward([{ seq: a, tokens: ids.slice(0, L) }], { logits: "none" });
      const undo = a.beginTail(2, 1);
      model.forward([{ seq: a, tokens: [ids[L]!, 999] }], { logits: "none" });
      a.endTail();
      a.dropTail(undo, 1);
      assert.equal(a.length, L + 1);
      const after = model.forward([{ seq: a, tokens: ids.slice(L + 1, L + 12) }], { logits: "all" })[0]!.logits;

      const b = model.newSequence();
      const ref = model.forward([{ seq: b, tokens: ids.slice(0, L + 12) }], { logits: "all" })[0]!.logits.slice(L + 1);
      assert.equal(after.length, ref.length);
      after.forEach((row, i) => assert.deepEqual(row, ref[i], `L=${L}, position ${L + 1 + i}`));
      assert.equal(a.bytes, b.bytes);
    }
  });

  test("dropTail refuses to drop more than was saved", () => {
    const a = model.newSequence();
    const undo = a.beginTail(3, 2);
    model.forward([{ seq: a, tokens: [5, 6, 7] }], { logits: "none" });
    a.endTail();
    assert.throws(() => a.dropTail(undo, 3), /cannot drop 3 tokens; the step saved 2/);
  });

  test("stateBytes matches what a sequence holds at each length", () => {
    const s = model.newSequence();
    const ids = promptIds(70);
    let at = 0;
    for (const n of [1, 3, 4, 9, 16, 37]) {
      model.forward([{ seq: s, tokens: ids.slice(at, at + n) }], { logits: "none" });
      at += n;
      assert.equal(stateBytes(model.cfg, at, bpv), s.bytes, `length ${at}`);
    }
  });

  test("on a DSpark checkpoint stateBytes counts the taps a sequence may owe its stages' rings", async () => {
    const dspark = Dsv4Model.load(await checkpoint("micro-0731"), { backend: createBackend() });
    try {
      const s = dspark.newSequence();
      dspark.forward([{ seq: s, tokens: promptIds(20), dspark: "defer" }], { logits: "none" });
      assert.equal(stateBytes(dspark.cfg, 20, bpv), s.bytes);
    } finally {
      dspark.close();
    }
  });
});

/**
 * A step of [pending, d_1..d_k] with the last `drop` tokens dropped, then more decoding, gives
 * bit-identical logits to plain decoding of the kept tokens: at every step start around the
 * compressor boundaries and the window wrap, for every dropped count.
 */
function checkMultiTokenRollback(model: Dsv4Model, starts: readonly number[], ks: readonly number[], vocab: number): void {
  // A DSpark checkpoint's main forward also writes the stages' rings; the drafts read them.
  const dspark = model.cfg.drafter === "dspark";
  const ids = promptIds(Math.max(...starts) + 24, 5, vocab);
  const ref = model.forward([{ seq: model.newSequence(), tokens: ids, dspark }], { logits: "all" })[0]!.logits;
  const a = model.newSequence();
  let at = 0;
  for (const L of starts) {
    model.forward([{ seq: a, tokens: ids.slice(at, L), dspark }], { logits: "none" });
    at = L;
    const base = a.snapshot();
    for (const k of ks) {
      for (let drop = 0; drop <= k; drop++) {
        a.restore(base);
        const kept = ids.slice(L, L + k + 1 - drop);
        const junk = Array.from({ length: drop }, (_, i) => (ids[L + i]! * 31 + 7 + i) % vocab);
        const undo = a.beginTail(k + 1, k);
        const step = model.forward([{ seq: a, tokens: [...kept, ...junk], dspark, mainXLast: dspark ? k + 1 : 0 }], { logits: "all" })[0]!;
        a.endTail();
        step.logits.slice(0, kept.length).forEach((row, i) => assert.deepEqual(row, ref[L + i], `start ${L}, k=${k}: step row ${i}`));
        a.dropTail(undo, drop);
        assert.equal(a.length, L + kept.length);
        if (dspark) {
          // A block drafted right after the rollback sees the rings as plain decoding left them.
          const b = model.newSequence();
          const plain = model.forward([{ seq: b, tokens: ids.slice(0, a.length), dspark, mainXLast: 1 }], { logits: "none" })[0]!;
          const [got] = model.dsparkDraft([{ seq: a, mainX: step.mainX[kept.length - 1]!, anchor: ids[a.length]! }]);
          const [want] = model.dsparkDraft([{ seq: b, mainX: plain.mainX[0]!, anchor: ids[a.length]! }]);
          assert.deepEqual(got, want, `start ${L}, k=${k}, dropped ${drop}: DSpark block after the rollback`);
        }
        const next = model.forward([{ seq: a, tokens: ids.slice(a.length, L + k + 8), dspark }], { logits: "all" })[0]!.logits;
        next.forEach((row, i) => assert.deepEqual(row, ref[L + kept.length + i], `start ${L}, k=${k}, dropped ${drop}: position ${L + kept.length + i}`));
      }
    }
    a.restore(base);
  }
}

describe("multi-token rollback", async () => {
  test("ratio 4 (overlapping, indexer) and 8, window 8: every dropped count at every start near a boundary", async () => {
    const model = Dsv4Model.load(await checkpoint("micro"), { backend: createBackend() });
    checkMultiTokenRollback(model, [0, 1, 2, 3, 4, 5, 6, 7, 9, 11, 13, 14, 15, 17, 22, 27, 30, 31, 38], [1, 3, 5, 7], 1024);
  });

  test("ratio 128 and 4, window 16: across the first ratio-128 completion and the window wrap", async () => {
    const model = Dsv4Model.load(await checkpoint("small-nohash"), { backend: createBackend() });
    checkMultiTokenRollback(model, [10, 14, 15, 122, 123, 124, 126, 127, 128, 130], [2, 5], 1024);
  });

  test("DSpark rings (0731 layout, window 8) roll back with the main state", async () => {
    const model = Dsv4Model.load(await checkpoint("micro-0731"), { backend: createBackend() });
    checkMultiTokenRollback(model, [1, 3, 6, 7, 8, 11, 15, 16, 22, 30], [1, 4], 1024);
  });
});
