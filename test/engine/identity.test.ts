import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { cacheIdentity, modelIdentity, precisionOf, shardDigestsFile } from "../../src/engine/identity.js";
import { hashFile } from "../../src/engine/shard-digests.js";
import type { LoadProgress } from "../../src/engine/types.js";
import { checkpoint, tempDir } from "./helpers.js";

const MiB = 1 << 20;

/** A minimal valid safetensors file: one U8 tensor of `n` bytes filled by `fill`. */
function shard(path: string, n: number, fill: (i: number) => number): void {
  const header = Buffer.from(JSON.stringify({ w: { dtype: "U8", shape: [n], data_offsets: [0, n] } }), "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  const data = Buffer.alloc(n);
  for (let i = 0; i < n; i++) data[i] = fill(i);
  writeFileSync(path, Buffer.concat([len, header, data]));
}

/** config.json + two 3 MiB shards: bigger than the 1 MiB head and tail the old identity sampled. */
function fakeCheckpoint(): string {
  const dir = tempDir("ckpt");
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "deepseek_v4", hidden_size: 8 }));
  shard(join(dir, "model-00001-of-00002.safetensors"), 3 * MiB, (i) => (i * 31) & 255);
  shard(join(dir, "model-00002-of-00002.safetensors"), 3 * MiB, (i) => (i * 17 + 5) & 255);
  const weight_map = { a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors" };
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map }));
  return dir;
}

/** Flips one byte in the middle of a file, in place (same size, same inode). */
function flipMiddle(path: string): void {
  const b = readFileSync(path);
  b[b.length >> 1]! ^= 1;
  writeFileSync(path, b);
}

/** Runs modelIdentity and records what it hashed and warned. */
async function identify(dir: string, digestFile: string | null) {
  let hashed = 0;
  let total = 0;
  const warnings: string[] = [];
  const id = await modelIdentity(dir, {
    digestFile,
    onProgress: (p) => {
      hashed = p.hashed;
      total = p.total;
    },
    warn: (m) => warnings.push(m),
  });
  return { id, hashed, total, warnings };
}

describe("model identity", () => {
  test("one flipped byte in the middle of a shard changes the identity; flipping it back restores it", async () => {
    const dir = fakeCheckpoint();
    const shardPath = join(dir, "model-00002-of-00002.safetensors");
    const a = await identify(dir, null);
    assert.equal(a.total, 6 * MiB + 2 * (8 + readFileSync(shardPath).readUInt32LE(0)), "every byte of every shard is hashed");
    assert.equal(a.hashed, a.total);
    flipMiddle(shardPath);
    const b = await identify(dir, null);
    assert.notEqual(b.id, a.id);
    flipMiddle(shardPath);
    assert.equal((await identify(dir, null)).id, a.id);
  });

  test("only the checkpoint's shards count: a stray copy or a folder named like a shard changes nothing", async () => {
    const dir = fakeCheckpoint();
    const before = await modelIdentity(dir, { digestFile: null, warn: () => {} });
    shard(join(dir, "model-00003-of-00002.safetensors"), MiB, () => 1);
    mkdirSync(join(dir, "junk.safetensors"));
    assert.equal(await modelIdentity(dir, { digestFile: null, warn: () => {} }), before);
  });

  test("config.json and shard names are part of it", async () => {
    const dir = fakeCheckpoint();
    const a = await identify(dir, null);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "deepseek_v4", hidden_size: 9 }));
    assert.notEqual((await identify(dir, null)).id, a.id);
  });

  test("digests are remembered: an unchanged shard is not read again; a rewritten one is, and changes the identity", async () => {
    const dir = fakeCheckpoint();
    const file = join(tempDir("home"), "sub", "shard-digests.json");
    const first = await identify(dir, file);
    assert.ok(first.total > 6 * MiB);
    assert.ok(existsSync(file), "the digest file is written (its folder created)");
    const stored = JSON.parse(readFileSync(file, "utf8"));
    assert.equal(stored.format, "dsv4-shard-digests-v1");
    assert.equal(Object.keys(stored.shards).length, 2);

    const second = await identify(dir, file);
    assert.equal(second.id, first.id);
    assert.equal(second.total, 0, "nothing hashed on the second load");
    assert.deepEqual(second.warnings, []);

    const shardPath = join(dir, "model-00001-of-00002.safetensors");
    flipMiddle(shardPath);
    const third = await identify(dir, file);
    assert.notEqual(third.id, first.id);
    assert.equal(third.total, readFileSync(shardPath).length, "only the rewritten shard is hashed");
    assert.equal((await identify(dir, null)).id, third.id, "remembered digests give the same identity as a full hash");
  });

  for (const [name, text] of [
    ["not JSON", "{ this is not json"],
    ["the wrong shape", JSON.stringify({ format: "dsv4-shard-digests-v1", shards: { "/x.safetensors": { size: 1, sha256: "zz" } } })],
    ["another format", JSON.stringify([1, 2, 3])],
  ] as const) {
    test(`a digest file that is ${name} is ignored with one warning and rebuilt`, async () => {
      const dir = fakeCheckpoint();
      const file = join(tempDir("home"), "shard-digests.json");
      writeFileSync(file, text);
      const r = await identify(dir, file);
      assert.equal(r.id, (await identify(dir, null)).id);
      assert.ok(r.total > 0, "everything hashed");
      assert.equal(r.warnings.length, 1, r.warnings.join("\n"));
      assert.match(r.warnings[0]!, /shard-digests\.json: .*ignoring it/);
      assert.equal(JSON.parse(readFileSync(file, "utf8")).format, "dsv4-shard-digests-v1", "rebuilt");
      assert.equal((await identify(dir, file)).total, 0);
    });
  }

  test("the digest file drops stale entries of the same folder but keeps other folders' (an unmounted disk is not a deleted one)", async () => {
    const dir = fakeCheckpoint();
    const file = join(tempDir("home"), "shard-digests.json");
    const away = { size: 1, mtimeNs: "1", ino: "1", dev: "1", sha256: "0".repeat(64) };
    writeFileSync(file, JSON.stringify({
      format: "dsv4-shard-digests-v1",
      shards: { "/mnt/offline/model-00001.safetensors": away, [join(realpathSync(dir), "deleted.safetensors")]: away },
    }));
    await identify(dir, file);
    const kept = Object.keys(JSON.parse(readFileSync(file, "utf8")).shards);
    assert.ok(kept.includes("/mnt/offline/model-00001.safetensors"));
    assert.ok(!kept.some((p) => p.endsWith("deleted.safetensors")));
    assert.equal(kept.length, 3);
  });

  test("an unwritable digest location costs one warning and a re-hash next time, never the load", async () => {
    const dir = fakeCheckpoint();
    const blocker = join(tempDir("home"), "file");
    writeFileSync(blocker, "");
    const r = await identify(dir, join(blocker, "shard-digests.json"));
    assert.equal(r.id, (await identify(dir, null)).id);
    assert.equal(r.warnings.length, 1, r.warnings.join("\n"));
    assert.match(r.warnings[0]!, /cannot remember shard digests/);
  });

  test("hashFile reads across chunk boundaries and equals a one-shot SHA-256; the event loop turns meanwhile", async () => {
    const dir = tempDir("hash");
    const path = join(dir, "big.bin");
    const data = Buffer.alloc(3 * 4 * MiB + 12345);
    for (let i = 0; i < data.length; i += 4096) data[i] = (i / 4096) & 255;
    writeFileSync(path, data);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    let seen = 0;
    const r = await hashFile(path, (n) => (seen += n));
    clearInterval(timer);
    assert.equal(r.sha256, createHash("sha256").update(data).digest("hex"));
    assert.equal(seen, data.length);
    assert.equal(r.stable, true);
    assert.ok(ticks > 0, "timers ran while the file was hashed");
  });

  test("the cache identity includes the precision", () => {
    assert.equal(precisionOf(4), "f32");
    assert.equal(precisionOf(8), "f64");
    const id = "a".repeat(64);
    assert.notEqual(cacheIdentity(id, "f32"), cacheIdentity(id, "f64"));
    assert.notEqual(cacheIdentity(id, "f32"), cacheIdentity("b".repeat(64), "f32"));
    assert.equal(cacheIdentity(id, "f32"), cacheIdentity(id, "f32"));
  });

  test("shard digests live beside the cache, else under the dsv4 home", () => {
    assert.equal(shardDigestsFile("/c"), join("/c", "shard-digests.json"));
    const saved = process.env.DSV4_HOME;
    process.env.DSV4_HOME = "/h";
    try {
      assert.equal(shardDigestsFile(), join("/h", "shard-digests.json"));
    } finally {
      if (saved === undefined) delete process.env.DSV4_HOME;
      else process.env.DSV4_HOME = saved;
    }
  });

  test("Engine.load reports identity progress on the first load and hashes nothing on the second", async () => {
    const dir = await checkpoint("micro");
    const cacheDir = tempDir("cache");
    mkdirSync(cacheDir, { recursive: true });
    const phases = async () => {
      const seen: LoadProgress[] = [];
      const e = await Engine.load(dir, { prefixCache: { dir: cacheDir }, onProgress: (p) => seen.push(p) });
      await e.dispose();
      return seen.filter((p) => p.phase === "identity");
    };
    const first = await phases();
    assert.ok(first.length > 0 && first[first.length - 1]!.loaded === first[first.length - 1]!.total && first[0]!.total > 0);
    assert.ok(existsSync(join(cacheDir, "shard-digests.json")), "remembered beside the cache");
    assert.deepEqual(await phases(), [], "no shard is hashed again");
  });
});
