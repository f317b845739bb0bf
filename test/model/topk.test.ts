import assert from "node:assert/strict";
import { test } from "node:test";
import { topkIndices } from "../../src/model/topk.js";

test("top-k returns indices by descending score", () => {
  assert.deepEqual(Array.from(topkIndices([0.1, 0.9, 0.5, 0.7], 4, 2)), [1, 3]);
});

test("exact ties go to the lowest index (spec §13.4)", () => {
  assert.deepEqual(Array.from(topkIndices([0, 1, 1, 0, 1], 5, 2)), [1, 2]);
  assert.deepEqual(Array.from(topkIndices([0, 0, 0, 0, 0, 0], 6, 3)), [0, 1, 2]);
  assert.deepEqual(Array.from(topkIndices([2, 0, 0, 2], 4, 3)), [0, 3, 1]);
});

test("k larger than n lists everything, ordered", () => {
  assert.deepEqual(Array.from(topkIndices([3, 1, 2], 3, 8)), [0, 2, 1]);
});

test("matches a full stable sort on long inputs", () => {
  const n = 5000;
  const s = Array.from({ length: n }, (_, i) => Math.floor(Math.abs(Math.sin(i * 12.9898)) * 100));
  const expected = Array.from({ length: n }, (_, i) => i).sort((a, b) => s[b]! - s[a]! || a - b).slice(0, 64);
  assert.deepEqual(Array.from(topkIndices(s, n, 64)), expected);
});
