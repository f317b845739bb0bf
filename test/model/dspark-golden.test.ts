import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RefBackend } from "../../src/kernels/ref/index.js";
import { Golden, maxAbsDiffPerPosition } from "./conformance.js";
import { maxAbsDiff, runDsparkGolden, type DsparkRun } from "./dspark-conformance.js";

// The reference backend computes in float64 and must match the float64 run of the official
// 0731 code at every position and draft row (golden.json recommended_tolerance.float64_implementation_vs_f64).
describe("tiny-dspark-a golden, reference backend (float64)", () => {
  const golden = new Golden("tiny-dspark-a");
  const tol = golden.json.recommended_tolerance.float64_implementation_vs_f64;
  const V: number = golden.shape("logits_f64")[1]!;
  const [rows, B] = golden.shape("confidence_f64") as [number, number];
  const starts = Array.from(golden.tensor("draft_start_pos"));
  const run: DsparkRun = runDsparkGolden(golden, new RefBackend());

  test("main logits match logits_f64 at every position", () => {
    const diffs = maxAbsDiffPerPosition(run.logits, golden.tensor("logits_f64"), V);
    assert.equal(diffs.length, golden.json.T);
    const worst = Math.max(...diffs);
    assert.ok(worst <= tol.logits_abs, `max |Δlogit| ${worst} at position ${diffs.indexOf(worst)}`);
  });

  test("a draft row for every start position 1 … T-2, none for t = 0", () => {
    assert.deepEqual([...run.draftIds.keys()], starts);
    assert.equal(starts.length, rows);
  });

  test("draft logits (Markov bias included) match draft_logits_f64 in every row", () => {
    const ref = golden.tensor("draft_logits_f64");
    starts.forEach((t, j) => {
      const d = maxAbsDiff(run.draftLogits.get(t)!, ref, V, j * B);
      assert.ok(d <= tol.draft_logits_abs, `start position ${t}: max |Δ| ${d}`);
    });
  });

  test("confidence logits match confidence_f64 in every row", () => {
    const ref = golden.tensor("confidence_f64");
    starts.forEach((t, j) => {
      const d = maxAbsDiff([run.confidence.get(t)!], ref, B, j);
      assert.ok(d <= tol.confidence_abs, `start position ${t}: max |Δ| ${d}`);
    });
  });

  test("draft ids equal draft_ids_f64 exactly", () => {
    const ref = golden.tensor("draft_ids_f64");
    starts.forEach((t, j) => assert.deepEqual(run.draftIds.get(t), Array.from(ref.subarray(j * (B + 1), (j + 1) * (B + 1))), `start position ${t}`));
  });

  test("DSpark router selections equal dspark_router_topk_f64 (as sets, every stage, row and block position)", () => {
    const ref = golden.tensor("dspark_router_topk_f64");
    const [S, n, , K] = golden.shape("dspark_router_topk_f64") as [number, number, number, number];
    for (let s = 0; s < S; s++) {
      starts.forEach((t, j) => {
        for (let i = 0; i < B; i++) {
          const o = ((s * n + j) * B + i) * K;
          const mine = [...run.router.get(t)![s]![i]!].sort((a, b) => a - b);
          assert.deepEqual(mine, Array.from(ref.subarray(o, o + K)).sort((a, b) => a - b), `stage ${s}, start ${t}, block row ${i}`);
        }
      });
    }
  });

  test("prefill of 100 positions, then decode, gives the same logits and drafts (ring wrapped in the prefill)", () => {
    const P = 100;
    const prefill = runDsparkGolden(golden, new RefBackend(), { prefill: P });
    const worst = Math.max(...maxAbsDiffPerPosition(prefill.logits, golden.tensor("logits_f64"), V));
    assert.ok(worst <= tol.logits_abs, `prefill max |Δlogit| ${worst}`);
    const ref = golden.tensor("draft_logits_f64");
    for (const [t, logits] of prefill.draftLogits) {
      assert.ok(t >= P - 1);
      assert.ok(maxAbsDiff(logits, ref, V, (t - 1) * B) <= tol.draft_logits_abs, `start position ${t}`);
      assert.deepEqual(prefill.draftIds.get(t), run.draftIds.get(t), `start position ${t}`);
    }
    assert.equal(prefill.draftLogits.size, rows - (P - 2));
  });
});
