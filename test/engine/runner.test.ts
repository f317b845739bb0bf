/**
 * The model runner: the worker thread and the inline runner carry out the same protocol
 * with the same results, errors in calls without a reply surface at the next step, and a
 * checkpoint that does not load is reported with the loader's own message.
 */
import assert from "node:assert/strict";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { startRunner, type Runner, type StepRequest } from "../../src/engine/runner/index.js";
import { BufferPool } from "../../src/engine/runner/transfer.js";
import { checkpoint, promptIds, tempDir } from "./helpers.js";
import { writeTinyCheckpoint } from "../../src/tiny/tiny.js";
import { requireNativeAddon } from "../../src/kernels/native/addon.js";
import { nativeSkip } from "../kernels/native-available.js";
import { smapsBytesOf } from "../helpers/smaps.js";

async function script(runner: Runner): Promise<Array<Float32Array | Float64Array>> {
  const out: Array<Float32Array | Float64Array> = [];
  runner.create(1);
  runner.create(2);
  const first: StepRequest[] = [
    { id: 1, tokens: promptIds(20, 1), logits: "last", residualLast: 2 },
    { id: 2, tokens: promptIds(7, 2), logits: "all", residualLast: 0, captureFrom: 0 },
  ];
  const a = await runner.step(first);
  assert.equal(a[0]!.length, 20);
  assert.equal(a[1]!.length, 7);
  assert.equal(a[0]!.residual.length, 2);
  assert.equal(a[1]!.logits.length, 7);
  assert.ok(a[1]!.block?.tip, "a capture was asked for");
  out.push(...a[0]!.logits, ...a[1]!.logits);
  // A verified draft that is dropped again, then the state restored from the captured delta.
  const b = await runner.step([{ id: 1, tokens: [5, 6, 8], logits: "all", residualLast: 0, saveTail: 2 }]);
  out.push(...b[0]!.logits);
  runner.dropTail(1, 2);
  const c = await runner.step([{ id: 1, tokens: [7], logits: "last", residualLast: 0 }]);
  assert.equal(c[0]!.length, 22);
  out.push(...c[0]!.logits);
  const drafts = await runner.draft([
    { kind: "mtp", id: 1, mtpLength: 18, entries: a[0]!.residual.map((hidden, k) => ({ hidden, token: 9 + k })), count: 3, wantLogits: true },
  ]);
  assert.equal(drafts[0]!.tokens.length, 3);
  out.push(...drafts[0]!.logits);
  runner.free(1);
  runner.free(2);
  return out;
}

describe("model runner", async () => {
  const dir = await checkpoint("micro");

  test("the worker thread and the inline runner give bit-identical logits for the same calls", async () => {
    const results = [];
    for (const kind of ["worker", "inline"] as const) {
      const runner = await startRunner(dir, { kind });
      try {
        results.push(await script(runner));
      } finally {
        await runner.close();
      }
    }
    const [worker, inline] = results;
    assert.equal(worker!.length, inline!.length);
    worker!.forEach((v, i) => assert.deepEqual(v, inline![i], `output ${i}`));
  });

  test("logits handed back (recycle) leave this thread, and the steps after them still give the inline runner's logits", async () => {
    const [worker, inline] = [await startRunner(dir, { kind: "worker" }), await startRunner(dir, { kind: "inline" })];
    try {
      const steps: StepRequest[][] = [
        [{ id: 1, tokens: promptIds(9, 1), logits: "all", residualLast: 0 }],
        [{ id: 1, tokens: [5, 6], logits: "all", residualLast: 0 }],
        [{ id: 1, tokens: [7], logits: "last", residualLast: 0 }, { id: 2, tokens: promptIds(4, 2), logits: "all", residualLast: 0 }],
      ];
      for (const r of [worker, inline]) {
        r.create(1);
        r.create(2);
      }
      for (const [i, requests] of steps.entries()) {
        const [w, want] = [await worker.step(requests), await inline.step(requests)];
        const got = w.flatMap((o) => o.logits);
        assert.deepEqual(got.map((row) => row.slice()), want.flatMap((o) => o.logits), `step ${i}`);
        worker.recycle(got);
        assert.ok(got.every((row) => row.length === 0), "recycled rows were transferred back to the runner thread");
      }
    } finally {
      await worker.close();
      await inline.close();
    }
  });

  test("a buffer pool hands a given buffer out again for a row of its size, with that row's values", () => {
    const pool = new BufferPool();
    const given = new ArrayBuffer(16);
    pool.give([given, new ArrayBuffer(8)]);
    const row = Float32Array.of(1, 2, 3, 4);
    const copy = pool.copy(row);
    assert.equal(copy.buffer, given);
    assert.deepEqual(copy, row);
    assert.notEqual(pool.copy(row).buffer, given, "a buffer is handed out once");
    assert.ok(pool.copy(Float64Array.of(9)) instanceof Float64Array);
  });

  test("an error in a call without a reply fails the next step, and the runner goes on", async () => {
    const runner = await startRunner(dir, { kind: "worker" });
    try {
      runner.create(1);
      runner.dropTail(1, 1); // nothing was saved
      await assert.rejects(runner.step([{ id: 1, tokens: [5], logits: "last", residualLast: 0 }]), /sequence 1 has no saved tail/);
      const ok = await runner.step([{ id: 1, tokens: [5], logits: "last", residualLast: 0 }]);
      assert.equal(ok[0]!.length, 1);
      await assert.rejects(runner.step([{ id: 7, tokens: [5], logits: "last", residualLast: 0 }]), /no sequence 7/);
    } finally {
      await runner.close();
    }
    await assert.rejects(runner.step([]), /closed/);
  });

  test("with the model on its own thread, a token reaches its reader after the next step was dispatched", async () => {
    const engine = await Engine.load(dir, { speculative: "off", prefixCache: { enabled: false } });
    try {
      const runner = (engine as unknown as { runner: { step: (r: StepRequest[]) => Promise<unknown> } }).runner;
      const step = runner.step.bind(runner);
      let dispatched = 0;
      runner.step = (r) => {
        dispatched++;
        return step(r);
      };
      const seen: number[] = [];
      for await (const e of engine.generate({ prompt_tokens: promptIds(6, 3), max_tokens: 6, temperature: 0 })) {
        if (e.type === "token") seen.push(dispatched);
      }
      // The prompt's step gives token 1; the step after token k is on its way when k is read,
      // so its writing overlaps that step (the last token has no step after it).
      assert.deepEqual(seen, [2, 3, 4, 5, 6, 6]);
    } finally {
      await engine.dispose();
    }
  });

  test("Engine.load with mlock has the runner thread lock every shard it mapped", { skip: nativeSkip() }, async (t) => {
    let engine: Engine;
    try {
      // Without repacking: repacked experts' mapped pages are unlocked and let go.
      engine = await Engine.load(dir, { backend: "native", mlock: true, repack: false, prefixCache: { enabled: false } });
    } catch (err) {
      assert.match((err as Error).message, /--mlock: could not lock .* in memory: .*ulimit -l/);
      t.diagnostic(`mlock refused here: ${(err as Error).message}`);
      return;
    }
    try {
      const shards = readdirSync(dir).filter((f) => f.endsWith(".safetensors")).map((f) => join(dir, f));
      assert.ok(shards.length > 0);
      for (const shard of shards) {
        const locked = smapsBytesOf(shard, "Locked");
        if (locked === null) return t.skip("no /proc/self/smaps here");
        assert.ok(locked >= statSync(shard).size, `${shard}: ${locked} of ${statSync(shard).size} bytes locked`);
      }
    } finally {
      await engine.dispose();
    }
  });

  test("Engine.load repacks the routed experts on the runner thread by default (their mapped pages let go), not with repack: false", { skip: nativeSkip() }, async (t) => {
    if (!requireNativeAddon().info().isa.startsWith("avx512")) return t.skip("only the AVX-512 tables repack");
    const mapped = async (repack: boolean | undefined) => {
      const engine = await Engine.load(dir, { backend: "native", ...(repack === undefined ? {} : { repack }), prefixCache: { enabled: false } });
      try {
        const shards = readdirSync(dir).filter((f) => f.endsWith(".safetensors")).map((f) => join(dir, f));
        return shards.map((shard) => smapsBytesOf(shard, "Rss"));
      } finally {
        await engine.dispose();
      }
    };
    const repacked = await mapped(undefined);
    const inPlace = await mapped(false);
    if (repacked.some((b) => b === null)) return t.skip("no /proc/self/smaps here");
    const sum = (xs: Array<number | null>) => xs.reduce<number>((a, b) => a + b!, 0);
    // Both loads read every page in (the prefetch); the repacked experts' whole pages then left
    // the mapping (this checkpoint's experts are small: about 200 KiB of them).
    assert.ok(sum(repacked) <= sum(inPlace) - 64 * 1024, `mapped and resident: ${sum(repacked)} repacked vs ${sum(inPlace)} in place`);
  });

  test("a checkpoint that fails to load on the runner thread rejects Engine.load with the loader's message", async () => {
    const bad = tempDir("bad-shard");
    await writeTinyCheckpoint(bad, { preset: "micro", seed: 3 });
    writeFileSync(join(bad, "model-00002-of-00005.safetensors"), Buffer.from([1, 2, 3]));
    await assert.rejects(Engine.load(bad, { prefixCache: { enabled: false } }), (e: Error) => {
      assert.match(e.message, /model-00002-of-00005\.safetensors/);
      return true;
    });
  });
});
