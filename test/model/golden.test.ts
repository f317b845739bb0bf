import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RefBackend } from "../../src/kernels/ref/index.js";
import { argmaxAgreement, Golden, maxAbsDiffPerPosition, runGolden, type DecodeRun } from "./conformance.js";

// The reference backend computes in float64 and must match the float64 run of the official
// code at every position (golden.json recommended_tolerance.float64_implementation_vs_logits_f64).
describe("tiny-a golden, reference backend (float64)", () => {
  const golden = new Golden("tiny-a");
  const tol = golden.json.recommended_tolerance.float64_implementation_vs_logits_f64;
  const V: number = golden.json.config.vocab_size ?? golden.shape("logits_f64")[1]!;
  const decode: DecodeRun = runGolden(golden, new RefBackend(), { mtp: true });

  test("decode logits match logits_f64 at every position", () => {
    const ref = golden.tensor("logits_f64");
    const diffs = maxAbsDiffPerPosition(decode.logits, ref, V);
    assert.equal(diffs.length, golden.json.T);
    const worst = Math.max(...diffs);
    assert.ok(worst <= tol.logits_abs, `max |Δlogit| ${worst} at position ${diffs.indexOf(worst)} > ${tol.logits_abs}`);
    assert.equal(argmaxAgreement(decode.logits, ref, V), 1);
  });

  test("MTP logits match mtp_logits_f64 at every position", () => {
    const ref = golden.tensor("mtp_logits_f64");
    const diffs = maxAbsDiffPerPosition(decode.mtpLogits, ref, V);
    assert.equal(diffs.length, golden.json.T - 1);
    const worst = Math.max(...diffs);
    assert.ok(worst <= tol.mtp_logits_abs, `max |Δmtp_logit| ${worst} at position ${diffs.indexOf(worst)}`);
    assert.equal(argmaxAgreement(decode.mtpLogits, ref, V), 1);
  });

  test("router selections equal router_topk_f64 (as sets, every layer and position)", () => {
    const ref = golden.tensor("router_topk_f64");
    const [L, T, K] = golden.shape("router_topk_f64") as [number, number, number];
    for (let l = 0; l < L; l++) {
      for (let t = 0; t < T; t++) {
        const mine = [...decode.router.get(l)![t]!].sort((a, b) => a - b);
        const theirs = Array.from(ref.subarray((l * T + t) * K, (l * T + t + 1) * K)).sort((a, b) => a - b);
        assert.deepEqual(mine, theirs, `layer ${l} position ${t}`);
      }
    }
  });

  test("indexer selections equal indexer_topk_f64, in order", () => {
    const ref = golden.tensor("indexer_topk_f64");
    const [L, T, K] = golden.shape("indexer_topk_f64") as [number, number, number];
    let checked = 0;
    for (let l = 0; l < L; l++) {
      const mine = decode.indexer.get(l);
      for (let t = 0; t < T; t++) {
        const theirs = Array.from(ref.subarray((l * T + t) * K, (l * T + t + 1) * K)).filter((i) => i >= 0);
        const got = mine ? Array.from(mine[t] ?? []) : [];
        assert.deepEqual(got, theirs, `layer ${l} position ${t}`);
        checked += got.length;
      }
    }
    assert.ok(checked > 0, "no CSA layer selected anything");
  });

  test("chunked prefill gives the decode results (chunks of 37 tokens)", () => {
    const prefill = runGolden(golden, new RefBackend(), { chunk: 37 });
    const ref = golden.tensor("logits_f64");
    const worst = Math.max(...maxAbsDiffPerPosition(prefill.logits, ref, V));
    assert.ok(worst <= tol.logits_abs, `prefill max |Δlogit| ${worst}`);
  });
});
