import assert from "node:assert/strict";
import { test } from "node:test";
import { productPeak, runRowsBench, runThreadScaling, scalingThreadCounts } from "../../bench/kernels.js";
import { requireNativeAddon } from "../../src/kernels/native/addon.js";
import { nativeSkip } from "./native-available.js";

// bench kernels' thread-scaling rows are an interface (tools read --json): their shape, not speed.
test("thread counts of the scaling rows: 1 to 4, then doubling, ending at nproc", () => {
  assert.deepEqual(scalingThreadCounts(1), [1]);
  assert.deepEqual(scalingThreadCounts(2), [1, 2]);
  assert.deepEqual(scalingThreadCounts(6), [1, 2, 3, 4, 6]);
  assert.deepEqual(scalingThreadCounts(16), [1, 2, 3, 4, 8, 16]);
  assert.deepEqual(scalingThreadCounts(24), [1, 2, 3, 4, 8, 16, 24]);
});

test("thread scaling: one row per thread count, each GEMV against the probe at that count, pool restored", { skip: nativeSkip() }, () => {
  const addon = requireNativeAddon();
  const before = addon.info().threads;
  const rows = runThreadScaling(addon, { quick: true, threads: [1, 2] });
  assert.deepEqual(rows.map((r) => r.threads), [1, 2]);
  for (const row of rows) {
    assert.ok(row.bandwidth_gbs > 0 && row.pool_overhead_us >= 0);
    assert.deepEqual(row.gemv.map((g) => g.name.split(" ")[0]), ["fp8", "fp4", "bf16"]);
    for (const g of row.gemv) assert.ok(Math.abs(g.fraction_of_bandwidth - g.gbs / row.bandwidth_gbs) < 1e-12, g.name);
  }
  assert.equal(addon.info().threads, before);
});

test("bench kernels --rows --formats fp4 --row-counts 1,2: only the FP4 shapes, at those rows", { skip: nativeSkip() }, async () => {
  const r = await runRowsBench({ quick: true, formats: ["fp4"], rows: [1, 2] });
  assert.deepEqual(
    r.results.map((x) => `${x.name.split(" ")[0]}:${x.rows}`),
    ["fp4:1", "fp4:2", "fp4:1", "fp4:2"],
  );
});

test("the bf16 dot-product probe counts on tables with those products, and reads 0 on the others", { skip: nativeSkip() }, () => {
  const addon = requireNativeAddon();
  const isa = addon.info().isa;
  try {
    assert.equal(addon.dotPeak(2) > 0, isa === "avx512bf16", isa);
    if (isa === "avx512bf16") {
      assert.ok(addon.selectIsa("avx512"));
      assert.equal(addon.dotPeak(2), 0);
    }
  } finally {
    addon.selectIsa(isa);
  }
});

test("a product is measured against the dot-product peak only where it runs on dot products", () => {
  assert.equal(productPeak({ fp32_gflops: 400, bf16_gflops: 800 }, true), 800);
  assert.equal(productPeak({ fp32_gflops: 400, bf16_gflops: 800 }, false), 400);
  assert.equal(productPeak({ fp32_gflops: 400, bf16_gflops: null }, true), 400);
});
