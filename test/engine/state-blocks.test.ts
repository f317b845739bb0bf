/**
 * Prefix-cache blocks restore a sequence exactly: a chain of blocks captured at arbitrary
 * boundaries (inside compressor windows, across window-ring wrap-around) continues with the
 * logits of the uninterrupted sequence, bit for bit, on both backends.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createBackend } from "../../src/kernels/index.js";
import { blockBytes, captureBlock, restoreBlocks, type StateBlock } from "../../src/model/state-blocks.js";
import { packedBytes } from "../../src/model/state-codec.js";
import { Dsv4Model } from "../../src/model/transformer.js";
import { checkpoint, promptIds } from "./helpers.js";

describe("state blocks", async () => {
  const dir = await checkpoint("micro");

  for (const backend of ["native", "ref"]) {
    test(`a chain of blocks restores the state exactly (${backend})`, () => {
      const model = Dsv4Model.load(dir, { backend: createBackend(backend) });
      const ids = promptIds(80);
      // micro: compress ratios 4 and 8, window 8.
      const boundaries = [3, 8, 13, 16, 21, 30, 31, 40, 47, 56];
      const live = model.newSequence();
      const chain: StateBlock[] = [];
      let at = 0;
      for (const b of boundaries) {
        model.forward([{ seq: live, tokens: ids.slice(at, b) }], { logits: "none" });
        chain.push(captureBlock(live, at));
        at = b;
      }
      for (let k = 0; k < boundaries.length; k++) {
        const L = boundaries[k]!;
        // Earlier blocks linked without tips, as the cache keeps them.
        const links = chain.slice(0, k + 1).map((b, i) => (i < k ? { ...b, tip: null } : b));
        const restored = model.newSequence();
        restoreBlocks(restored, links);
        assert.equal(restored.length, L);
        const cont = model.forward([{ seq: restored, tokens: ids.slice(L, L + 10) }], { logits: "all" })[0]!.logits;
        const fresh = model.newSequence();
        const want = model.forward([{ seq: fresh, tokens: ids.slice(0, L + 10) }], { logits: "all" })[0]!.logits.slice(L);
        cont.forEach((row, i) => assert.deepEqual(row, want[i], `restored at ${L}, position ${L + i}`));
      }
      model.close();
    });
  }

  test("blocks are compact: rows and window KV on the FP8/FP4 grids take bytes, not floats", () => {
    const model = Dsv4Model.load(dir, { backend: createBackend("native") });
    const seq = model.newSequence();
    model.forward([{ seq, tokens: promptIds(64) }], { logits: "none" });
    const block = captureBlock(seq, 0);
    const cfg = model.cfg;
    // What float32 storage of the same content would take.
    let floats = 0;
    for (const l of seq.layers) {
      floats += Math.min(64, cfg.window - 1) * cfg.headDim;
      for (const c of [l.compressor, l.indexer]) if (c) floats += c.rows.count * c.headDim;
    }
    let bytes = 0;
    for (const l of block.layers) for (const rb of [l.compressor, l.indexer]) if (rb) bytes += packedBytes(rb.rows);
    for (const t of block.tip!) bytes += packedBytes(t.window);
    assert.ok(bytes < floats * 4 * 0.5, `${bytes} bytes vs ${floats * 4} as float32`);
    assert.ok(blockBytes(block) > bytes, "the tip's compressor state is counted too");
    model.close();
  });
});
