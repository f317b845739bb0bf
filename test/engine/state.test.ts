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
      const undo = a.saveTail(L + 1);
      model.forward([{ seq: a, tokens: [ids[L]!, 999] }], { logits: "none" });
      a.dropTail(undo);
      assert.equal(a.length, L + 1);
      const after = model.forward([{ seq: a, tokens: ids.slice(L + 1, L + 12) }], { logits: "all" })[0]!.logits;

      const b = model.newSequence();
      const ref = model.forward([{ seq: b, tokens: ids.slice(0, L + 12) }], { logits: "all" })[0]!.logits.slice(L + 1);
      assert.equal(after.length, ref.length);
      after.forEach((row, i) => assert.deepEqual(row, ref[i], `L=${L}, position ${L + 1 + i}`));
      assert.equal(a.bytes, b.bytes);
    }
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
});
