import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { RefBackend } from "../../src/kernels/ref/index.js";
import { Dsv4Model } from "../../src/model/transformer.js";
import { testDataDir } from "../helpers/paths.js";

// The reference reads matrices beyond its resident budget from the checkpoint at each use:
// the same numbers, without holding the weights in memory.
test("a reference with no resident budget reads every matrix from the file and computes the same logits", () => {
  const dir = join(testDataDir, "golden", "tiny-a");
  const tokens = [0, 100, 2000, 30000, 7, 7, 512, 9999].map((t) => t % 1024);
  const run = (backend: RefBackend) => {
    const model = Dsv4Model.load(dir, { backend });
    try {
      const seq = model.newSequence();
      return tokens.map((t) => Float64Array.from(model.forward([{ seq, tokens: [t] }])[0]!.logits[0]!));
    } finally {
      model.close();
    }
  };
  const mapped = new RefBackend({ residentBytes: 0 });
  const resident = new RefBackend();
  const a = run(mapped);
  const b = run(resident);
  assert.equal(mapped.residentBytes, 0);
  assert.ok(resident.residentBytes > 1 << 20);
  a.forEach((l, t) => assert.deepEqual(l, b[t], `position ${t}`));
});
