import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, test } from "node:test";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { RefBackend } from "../../src/kernels/ref/index.js";
import { PREFETCH_HEADROOM_BYTES, shouldPrefetch } from "../../src/model/prefetch.js";
import { Dsv4Model } from "../../src/model/transformer.js";
import type { LoadProgress } from "../../src/model/weights.js";
import { testDataDir } from "../helpers/paths.js";

const golden = join(testDataDir, "golden", "tiny-dspark-a");
const shard = resolve(golden, "model.safetensors");
const GiB = 2 ** 30;

function prefetchEvents(backend: NativeBackend | RefBackend, prefetch: "on" | "off"): LoadProgress[] {
  const events: LoadProgress[] = [];
  Dsv4Model.load(golden, { backend, prefetch, onProgress: (p) => events.push(p) }).close();
  return events.filter((p) => p.phase === "prefetch");
}

describe("prefetching the mapped weights at load", () => {
  test("auto prefetches a checkpoint that fits in available memory with the headroom to spare", () => {
    assert.equal(shouldPrefetch("auto", 10 * GiB, 10 * GiB + PREFETCH_HEADROOM_BYTES), true);
  });

  test("auto leaves a checkpoint larger than available memory less the headroom lazily paged", () => {
    assert.equal(shouldPrefetch("auto", 10 * GiB, 10 * GiB + PREFETCH_HEADROOM_BYTES - 1), false);
  });

  test("on and off override the memory check", () => {
    assert.equal(shouldPrefetch("on", 100 * GiB, 1 * GiB), true);
    assert.equal(shouldPrefetch("off", 1, 100 * GiB), false);
  });

  test("the native backend touches every page of each shard it mapped and reports it", () => {
    const events = prefetchEvents(new NativeBackend(), "on");
    assert.deepEqual(events, [{ phase: "prefetch", done: 1, total: 1, bytes: statSync(shard).size }]);
  });

  test("off skips it", () => {
    assert.deepEqual(prefetchEvents(new NativeBackend(), "off"), []);
  });

  test("a backend that maps nothing has nothing to prefetch", () => {
    assert.deepEqual(prefetchEvents(new RefBackend(), "on"), []);
  });

  test("a file the native backend has not mapped covers 0 bytes", () => {
    assert.equal(new NativeBackend().prefetchFile(resolve(testDataDir, "no-such-shard.safetensors")), 0);
  });
});
