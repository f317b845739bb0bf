import assert from "node:assert/strict";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { nativeSkip } from "../kernels/native-available.js";
import { checkpoint, promptIds, tempDir } from "./helpers.js";

/** The cache's per-identity folders (the shard digest file lives beside them). */
const cacheFolders = (dir: string) => readdirSync(dir).filter((f) => statSync(join(dir, f)).isDirectory());

const greedy = (prompt: number[], extra: object = {}) => ({ prompt_tokens: prompt, max_tokens: 8, temperature: 0, speculative: false, ...extra });

describe("prefix cache", async () => {
  const dir = await checkpoint("micro");
  const shared = promptIds(100, 7);

  test("a greedy generation with a cache hit equals one without; usage reports hit and miss tokens", async () => {
    const engine = await Engine.load(dir, { prefillChunkTokens: 32, prefixCache: { blockTokens: 16 } });
    const plain = await Engine.load(dir, { prefixCache: { enabled: false } });
    try {
      const a = [...shared, ...promptIds(9, 1)];
      const b = [...shared, ...promptIds(23, 2)];
      const first = await engine.generate(greedy(a)).result();
      assert.equal(first.usage.prompt_cache_hit_tokens, 0);
      assert.equal(first.usage.prompt_cache_miss_tokens, a.length);

      const again = await engine.generate(greedy(a)).result();
      assert.equal(again.usage.prompt_cache_hit_tokens, 96, "the last block boundary before the end");
      assert.equal(again.usage.prompt_cache_hit_tokens + again.usage.prompt_cache_miss_tokens, a.length);
      assert.deepEqual(again.tokens, first.tokens);

      const other = await engine.generate(greedy(b)).result();
      assert.equal(other.usage.prompt_cache_hit_tokens, 96);
      assert.deepEqual(other.tokens, (await plain.generate(greedy(b)).result()).tokens);

      // Isolation: another user_id never sees these entries.
      const isolated = await engine.generate(greedy(a, { user_id: "someone-else" })).result();
      assert.equal(isolated.usage.prompt_cache_hit_tokens, 0);
      assert.deepEqual(isolated.tokens, first.tokens);
      assert.ok(engine.metrics().prefix_cache_entries > 0);
    } finally {
      await engine.dispose();
      await plain.dispose();
    }
  });

  test("the disk cache survives a restart and is never used by another model", async () => {
    const cacheDir = tempDir("cache");
    const prompt = [...shared, ...promptIds(5, 3)];
    const e1 = await Engine.load(dir, { prefixCache: { blockTokens: 16, dir: cacheDir } });
    const cold = await e1.generate(greedy(prompt)).result();
    await e1.dispose();
    assert.deepEqual(cacheFolders(cacheDir).length, 1, "one folder per model identity");

    const e2 = await Engine.load(dir, { prefixCache: { blockTokens: 16, dir: cacheDir } });
    try {
      assert.ok(e2.metrics().prefix_cache_disk_entries > 0);
      const warm = await e2.generate(greedy(prompt)).result();
      assert.equal(warm.usage.prompt_cache_hit_tokens, 96);
      assert.deepEqual(warm.tokens, cold.tokens);
    } finally {
      await e2.dispose();
    }

    // Same architecture and config, other weights: identical headers, different identity.
    const otherDir = await checkpoint("micro", 2);
    const e3 = await Engine.load(otherDir, { prefixCache: { blockTokens: 16, dir: cacheDir } });
    const ref = await Engine.load(otherDir, { prefixCache: { enabled: false } });
    try {
      assert.equal(e3.metrics().prefix_cache_disk_entries, 0);
      const r = await e3.generate(greedy(prompt)).result();
      assert.equal(r.usage.prompt_cache_hit_tokens, 0);
      assert.deepEqual(r.tokens, (await ref.generate(greedy(prompt)).result()).tokens);
      assert.notEqual(e3.model.identity, (await Engine.load(dir, { prefixCache: { enabled: false } }).then(async (e) => { const id = e.model.identity; await e.dispose(); return id; })));
    } finally {
      await e3.dispose();
      await ref.dispose();
    }
  });

  test("the float64 reference and the float32 native backend never restore each other's entries", { skip: nativeSkip() }, async () => {
    const cacheDir = tempDir("cache");
    const prompt = [...shared, ...promptIds(5, 4)];
    const load = (backend: string) => Engine.load(dir, { backend, prefixCache: { blockTokens: 16, dir: cacheDir } });
    const ref1 = await load("ref");
    const refCold = await ref1.generate(greedy(prompt)).result();
    await ref1.dispose();

    const native1 = await load("native");
    try {
      assert.equal(native1.metrics().prefix_cache_disk_entries, 0, "the reference's entries are not offered to the native backend");
      const r = await native1.generate(greedy(prompt)).result();
      assert.equal(r.usage.prompt_cache_hit_tokens, 0);
    } finally {
      await native1.dispose();
    }
    assert.equal(cacheFolders(cacheDir).length, 2, "one folder per (model, precision)");

    // Each backend still finds its own entries on disk.
    for (const backend of ["native", "ref"]) {
      const e = await load(backend);
      try {
        const r = await e.generate(greedy(prompt)).result();
        assert.equal(r.usage.prompt_cache_hit_tokens, 96, backend);
        if (backend === "ref") assert.deepEqual(r.tokens, refCold.tokens);
      } finally {
        await e.dispose();
      }
    }
  });
});
