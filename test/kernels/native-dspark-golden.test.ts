import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { argmax, argmaxAgreement, Golden, maxAbsDiffPerPosition } from "../model/conformance.js";
import { maxAbsDiff, runDsparkGolden, type DsparkRun } from "../model/dspark-conformance.js";
import { nativeSkip } from "./native-available.js";

// The native backend computes in float32: it must match the float32 official run closely until
// the first quantisation flip (recommended_tolerance.float32_implementation_vs_fp32), and
// afterwards agree with the float64 run on the argmax and the draft tokens about as often as the
// official float32 run does (the same rule as the April golden).
const skip = nativeSkip();

describe("tiny-dspark-a golden, native backend (float32)", { skip }, () => {
  const golden = new Golden("tiny-dspark-a");
  const tol = golden.json.recommended_tolerance.float32_implementation_vs_fp32;
  const sens = golden.json.sensitivity.fp64_vs_fp32;
  const V: number = golden.shape("logits")[1]!;
  const B: number = golden.shape("confidence")[1]!;
  const starts = Array.from(golden.tensor("draft_start_pos"));
  const run: DsparkRun | null = skip ? null : runDsparkGolden(golden, new NativeBackend());

  test("main logits: within tolerance of the float32 run, then argmax agreement with the float64 run", () => {
    const before: number = tol.valid_for_main_positions_below;
    const worst = Math.max(...maxAbsDiffPerPosition(run!.logits.slice(0, before), golden.tensor("logits"), V));
    assert.ok(worst <= tol.logits_abs, `max |Δ| ${worst} > ${tol.logits_abs}`);
    const after = argmaxAgreement(run!.logits.slice(before), golden.tensor("logits_f64").subarray(before * V), V);
    assert.ok(after >= sens.logits_argmax_agreement - 0.05, `argmax agreement after position ${before}: ${after}`);
  });

  test("draft logits: within tolerance of the float32 run before the first flip", () => {
    const ref = golden.tensor("draft_logits");
    starts.forEach((t, j) => {
      if (t >= tol.valid_for_draft_start_pos_below) return;
      const d = maxAbsDiff(run!.draftLogits.get(t)!, ref, V, j * B);
      assert.ok(d <= tol.draft_logits_abs, `start position ${t}: max |Δ| ${d}`);
    });
  });

  test("draft tokens: agreement with the float64 run no worse than the official float32 run's", () => {
    const f64 = golden.tensor("draft_ids_f64");
    const f32 = golden.tensor("draft_ids");
    let mine = 0;
    let official = 0;
    let n = 0;
    starts.forEach((t, j) => {
      if (t < tol.valid_for_draft_start_pos_below) return;
      const ids = run!.draftIds.get(t)!;
      for (let i = 1; i <= B; i++, n++) {
        const o = j * (B + 1) + i;
        if (ids[i] === f64[o]) mine++;
        if (f32[o] === f64[o]) official++;
      }
    });
    assert.ok(mine / n >= official / n - 0.05, `draft token agreement ${mine / n}, official float32 run ${official / n}`);
  });

  test("each draft token is the argmax of its (Markov-biased) draft logits", () => {
    for (const t of starts) {
      const ids = run!.draftIds.get(t)!;
      run!.draftLogits.get(t)!.forEach((row, i) => assert.equal(ids[i + 1], argmax(row), `start ${t}, row ${i}`));
    }
  });
});
