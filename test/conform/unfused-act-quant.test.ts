import assert from "node:assert/strict";
import { test } from "node:test";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import type { StoredMatrix } from "../../src/kernels/backend.js";
import { seededRandom } from "../../src/text/seeded-random.js";
import { nativeSkip } from "../kernels/native-available.js";

// conform checks activation quantisation unfused: the backend's fp8Simulate (block 128) on
// each row, then linear on the result with actQuant. That is only a check of the fast path
// if the two give the same bits as the fused linear, for FP8 and FP4 weights alike.
test("native: fp8Simulate(block 128) then linear equals the fused activation-quantised linear, bit for bit", { skip: nativeSkip() }, () => {
  const b = new NativeBackend();
  const rand = seededRandom(5);
  const N = 256;
  const K = 512;
  const rows = 3;
  for (const format of ["fp8", "fp4"] as const) {
    const data = new Uint8Array(format === "fp8" ? N * K : (N * K) / 2);
    for (let i = 0; i < data.length; i++) data[i] = format === "fp8" ? Math.floor(rand() * 126) | (rand() < 0.5 ? 0x80 : 0) : Math.floor(rand() * 256);
    const scale = new Uint8Array(format === "fp8" ? (N / 128) * (K / 128) : N * (K / 32)).fill(120);
    const m: StoredMatrix = { name: `t.${format}`, format, outFeatures: N, inFeatures: K, readData: () => data, location: null, scale, scaleDtype: "F8_E8M0" };
    const w = b.uploadMatrix(m);
    // Magnitudes over many octaves, so blocks have subnormal grid values and varied scales.
    const x = b.fromValues(Array.from({ length: rows * K }, () => (rand() - 0.5) * 2 ** (Math.floor(rand() * 16) - 8)));
    const fused = b.linear(x, rows, w, true);
    const xq = b.fromValues(x);
    for (let r = 0; r < rows; r++) b.fp8Simulate(xq, r * K, K, 128);
    assert.ok(xq.some((v, i) => v !== x[i]), "the simulation changed nothing");
    assert.deepEqual(b.linear(xq, rows, w, true), fused, format);
  }
});
