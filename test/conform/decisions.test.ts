import assert from "node:assert/strict";
import { test } from "node:test";
import { compareDecisions, referenceDecisions } from "../../src/conform/decisions.js";

// One E4M3 block whose scale is 1 (amax 448): the grid near 1 is spaced 1/8.
const block = (v: number): Float64Array => Float64Array.from([448, v, 3, -2]);

test("a value within float32 rounding of a midpoint, rounded the other way, is a flip at that distance", () => {
  const ref = referenceDecisions("e4m3", block(1.0625 - 1e-9), 0, 4, 4); // just below the 1 | 1.125 midpoint
  const input = block(1.0625 + 1e-9);
  const backend = Float64Array.from([448, 1.125, 3, -2]);
  const [d, ...rest] = compareDecisions("e4m3", 4, "f64", input, backend, ref.values, ref.scales, 4);
  assert.equal(rest.length, 0);
  assert.equal(d!.element, 1);
  assert.equal(d!.reference, 1);
  assert.ok(d!.distance < 1e-11 && d!.distance > 0, `distance ${d!.distance}`);
});

test("rounding toward zero far from the midpoint is far", () => {
  const ref = referenceDecisions("e4m3", block(1.12), 0, 4, 4);
  const [d] = compareDecisions("e4m3", 4, "f64", block(1.12), Float64Array.from([448, 1, 3, -2]), ref.values, ref.scales, 4);
  assert.ok(d!.distance > 1e-4, `distance ${d!.distance}`);
});

test("a block whose scale flips is judged by its scale's distance from the power of two", () => {
  // amax/448 just above 1 on the backend (scale 2), just below on the reference (scale 1);
  // a scale changes decisions only in the subnormal range: 3·2^-9 is on the grid at scale 1, a tie at scale 2.
  const x = (amax: number) => Float64Array.from([amax, 3 * 2 ** -9, 3]);
  const ref = referenceDecisions("e4m3", x(448 - 1e-6), 0, 3, 3);
  const own = referenceDecisions("e4m3", x(448 + 1e-6), 0, 3, 3);
  assert.equal(ref.scales[0], 1);
  assert.equal(own.scales[0], 2);
  const found = compareDecisions("e4m3", 3, "f64", x(448 + 1e-6), own.values, ref.values, ref.scales, 3);
  assert.ok(found.length > 0 && found.every((d) => d.scaleFlip && d.distance < 1e-8), JSON.stringify(found));
});
