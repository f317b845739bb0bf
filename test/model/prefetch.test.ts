import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, test } from "node:test";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { RefBackend } from "../../src/kernels/ref/index.js";
import type { Backend } from "../../src/kernels/backend.js";
import { lockCheckpoint, PREFETCH_HEADROOM_BYTES, shouldPrefetch } from "../../src/model/prefetch.js";
import { Checkpoint } from "../../src/formats/safetensors.js";
import { Dsv4Model } from "../../src/model/transformer.js";
import type { LoadProgress } from "../../src/model/weights.js";
import { testDataDir } from "../helpers/paths.js";
import { smapsBytesOf } from "../helpers/smaps.js";

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

describe("locking the mapped weights in memory (--mlock)", () => {
  test("the native backend locks every page of each shard it mapped, or loading names the limit that stopped it", (t) => {
    let model: Dsv4Model;
    try {
      // Without repacking: repacked experts' mapped pages are unlocked and let go (their copies
      // are locked instead), and this counts the mapping's.
      model = Dsv4Model.load(golden, { backend: new NativeBackend(), mlock: true, repack: false });
    } catch (err) {
      // Not root and a locked-memory limit below the shard: the error must say what to raise.
      assert.match((err as Error).message, /--mlock: could not lock .*model\.safetensors in memory: mlock of \d+ bytes failed: .*ulimit -l/);
      t.diagnostic(`mlock refused here: ${(err as Error).message}`);
      return;
    }
    try {
      const locked = smapsBytesOf(shard, "Locked");
      if (locked === null) return t.skip("no /proc/self/smaps here");
      assert.ok(locked >= statSync(shard).size, `${locked} of ${statSync(shard).size} bytes locked`);
    } finally {
      model.close();
    }
  });

  test("a lock that fails names the shard, the cause and how to raise the limit", () => {
    const ckpt = Checkpoint.open(golden);
    const backend = { lockFile: () => "mlock of 123 bytes failed: Cannot allocate memory (the locked-memory limit, ulimit -l, is 8192 KiB)" } as unknown as Backend;
    try {
      assert.throws(() => lockCheckpoint(ckpt, backend), (err: Error) => {
        assert.match(err.message, /^--mlock: could not lock .*model\.safetensors in memory: mlock of 123 bytes failed: Cannot allocate memory/);
        assert.match(err.message, /ulimit -l unlimited/);
        assert.match(err.message, /leave out --mlock/);
        return true;
      });
    } finally {
      ckpt.close();
    }
  });

  test("a checkpoint larger than the memory available is refused before anything is locked", () => {
    const ckpt = Checkpoint.open(golden);
    let asked = false;
    const backend = { lockFile: () => ((asked = true), null) } as unknown as Backend;
    try {
      assert.throws(() => lockCheckpoint(ckpt, backend, ckpt.totalBytes()), /^Error: --mlock: the checkpoint \(0\.0 GB\) does not fit in the memory available/);
      assert.equal(asked, false);
    } finally {
      ckpt.close();
    }
  });

  test("a backend that maps nothing loads the same with mlock", () => {
    Dsv4Model.load(golden, { backend: new RefBackend(), mlock: true }).close();
  });
});
