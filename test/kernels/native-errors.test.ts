import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { requireNativeAddon } from "../../src/kernels/native/addon.js";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { nativeSkip } from "./native-available.js";
import { randomMatrix, randomVec } from "./native-random.js";

// A C++ exception or failed allocation in the addon, on the calling thread or on a pool
// worker, must come back as a JavaScript Error naming the operation and the size, and leave
// the addon working (before, a std::bad_alloc terminated the process).
const skip = nativeSkip();

describe("native errors reach JavaScript", { skip }, () => {
  const addon = requireNativeAddon();
  const nb = new NativeBackend(addon);
  const threads = addon.info().threads;
  after(() => {
    addon.failAllocationsAfter(-1);
    addon.setThreads(threads);
  });

  test("a failed scratch allocation on the calling thread names the op, its shape, rows and bytes", () => {
    const h = nb.uploadMatrix(randomMatrix("fp8", 256, 512, 1));
    const x = randomVec(3 * 512, 2);
    const want = Array.from(nb.linear(x, 3, h, true));
    addon.failAllocationsAfter(0); // the activations' buffer, first request of the call
    assert.throws(() => nb.linear(x, 3, h, true), { message: /^fp8-256x512: dsv4 native: linear \(fp8 256x512, 3 rows\): could not allocate \d+ bytes of scratch$/ });
    addon.failAllocationsAfter(-1);
    assert.deepEqual(Array.from(nb.linear(x, 3, h, true)), want);
  });

  test("a failed allocation inside pool tasks comes back from run on the calling thread", () => {
    addon.setThreads(Math.max(2, threads));
    // 64 heads x 512 over 8 rows: split over the pool in 16 tasks, each taking its scores buffer.
    const heads = 64, headDim = 512, count = 8;
    const q = randomVec(heads * headDim, 5);
    const rows = randomVec(count * headDim, 6);
    const query = (out: Float32Array) => ({ q, qOffset: 0, out, outOffset: 0, sources: [{ rows, indices: Int32Array.from({ length: count }, (_, i) => i), count }] });
    const sink = randomVec(heads, 7);
    const want = new Float32Array(heads * headDim);
    nb.attention(query(want), heads, headDim, sink, 0.05);
    addon.failAllocationsAfter(1); // the row list (calling thread) passes, every task's scores fail
    assert.throws(() => nb.attention(query(new Float32Array(heads * headDim)), heads, headDim, sink, 0.05), {
      message: "dsv4 native: attention (64 heads x 512, 8 rows): could not allocate 132 bytes of attention scores",
    });
    addon.failAllocationsAfter(-1);
    const got = new Float32Array(heads * headDim);
    nb.attention(query(got), heads, headDim, sink, 0.05);
    assert.deepEqual(Array.from(got), Array.from(want));
  });

  test("a failed allocation of the bandwidth probe is an error naming its size", () => {
    assert.throws(() => addon.memoryBandwidth(2 ** 52, 1), {
      message: "dsv4 native: memoryBandwidth (4503599627370496 bytes): could not allocate 4503599627370496 bytes of bandwidth probe buffer",
    });
    assert.ok(addon.memoryBandwidth(2 ** 20, 1) > 0);
  });
});
