/**
 * The addon's sampling loops (native/src/sampling.cc) against softmax.ts's JavaScript ones:
 * every weight, sum, histogram bin, count and mass, maximum and drawn index bit for bit, so a
 * seeded request samples the same tokens with or without the addon.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { argmax, argmaxJs, drawKept, drawKeptJs, gatherBin, gatherBinJs, keptMass, keptMassJs, maxOf, maxOfJs, nativeSampling, shiftedExp, shiftedExpJs, weightHistogram } from "../../src/engine/softmax.js";
import { Rng } from "../../src/engine/rng.js";
import { requireNativeAddon } from "../../src/kernels/native/addon.js";
import { nativeSkip } from "../kernels/native-available.js";

const bits = (a: Float64Array) => Array.from(new BigUint64Array(a.buffer, a.byteOffset, a.length));

/** Logit rows that reach every branch: flat, peaked, masked, spread into the subnormal weights and past them, lengths off a multiple of 8. */
function rows(): Array<[string, Float32Array]> {
  const rng = new Rng(7);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const V = 4099;
  return [
    ["flat", Float32Array.from({ length: V }, () => rng.next() * 4 - 2)],
    ["peaked", Float32Array.from({ length: V }, (_, i) => gauss() * 3 + (i % 600 === 0 ? 14 : 0))],
    ["masked", Float32Array.from({ length: V }, (_, i) => (i % 3 === 0 ? -Infinity : gauss()))],
    // y = (x - max) / T * log2(e) from 0 down to about -1400: normal, subnormal and zero weights.
    ["spread", Float32Array.from({ length: V }, (_, i) => -(i / V) * 1000 + rng.next())],
    ["ties", Float32Array.from({ length: V }, (_, i) => (i % 5) - 2)],
    ["short", Float32Array.from({ length: 5 }, () => gauss())],
    ["one", Float32Array.of(0.5)],
  ];
}

const skip = nativeSkip();
const addon = skip ? null : requireNativeAddon();
const initialIsa = addon?.info().isa ?? "";
// The addon's AVX-512 loop runs under an avx512 kernel table, its scalar loop under the others.
const isas = ["scalar", ...(addon?.info().isas ?? []).filter((isa) => isa.startsWith("avx512")).slice(-1)];

describe("native sampling loops equal the JavaScript ones bit for bit", { skip }, () => {
  after(() => addon?.selectIsa(initialIsa));
  test("the addon's loops are in use", () => assert.ok(nativeSampling()));

  for (const [name, x] of rows()) {
    for (const temperature of [0.05, 0.7, 1, 2.5]) {
      test(`${name}, temperature ${temperature}: weights and sum, plain and binned (${isas.join(", ")})`, () => {
        for (const isa of isas) {
          assert.ok(addon!.selectIsa(isa));
          sameWeights(x, temperature);
        }
      });
    }
  }

  function sameWeights(x: Float32Array, temperature: number): void {
    const max = maxOfJs(x);
    const a = new Float64Array(x.length + 3), b = new Float64Array(x.length + 3);
    assert.ok(Object.is(shiftedExp(x, max, temperature, a), shiftedExpJs(x, max, temperature, b)));
    assert.deepEqual(bits(a), bits(b));
    const ha = weightHistogram(x.length), hb = weightHistogram(x.length);
    assert.ok(Object.is(shiftedExp(x, max, temperature, a, ha), shiftedExpJs(x, max, temperature, b, hb)));
    assert.deepEqual(bits(a), bits(b));
    assert.deepEqual(Array.from(ha.bin), Array.from(hb.bin));
    assert.deepEqual(bits(ha.count), bits(hb.count));
    assert.deepEqual(bits(ha.mass), bits(hb.mass));
  }

  test("maxOf and argmax, with NaN and -Infinity entries, ties and none at all", () => {
    for (const x of [...rows().map(([, r]) => r), Float32Array.of(Number.NaN, -1, Number.NaN), Float32Array.of(-Infinity, -Infinity), Float32Array.of(1, 3, 3, 2), new Float32Array(0)]) {
      assert.ok(Object.is(maxOf(x), maxOfJs(x)));
      assert.equal(argmax(x), argmaxJs(x));
    }
  });

  test("drawKept: every cut (threshold, ties at it, floor) at many draws", () => {
    const x = rows()[3]![1];
    const w = new Float64Array(x.length);
    const total = shiftedExpJs(x, maxOfJs(x), 1, w);
    const rng = new Rng(11);
    const cuts: Array<[number, number, number]> = [[0, 0, Number.MIN_VALUE], [w[40]!, 2, Number.MIN_VALUE], [0, 0, 0.05], [w[3]!, 0, 1e-300]];
    for (const [threshold, atThreshold, lowest] of cuts) {
      for (let k = 0; k < 200; k++) {
        const u = rng.next() * total * 1.01;
        assert.equal(drawKept(w, w.length, threshold, atThreshold, lowest, u), drawKeptJs(w, w.length, threshold, atThreshold, lowest, u));
      }
    }
  });

  test("keptMass: every cut's sum", () => {
    const x = rows()[1]![1];
    const w = new Float64Array(x.length);
    shiftedExpJs(x, maxOfJs(x), 0.7, w);
    for (const [threshold, atThreshold, lowest] of [[0, 0, Number.MIN_VALUE], [w[600]!, 1, Number.MIN_VALUE], [0, 0, 0.05], [w[7]!, 3, 1e-200]] as const) {
      assert.ok(Object.is(keptMass(w, w.length, threshold, atThreshold, lowest), keptMassJs(w, w.length, threshold, atThreshold, lowest)));
    }
  });

  test("gatherBin: one bin's weights and those after it, in index order", () => {
    const x = rows()[3]![1];
    const w = new Float64Array(x.length);
    const h = weightHistogram(x.length);
    shiftedExpJs(x, maxOfJs(x), 1, w, h);
    for (const b of [0, 3, h.bin[2000]!, h.bin[4000]!]) {
      for (const above of [false, true]) {
        const a = new Float64Array(x.length), c = new Float64Array(x.length);
        const n = gatherBin(w, w.length, h.bin, b, above, a);
        assert.equal(n, gatherBinJs(w, w.length, h.bin, b, above, c));
        assert.deepEqual(bits(a.subarray(0, n)), bits(c.subarray(0, n)));
      }
    }
  });
});
