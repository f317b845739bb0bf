import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
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

  test("flushCache empties both tiers: the files go, a restart finds nothing, the next request misses and answers the same", async () => {
    const cacheDir = tempDir("cache");
    const prompt = [...shared, ...promptIds(5, 4)];
    const e1 = await Engine.load(dir, { prefixCache: { blockTokens: 16, dir: cacheDir } });
    const cold = await e1.generate(greedy(prompt)).result();
    const flush = await e1.flushCache();
    assert.ok(flush.flushed && flush.entries > 0);
    assert.equal(e1.metrics().prefix_cache_entries, 0);
    assert.equal(e1.metrics().prefix_cache_disk_entries, 0);
    const again = await e1.generate(greedy(prompt)).result();
    assert.equal(again.usage.prompt_cache_hit_tokens, 0);
    assert.deepEqual(again.tokens, cold.tokens);
    assert.ok((await e1.flushCache()).flushed);
    await e1.dispose();
    const e2 = await Engine.load(dir, { prefixCache: { blockTokens: 16, dir: cacheDir } });
    try {
      assert.equal(e2.metrics().prefix_cache_disk_entries, 0, "no entry file outlived the flush");
    } finally {
      await e2.dispose();
    }
  });

  test("answers are cached as they are generated: the next turn, which re-sends the answer, hits past the prompt", async () => {
    const engine = await Engine.load(dir, { prefixCache: { blockTokens: 16 } });
    const plain = await Engine.load(dir, { prefixCache: { enabled: false } });
    try {
      const prompt = promptIds(100, 11);
      const first = await engine.generate(greedy(prompt, { max_tokens: 40 })).result();
      assert.equal(first.tokens.length, 40);
      // The state held the prompt and the first 39 generated tokens (the last one is never fed).
      const next = [...prompt, ...first.tokens, ...promptIds(7, 12)];
      const second = await engine.generate(greedy(next)).result();
      assert.equal(second.usage.prompt_cache_hit_tokens, Math.floor((100 + 39) / 16) * 16);
      assert.deepEqual(second.tokens, (await plain.generate(greedy(next)).result()).tokens);
    } finally {
      await engine.dispose();
      await plain.dispose();
    }
  });

  test("under a tight memory budget eviction takes leaves first, so the longest prefix that fits stays reachable", async () => {
    const probe = await Engine.load(dir, { prefillChunkTokens: 16, prefixCache: { blockTokens: 16 } });
    const prompt = promptIds(161, 13);
    await probe.generate(greedy(prompt, { max_tokens: 1 })).result();
    const perBlock = probe.metrics().prefix_cache_bytes / 10;
    await probe.dispose();
    // Room for about six of the prompt's ten blocks.
    const engine = await Engine.load(dir, { prefillChunkTokens: 16, prefixCache: { blockTokens: 16, memoryBytes: Math.floor(6.5 * perBlock) } });
    try {
      const cold = await engine.generate(greedy(prompt, { max_tokens: 1 })).result();
      // Another prompt comes meanwhile: making room for it takes this prompt's newest leaf, not its root.
      await engine.generate(greedy(promptIds(20, 20), { max_tokens: 1 })).result();
      const again = await engine.generate(greedy(prompt, { max_tokens: 1 })).result();
      assert.ok(again.usage.prompt_cache_hit_tokens >= 64, `hit ${again.usage.prompt_cache_hit_tokens} of 161`);
      assert.deepEqual(again.tokens, cold.tokens);
      assert.ok(engine.metrics().prefix_cache_bytes <= Math.floor(6.5 * perBlock) + perBlock, "memory stays near the budget");
    } finally {
      await engine.dispose();
    }
  });

  test("truncated, oversized and corrupted disk entries are dropped with one warning each; requests still get fresh answers", async () => {
    const cacheDir = tempDir("corrupt");
    const prompts = [0, 1, 2, 3].map((i) => [...shared, ...promptIds(30, 40 + i)]);
    const e1 = await Engine.load(dir, { prefixCache: { blockTokens: 16, dir: cacheDir } });
    const fresh: number[][] = [];
    for (const p of prompts) fresh.push((await e1.generate(greedy(p)).result()).tokens);
    await e1.dispose();
    const folder = join(cacheDir, readdirSync(cacheDir)[0]!);
    const files = readdirSync(folder).filter((f) => f.endsWith(".blk")).map((f) => join(folder, f)).sort((a, b) => statSync(b).size - statSync(a).size);
    assert.ok(files.length >= 4);
    truncateSync(files[0]!, Math.floor(statSync(files[0]!).size / 2));
    const flipped = readFileSync(files[1]!);
    flipped[flipped.length - 100]! ^= 0x40;
    writeFileSync(files[1]!, flipped);
    const grown = readFileSync(files[2]!);
    grown.writeUInt32LE(grown.readUInt32LE(8) * 10, 8); // the header-length field (cache-file.ts)
    writeFileSync(files[2]!, grown);
    writeFileSync(join(folder, "junk.txt"), "not a cache entry");
    writeFileSync(join(folder, `${"ab".repeat(32)}.blk`), Buffer.from([1, 2, 3]));
    symlinkSync(join(folder, "nowhere"), join(folder, `${"cd".repeat(32)}.blk`));
    mkdirSync(join(folder, `${"ef".repeat(32)}.blk`));

    const warnings: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => (warnings.push(String(chunk)), true)) as typeof process.stderr.write;
    let e2: Engine;
    try {
      e2 = await Engine.load(dir, { prefixCache: { blockTokens: 16, dir: cacheDir } });
      for (const [i, p] of prompts.entries()) {
        const r = await e2.generate(greedy(p)).result();
        assert.deepEqual(r.tokens, fresh[i], `prompt ${i}`);
      }
      const again = await Promise.all(prompts.map((p) => e2.generate(greedy(p)).result()));
      again.forEach((r, i) => assert.deepEqual(r.tokens, fresh[i]));
    } finally {
      process.stderr.write = write;
    }
    try {
      const entryWarnings = warnings.filter((w) => w.includes("prefix cache entry"));
      // The header-length one and the 3-byte file fail at start-up, the other two when read.
      assert.equal(entryWarnings.length, 4, entryWarnings.join(""));
      assert.ok(entryWarnings.every((w) => /unusable \(.+\); dropped/.test(w)));
    } finally {
      await e2!.dispose();
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
