import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ExpertPicks, WeightFormat } from "../../src/kernels/backend.js";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { nativeSkip } from "./native-available.js";
import { randomMatrix, randomVec } from "./native-random.js";

// The native backend's routedExperts runs a layer's experts as one operation, each expert
// whole on one thread; the model takes it instead of a linear / swiglu / addRows sequence per
// expert, so it must give that sequence's bits.
const skip = nativeSkip();

const DIM = 256;
const INTER = 128;
const LIMIT = 7;

function experts(nb: NativeBackend, format: WeightFormat, rowsPerExpert: number[][], seed: number): ExpertPicks[] {
  return rowsPerExpert.map((rows, e) => ({
    w1: nb.uploadMatrix(randomMatrix(format, INTER, DIM, seed + 3 * e)),
    w3: nb.uploadMatrix(randomMatrix(format, INTER, DIM, seed + 3 * e + 1)),
    w2: nb.uploadMatrix(randomMatrix(format, DIM, INTER, seed + 3 * e + 2)),
    rows: Int32Array.from(rows),
    weights: Float64Array.from(rows, (_, i) => 0.05 + 0.1 * ((e + i) % 7)),
  }));
}

/** What the model does without routedExperts (moe.ts): one expert after the other. */
function oneByOne(nb: NativeBackend, x: Float32Array, picks: ExpertPicks[], y: Float32Array): void {
  for (const p of picks) {
    const xs = new Float32Array(p.rows.length * DIM);
    p.rows.forEach((r, i) => xs.set(x.subarray(r * DIM, (r + 1) * DIM), i * DIM));
    const g = nb.linear(xs, p.rows.length, p.w1, true);
    const u = nb.linear(xs, p.rows.length, p.w3, true);
    nb.swiglu(g, u, p.rows.length, INTER, LIMIT, p.weights);
    nb.addRows(y, nb.linear(g, p.rows.length, p.w2, true), p.rows, DIM);
  }
}

describe("routedExperts", { skip }, () => {
  const nb = skip ? (null as unknown as NativeBackend) : new NativeBackend();

  /** routedExperts onto a copy of `start` gives exactly what the one-by-one sequence adds to another. */
  function sameAsOneByOne(picks: ExpertPicks[], x: Float32Array, start: Float32Array): void {
    const want = Float32Array.from(start);
    oneByOne(nb, x, picks, want);
    const got = Float32Array.from(start);
    nb.routedExperts(x, DIM, picks, INTER, LIMIT, got);
    assert.deepEqual(Array.from(got), Array.from(want));
  }

  for (const format of ["fp4", "fp8"] as WeightFormat[]) {
    test(`${format}: a decode batch's experts (1-3 rows each, rows shared between experts) give the one-by-one bits`, () => {
      const R = 16;
      const rows = Array.from({ length: 24 }, (_, e) => Array.from({ length: 1 + (e % 3) }, (_, i) => (e * 5 + i * 7) % R));
      sameAsOneByOne(experts(nb, format, rows, 100), randomVec(R * DIM, 7, 3), new Float32Array(R * DIM));
    });
  }

  test("experts with many rows (prefill: products in tiles of output rows) give the one-by-one bits", () => {
    const R = 40;
    const rows = [Array.from({ length: 33 }, (_, i) => i), Array.from({ length: 9 }, (_, i) => 39 - 4 * i), [3]];
    sameAsOneByOne(experts(nb, "fp4", rows, 200), randomVec(R * DIM, 8, 2), new Float32Array(R * DIM));
  });

  test("adds to y rather than overwriting it", () => {
    sameAsOneByOne(experts(nb, "fp4", [[0], [1], [0, 1]], 300), randomVec(2 * DIM, 9), randomVec(2 * DIM, 10));
  });

  test("refuses a row outside x, a weight count that differs, and a matrix of the wrong shape, naming them", () => {
    const picks = experts(nb, "fp4", [[0], [1]], 400);
    const x = randomVec(2 * DIM, 11);
    const y = new Float32Array(2 * DIM);
    assert.throws(() => nb.routedExperts(x, DIM, [{ ...picks[0]!, rows: Int32Array.of(2) }], INTER, LIMIT, y), /rowIndex entry outside x or y/);
    assert.throws(() => nb.routedExperts(x, DIM, [{ ...picks[0]!, weights: Float64Array.of(1, 2) }], INTER, LIMIT, y), /1 rows but 2 weights/);
    assert.throws(() => nb.routedExperts(x, DIM, [{ ...picks[0]!, w2: picks[0]!.w1 }], INTER, LIMIT, y), /w2 must be dim x inter/);
    assert.deepEqual(Array.from(y), Array.from(new Float32Array(2 * DIM)));
  });
});
