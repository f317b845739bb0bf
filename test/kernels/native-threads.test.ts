import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { WeightFormat } from "../../src/kernels/backend.js";
import { requireNativeAddon } from "../../src/kernels/native/addon.js";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { nativeSkip } from "./native-available.js";
import { randomMatrix, randomVec } from "./native-random.js";

// The pool can be resized (bench kernels' thread scaling), and no result depends on the
// thread count: work is split by output rows, each computed the same way by any thread.
const skip = nativeSkip();

describe("native thread pool", { skip }, () => {
  const addon = requireNativeAddon();
  const nb = new NativeBackend(addon);
  const threads = addon.info().threads;
  after(() => addon.setThreads(threads));

  test("setThreads sets the count info() reports", () => {
    assert.equal(addon.setThreads(3), 3);
    assert.equal(addon.info().threads, 3);
    assert.equal(addon.setThreads(1), 1);
    assert.equal(addon.info().threads, 1);
    assert.throws(() => addon.setThreads(0), /threads must be 1 to 1024/);
  });

  test("products are bit-identical at 1, 2, 3 and 5 threads", () => {
    const cases: Array<[WeightFormat, number, number]> = [["fp8", 1024, 512], ["fp4", 1536, 512], ["bf16", 1000, 256], ["f32", 600, 256]];
    for (const [format, N, K] of cases) {
      const h = nb.uploadMatrix(randomMatrix(format, N, K, N + K));
      for (const rows of [1, 5, 32]) {
        const x = randomVec(rows * K, rows, 2);
        addon.setThreads(1);
        const one = Array.from(nb.linear(x, rows, h, true));
        for (const t of [2, 3, 5]) {
          addon.setThreads(t);
          assert.deepEqual(Array.from(nb.linear(x, rows, h, true)), one, `${format} ${N}x${K}, ${rows} rows, ${t} threads`);
        }
      }
    }
  });

  test("the pool's per-call overhead is measurable (a bench figure, not a limit)", () => {
    addon.setThreads(2);
    const us = addon.poolOverhead(8, 100);
    assert.ok(Number.isFinite(us) && us >= 0, `overhead ${us}`);
  });
});
