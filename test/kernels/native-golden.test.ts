import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { argmaxAgreement, Golden, maxAbsDiffPerPosition, runGolden, type DecodeRun } from "../model/conformance.js";
import { nativeSkip } from "./native-available.js";

// The native backend computes in float32: it must match the float32 official run (`logits`)
// closely until the first quantisation flip, and afterwards agree with the float64 run on
// the argmax about as often as float32 and float64 runs agree with each other
// (golden.json recommended_tolerance.float32_implementation_vs_logits, sensitivity).
const skip = nativeSkip();

describe("tiny-a golden, native backend (float32)", { skip }, () => {
  const golden = new Golden("tiny-a");
  const tol = golden.json.recommended_tolerance.float32_implementation_vs_logits;
  const sens = golden.json.sensitivity.fp64_vs_fp32;
  const V: number = golden.json.config.vocab_size ?? golden.shape("logits")[1]!;
  const before: number = tol.valid_for_positions_below;
  const decode: DecodeRun = skip ? { logits: [], mtpLogits: [], router: new Map(), indexer: new Map() } : runGolden(golden, new NativeBackend(), { mtp: true });

  function check(run: Float64Array[], f32: string, f64: string, abs: number, agreement: number): void {
    const diffs = maxAbsDiffPerPosition(run.slice(0, before), golden.tensor(f32), V);
    const worst = Math.max(...diffs);
    assert.ok(worst <= abs, `max |Δ| ${worst} at position ${diffs.indexOf(worst)} > ${abs}`);
    const ref = golden.tensor(f64);
    const after = argmaxAgreement(run.slice(before), ref.subarray(before * V), V);
    assert.ok(after >= agreement - 0.05, `argmax agreement after position ${before}: ${after} < ${agreement} - 0.05`);
  }

  test("logits: within tolerance of the float32 run, then argmax agreement with the float64 run", () => {
    assert.equal(decode.logits.length, golden.json.T);
    check(decode.logits, "logits", "logits_f64", tol.logits_abs, sens.logits_argmax_agreement);
  });

  test("MTP logits: same criterion", () => {
    assert.equal(decode.mtpLogits.length, golden.json.T - 1);
    check(decode.mtpLogits, "mtp_logits", "mtp_logits_f64", tol.mtp_logits_abs, sens.mtp_argmax_agreement);
  });

  test("chunked prefill gives the decode logits bit for bit (a token's result does not depend on its batch)", () => {
    const prefill = runGolden(golden, new NativeBackend(), { chunk: 37 });
    assert.equal(prefill.logits.length, decode.logits.length);
    prefill.logits.forEach((row, t) => assert.deepEqual(row, decode.logits[t], `position ${t}`));
  });
});
