import assert from "node:assert/strict";
import { test } from "node:test";
import { part } from "../../bench/spec.js";
import type { MatrixHandle } from "../../src/kernels/backend.js";

const matrix = (name: string): MatrixHandle => ({ name, outFeatures: 8, inFeatures: 8, format: "bf16", bytes: 128 });

test("bench spec's per-op split counts a draft vocabulary's row ranges as the head and the Markov head", () => {
  assert.equal(part("linear", [null, 1, matrix("head")]), "head");
  assert.equal(part("linear", [null, 1, matrix("head[rows 0..32768)")]), "head");
  assert.equal(part("linear", [null, 1, matrix("mtp.2.markov_head.markov_w2[rows 128000..129280)")]), "Markov head");
});
