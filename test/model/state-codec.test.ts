import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { E4M3_MAX, roundE2M1, roundE4M3 } from "../../src/formats/dtypes.js";
import { packedSizeError, packRows, unpackRows, type RowLayout } from "../../src/model/state-codec.js";

/** Values on a grid: code × 2^k per block, as the model's FP8/FP4 simulations leave them. */
function onGrid(n: number, width: number, gridDims: number, block: number, round: (v: number) => number, max: number, Ctor: typeof Float32Array | typeof Float64Array): Float32Array | Float64Array {
  const out = new Ctor(n * width);
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < gridDims; b += block) {
      const s = 2 ** (Math.floor(rnd() * 20) - 10);
      for (let i = b; i < Math.min(b + block, gridDims); i++) out[r * width + i] = round(rnd() * max) * s;
    }
    for (let i = gridDims; i < width; i++) out[r * width + i] = rnd() * 3.7;
  }
  return out;
}

describe("state codec", () => {
  const fp8: RowLayout = { width: 80, grid: "e4m3", gridDims: 64 + 8, block: 64 };
  const fp4: RowLayout = { width: 40, grid: "e2m1", gridDims: 40, block: 32 };

  for (const Ctor of [Float32Array, Float64Array]) {
    test(`E4M3 rows round-trip exactly in one byte a value (${Ctor.name})`, () => {
      const data = onGrid(9, fp8.width, fp8.gridDims, fp8.block, roundE4M3, E4M3_MAX, Ctor);
      const p = packRows(data, 0, 9, fp8);
      assert.equal(packedSizeError(p, fp8), null);
      assert.equal(p.raw.length, 9 * 8, "only the non-grid dims are raw");
      const back = new Ctor(data.length);
      unpackRows(p, fp8, back, 0);
      assert.deepEqual(back, data);
    });

    test(`E2M1 rows round-trip exactly in a nibble a value (${Ctor.name})`, () => {
      const data = onGrid(5, fp4.width, fp4.gridDims, fp4.block, roundE2M1, 6, Ctor);
      const p = packRows(data, 0, 5, fp4);
      assert.equal(p.codes.length, 5 * 20);
      assert.equal(p.raw.length, 0);
      const back = new Ctor(data.length);
      unpackRows(p, fp4, back, 0);
      assert.deepEqual(back, data);
    });
  }

  test("a block off the grid is kept raw, and still round-trips exactly", () => {
    const data = onGrid(3, fp8.width, fp8.gridDims, fp8.block, roundE4M3, E4M3_MAX, Float32Array);
    data[fp8.width + 5] = Math.fround(0.1234567); // row 1, first block
    const p = packRows(data, 0, 3, fp8);
    assert.equal(p.raw.length, 64 + 3 * 8);
    assert.equal(packedSizeError(p, fp8), null);
    const back = new Float32Array(data.length);
    unpackRows(p, fp8, back, 0);
    assert.deepEqual(back, data);
  });

  test("zeros, negative zero and the largest E4M3 value survive", () => {
    const data = new Float32Array(fp8.width);
    data[1] = -0;
    data[2] = 448 * 2 ** -3;
    data[3] = -(2 ** -9) * 2 ** -3;
    const p = packRows(data, 0, 1, fp8);
    const back = new Float32Array(data.length);
    unpackRows(p, fp8, back, 0);
    assert.deepEqual(back, data);
    assert.ok(Object.is(back[1], -0));
  });

  test("sizes that do not match the layout are reported", () => {
    const p = packRows(new Float32Array(2 * fp8.width), 0, 2, fp8);
    assert.match(packedSizeError({ ...p, count: 3 }, fp8)!, /codes/);
    assert.match(packedSizeError({ ...p, raw: p.raw.subarray(1) }, fp8)!, /raw values/);
  });
});
