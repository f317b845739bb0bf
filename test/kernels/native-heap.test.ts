import assert from "node:assert/strict";
import { test } from "node:test";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { nativeSkip } from "./native-available.js";
import { randomMatrix, randomVec } from "./native-random.js";

// A decode step's outputs are fresh Float32Arrays of megabytes (the logits of 6 rows are
// 3 MiB). Once collected, their memory must serve the next ones: a buffer that glibc maps
// anew each time is page-faulted on every first write, inside the kernels
// (native/src/heap_tuning.h). Without the setting this pattern faulted 385 (6 rows) and 1,416
// (16 rows) times per output here; with it 0 and 23.
const skip = nativeSkip() || (process.platform !== "linux" ? "glibc's heap settings: Linux only" : false);

test("fresh multi-megabyte product outputs reuse freed memory instead of faulting in new pages", { skip }, () => {
  const nb = new NativeBackend();
  const N = 131072, K = 16;
  const w = nb.uploadMatrix(randomMatrix("f32", N, K, 1));
  const product = (rows: number) => nb.linear(randomVec(rows * K, rows), rows, w, false);
  for (let i = 0; i < 20; i++) product(1);
  for (const rows of [6, 16]) {
    for (let i = 0; i < 20; i++) product(rows);
    const before = process.resourceUsage().minorPageFault;
    const calls = 60;
    for (let i = 0; i < calls; i++) product(rows);
    const perOutput = (process.resourceUsage().minorPageFault - before) / calls;
    const pages = (rows * N * 4) / 4096;
    assert.ok(perOutput < pages / 8, `${rows} rows: ${perOutput.toFixed(0)} page faults per output of ${pages} pages: freed outputs' memory is not reused`);
  }
});
