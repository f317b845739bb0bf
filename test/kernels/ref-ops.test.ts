import assert from "node:assert/strict";
import { test } from "node:test";
import { RefBackend } from "../../src/kernels/ref/index.js";
import { ceilPow2, fp4BlockScale, fp8BlockScale } from "../../src/kernels/ref/quant.js";

const b = new RefBackend();

function sylvester(n: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (popcount(i & j) % 2 ? -1 : 1)));
}
const popcount = (x: number) => x.toString(2).split("").filter((c) => c === "1").length;

test("Hadamard rotation is the natural-order Sylvester matrix times n^-1/2", () => {
  const n = 16;
  const x = Float64Array.from({ length: n }, (_, i) => Math.sin(i + 1));
  const y = x.slice();
  b.hadamard(y, 0, n, n);
  const H = sylvester(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += x[j]! * H[j]![i]!;
    assert.ok(Math.abs(y[i]! - s / Math.sqrt(n)) < 1e-14, `element ${i}`);
  }
});

test("Hadamard rotation is orthonormal: applying it twice is the identity", () => {
  const x = Float64Array.from({ length: 128 }, (_, i) => Math.cos(3 * i));
  const y = x.slice();
  b.hadamard(y, 0, 128, 64);
  b.hadamard(y, 0, 128, 64);
  for (let i = 0; i < 128; i++) assert.ok(Math.abs(y[i]! - x[i]!) < 1e-13);
});

test("UE8M0 scale is 2^ceil(log2(amax/448)) with amax floored at 1e-4", () => {
  assert.equal(ceilPow2(1), 1);
  assert.equal(ceilPow2(1.0000001), 2);
  assert.equal(ceilPow2(0.75), 1);
  assert.equal(fp8BlockScale(Float64Array.of(448, -1), 0, 2), 1);
  assert.equal(fp8BlockScale(Float64Array.of(449), 0, 1), 2);
  assert.equal(fp8BlockScale(Float64Array.of(0, 0), 0, 2), 2 ** Math.ceil(Math.log2(1e-4 / 448)));
  assert.equal(fp4BlockScale(Float64Array.of(6), 0, 1), 1);
  assert.equal(fp4BlockScale(Float64Array.of(-6.5), 0, 1), 2);
  assert.equal(fp4BlockScale(Float64Array.of(0), 0, 1), 2 ** -126);
});

test("FP8 simulation rounds each 64-block to its E4M3 grid, ties to even", () => {
  // amax 448 -> scale 1: 17 lies between 16 and 18 (step 2), tie -> 16 (even mantissa)
  const x = new Float64Array(64);
  x[0] = 448;
  x[1] = 17;
  x[2] = 19;
  x[3] = 0.001;
  b.fp8Simulate(x, 0, 64, 64);
  assert.equal(x[0], 448);
  assert.equal(x[1], 16);
  assert.equal(x[2], 20);
  assert.equal(x[3], 2 ** -9 * Math.round(0.001 / 2 ** -9)); // subnormal grid
});

test("FP4 simulation maps to {0, .5, 1, 1.5, 2, 3, 4, 6} times a power of two", () => {
  const x = Float64Array.of(6, 5, 2.5, 0.25, -0.75, 1.25, 3.5, -6, ...new Array(24).fill(0));
  b.fp4Simulate(x, 0, 32, 32);
  assert.deepEqual(Array.from(x.subarray(0, 8)), [6, 4, 2, 0, -1, 1, 4, -6]);
});

test("attention with a sink: the sink adds exp(sink - max) to the denominator only", () => {
  const q = Float64Array.of(1, 0);
  const rows = Float64Array.of(1, 0, 0, 1);
  const out = new Float64Array(2);
  b.attention({ q, qOffset: 0, out, outOffset: 0, sources: [{ rows, indices: [0, 1], count: 2 }] }, 1, 2, Float64Array.of(0.5), 1);
  const s0 = 1, s1 = 0, m = 1;
  const den = Math.exp(s0 - m) + Math.exp(s1 - m) + Math.exp(0.5 - m);
  assert.ok(Math.abs(out[0]! - Math.exp(s0 - m) / den) < 1e-15);
  assert.ok(Math.abs(out[1]! - Math.exp(s1 - m) / den) < 1e-15);
});

test("FP8 linear equals the dequantised product with quantised activations", () => {
  // 1x128 weight of ones (E4M3 0x38 = 1.0) with scale 2^-1; activations quantise exactly
  const data = new Uint8Array(128).fill(0x38);
  const w = b.uploadMatrix({ name: "w", format: "fp8", outFeatures: 1, inFeatures: 128, readData: () => data, location: null, scale: Uint8Array.of(126) });
  const x = Float64Array.from({ length: 128 }, (_, i) => (i % 8) - 4);
  const y = b.linear(x, 1, w, true);
  const expected = x.reduce((s, v) => s + v, 0) * 0.5;
  assert.equal(y[0], expected);
});
