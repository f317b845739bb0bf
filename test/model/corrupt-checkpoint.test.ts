/**
 * Corrupted checkpoints, one class per row: each is refused by Engine.load (the path
 * `dsv4 serve` and `dsv4 run` take) with one message naming the file and the field or
 * tensor at fault, before any weight is allocated; no name in an index reaches a file
 * outside the model directory; the Hugging Face cache layout (snapshot files linked
 * to blobs) still loads.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { INDEX_FILE } from "../../src/formats/safetensors.js";
import { writeTinyCheckpoint } from "../../src/tiny/tiny.js";
import { repoRoot } from "../helpers/paths.js";

const root = mkdtempSync(join(tmpdir(), "dsv4-corrupt-ckpt-"));
after(() => rmSync(root, { recursive: true, force: true }));
const pristine = join(root, "pristine");
let copies = 0;

type Json = Record<string, any>;
const readJson = (path: string): Json => JSON.parse(readFileSync(path, "utf8")) as Json;
const writeJson = (path: string, v: unknown) => writeFileSync(path, JSON.stringify(v));
const shardOf = (dir: string, tensor: string): string => readJson(join(dir, INDEX_FILE)).weight_map[tensor] as string;

/** Rewrites a shard's JSON header, keeping the tensor bytes after it as they were. */
function editHeader(file: string, edit: (h: Json) => void): void {
  const bytes = readFileSync(file);
  const len = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + len).toString("utf8")) as Json;
  edit(header);
  // Padded with spaces (as safetensors allows) to a multiple of 8, like the writer's.
  const text = Buffer.from(JSON.stringify(header), "utf8");
  const padded = Buffer.concat([text, Buffer.alloc((8 - (text.length % 8)) % 8, " ")]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(padded.length));
  writeFileSync(file, Buffer.concat([length, padded, bytes.subarray(8 + len)]));
}

function setHeaderLength(file: string, length: bigint): void {
  const bytes = readFileSync(file);
  bytes.writeBigUInt64LE(length, 0);
  writeFileSync(file, bytes);
}

interface Corruption {
  name: string;
  corrupt(dir: string): void;
  /** What the message must contain: the file and the field or tensor. */
  names: (dir: string) => string[];
}

const NORM = "norm.weight";
const EMBED = "embed.weight";

const corruptions: Corruption[] = [
  { name: "config.json is not JSON", corrupt: (d) => writeFileSync(join(d, "config.json"), "{ nope"), names: (d) => [join(d, "config.json"), "not valid JSON"] },
  { name: "config.json is an array", corrupt: (d) => writeFileSync(join(d, "config.json"), "[1,2]"), names: (d) => [join(d, "config.json"), "not a JSON object"] },
  { name: "config.json is a directory", corrupt: (d) => { unlinkSync(join(d, "config.json")); mkdirSync(join(d, "config.json")); }, names: (d) => [join(d, "config.json"), "EISDIR"] },
  { name: "config.json lacks a key", corrupt: (d) => editConfig(d, (c) => delete c.hidden_size), names: (d) => [join(d, "config.json"), '"hidden_size"'] },
  { name: "config.json key of the wrong type", corrupt: (d) => editConfig(d, (c) => (c.num_hidden_layers = "2")), names: (d) => [join(d, "config.json"), '"num_hidden_layers"'] },
  { name: "n_routed_experts: 1e9", corrupt: (d) => editConfig(d, (c) => (c.n_routed_experts = 1e9)), names: (d) => [join(d, "config.json"), '"n_routed_experts"'] },
  { name: "n_routed_experts above the checkpoint's", corrupt: (d) => editConfig(d, (c) => (c.n_routed_experts = 4000)), names: () => ['"n_routed_experts"', "experts.3999.w1.weight"] },
  { name: "vocab_size 1e12", corrupt: (d) => editConfig(d, (c) => (c.vocab_size = 1e12)), names: (d) => [join(d, "config.json"), '"vocab_size"'] },
  { name: "vocab_size off by one", corrupt: (d) => editConfig(d, (c) => (c.vocab_size += 1)), names: () => ['"vocab_size"', EMBED] },
  { name: "num_hidden_layers above the checkpoint's", corrupt: (d) => editConfig(d, (c) => { c.num_hidden_layers += 1; c.compress_ratios.push(0); }), names: () => ['"num_hidden_layers"', "attn_norm.weight"] },
  { name: "index is not JSON", corrupt: (d) => writeFileSync(join(d, INDEX_FILE), "{"), names: (d) => [join(d, INDEX_FILE), "not valid JSON"] },
  { name: "weight_map is an array", corrupt: (d) => editIndex(d, (i) => (i.weight_map = [1])), names: (d) => [join(d, INDEX_FILE), '"weight_map"'] },
  { name: "weight_map is missing", corrupt: (d) => editIndex(d, (i) => delete i.weight_map), names: (d) => [join(d, INDEX_FILE), '"weight_map"'] },
  { name: "weight_map value is a number", corrupt: (d) => editIndex(d, (i) => (i.weight_map[NORM] = 3)), names: (d) => [join(d, INDEX_FILE), NORM] },
  { name: "weight_map escapes with ..", corrupt: (d) => editIndex(d, (i) => (i.weight_map[NORM] = "../../../../etc/passwd")), names: (d) => [join(d, INDEX_FILE), NORM, "path separator"] },
  { name: "weight_map names ..", corrupt: (d) => editIndex(d, (i) => (i.weight_map[NORM] = "..")), names: (d) => [join(d, INDEX_FILE), NORM] },
  { name: "weight_map names an absolute path", corrupt: (d) => editIndex(d, (i) => (i.weight_map[NORM] = "/etc/passwd")), names: (d) => [join(d, INDEX_FILE), NORM, "path separator"] },
  { name: "weight_map names a backslash path", corrupt: (d) => editIndex(d, (i) => (i.weight_map[NORM] = "..\\x.safetensors")), names: (d) => [join(d, INDEX_FILE), NORM] },
  { name: "index drops a tensor", corrupt: (d) => editIndex(d, (i) => delete i.weight_map[NORM]), names: () => [NORM, "missing"] },
  { name: "a shard is missing", corrupt: (d) => unlinkSync(join(d, shardOf(d, NORM))), names: (d) => [shardOf(d, NORM), "missing"] },
  { name: "a shard is a directory", corrupt: (d) => { const s = join(d, shardOf(d, NORM)); unlinkSync(s); mkdirSync(s); }, names: (d) => [shardOf(d, NORM), "a directory"] },
  { name: "a shard is a dangling symlink", corrupt: (d) => { const s = join(d, shardOf(d, NORM)); unlinkSync(s); symlinkSync(join(d, "gone"), s); }, names: (d) => [shardOf(d, NORM), "missing"] },
  { name: "a shard truncated to half", corrupt: (d) => { const s = join(d, shardOf(d, NORM)); truncateSync(s, Math.floor(readFileSync(s).length / 2)); }, names: (d) => [shardOf(d, NORM), "end of the file"] },
  { name: "a shard of 4 bytes", corrupt: (d) => truncateSync(join(d, shardOf(d, NORM)), 4), names: (d) => [shardOf(d, NORM), "too short"] },
  { name: "a header length x10", corrupt: (d) => { const s = join(d, shardOf(d, NORM)); setHeaderLength(s, readFileSync(s).readBigUInt64LE(0) * 10n); }, names: (d) => [shardOf(d, NORM), "header"] },
  { name: "a header length of 2^63", corrupt: (d) => setHeaderLength(join(d, shardOf(d, NORM)), 1n << 63n), names: (d) => [shardOf(d, NORM), "header length"] },
  { name: "a header that is not JSON", corrupt: (d) => { const s = join(d, shardOf(d, NORM)); const b = readFileSync(s); b.write("!", 8); writeFileSync(s, b); }, names: (d) => [shardOf(d, NORM), "not valid JSON"] },
  { name: "a wrong dtype", corrupt: (d) => editHeader(join(d, shardOf(d, NORM)), (h) => (h[NORM].dtype = "F16")), names: (d) => [shardOf(d, NORM), NORM, "F16"] },
  { name: "an unknown dtype", corrupt: (d) => editHeader(join(d, shardOf(d, NORM)), (h) => (h[NORM].dtype = "Q4")), names: (d) => [shardOf(d, NORM), NORM, "dtype"] },
  { name: "a wrong shape (same bytes)", corrupt: (d) => editHeader(join(d, shardOf(d, EMBED)), (h) => h[EMBED].shape.reverse()), names: (d) => [shardOf(d, EMBED), EMBED] },
  { name: "offsets that do not match the shape", corrupt: (d) => editHeader(join(d, shardOf(d, NORM)), (h) => (h[NORM].data_offsets[1] -= 2)), names: (d) => [shardOf(d, NORM), NORM, "data_offsets"] },
  { name: "offsets past the end of the file", corrupt: (d) => editHeader(join(d, shardOf(d, NORM)), (h) => (h[NORM].data_offsets = h[NORM].data_offsets.map((o: number) => o + 10_000_000))), names: (d) => [shardOf(d, NORM), NORM, "past the end"] },
  { name: "overlapping offsets", corrupt: (d) => overlap(join(d, shardOf(d, NORM))), names: (d) => [shardOf(d, NORM), "overlaps"] },
  { name: "a tensor missing from its shard", corrupt: (d) => editHeader(join(d, shardOf(d, NORM)), (h) => { h["norm.weightX"] = h[NORM]; delete h[NORM]; }), names: (d) => [shardOf(d, NORM), NORM] },
  { name: "tokenizer.json is garbage", corrupt: (d) => writeFileSync(join(d, "tokenizer.json"), "\u0000garbage"), names: (d) => [join(d, "tokenizer.json"), "not valid JSON"] },
  { name: "tokenizer.json is the wrong object", corrupt: (d) => writeFileSync(join(d, "tokenizer.json"), '{"model":{"vocab":7}}'), names: (d) => [join(d, "tokenizer.json")] },
];

function editConfig(dir: string, edit: (c: Json) => void): void {
  const c = readJson(join(dir, "config.json"));
  edit(c);
  writeJson(join(dir, "config.json"), c);
}

function editIndex(dir: string, edit: (i: Json) => void): void {
  const i = readJson(join(dir, INDEX_FILE));
  edit(i);
  writeJson(join(dir, INDEX_FILE), i);
}

/** Moves the second tensor of a shard onto the first one's bytes (same length needed: pick two equal). */
function overlap(file: string): void {
  editHeader(file, (h) => {
    const entries = Object.entries(h).filter(([k]) => k !== "__metadata__") as Array<[string, Json]>;
    const bySize = new Map<number, Json>();
    for (const [, e] of entries) {
      const size = e.data_offsets[1] - e.data_offsets[0];
      const twin = bySize.get(size);
      if (twin && size > 0) {
        e.data_offsets = [...twin.data_offsets];
        return;
      }
      bySize.set(size, e);
    }
    throw new Error("no two tensors of one size in the shard");
  });
}

function copyOf(): string {
  const dir = join(root, `c${copies++}`);
  cpSync(pristine, dir, { recursive: true });
  return dir;
}

const load = (dir: string) => Engine.load(dir, { shardDigestsFile: null, speculative: { enabled: false } });

before(async () => {
  await writeTinyCheckpoint(pristine, { preset: "micro" });
});

describe("corrupted checkpoints are refused with one line naming the file and the field", () => {
  for (const c of corruptions) {
    test(c.name, async () => {
      const dir = copyOf();
      c.corrupt(dir);
      const started = performance.now();
      const err = await load(dir).then(
        async (engine) => {
          await engine.dispose();
          return null;
        },
        (e: unknown) => e as Error,
      );
      assert.ok(err, "the corrupted checkpoint loaded");
      const message = err.message;
      assert.ok(!message.includes("\n"), `one line: ${message}`);
      for (const part of c.names(dir)) assert.ok(message.includes(part), `the message should name ${JSON.stringify(part)}: ${message}`);
      // Loose: a refusal reads headers only; a hang or a huge allocation would take far longer.
      assert.ok(performance.now() - started < 5000, `refused after ${Math.round(performance.now() - started)} ms`);
    });
  }

  test("no index name reaches a file outside the model directory", async () => {
    const dir = copyOf();
    const outside = join(root, "outside.safetensors");
    cpSync(join(dir, shardOf(dir, NORM)), outside);
    editIndex(dir, (i) => (i.weight_map[NORM] = "../outside.safetensors"));
    await assert.rejects(load(dir), (e: Error) => e.message.includes("path separator") && e.message.includes(join(dir, INDEX_FILE)));
  });
});

describe("the Hugging Face cache layout", () => {
  test("a snapshot whose files are symlinks to blobs loads", async () => {
    const repo = join(root, "hf", "models--x--micro");
    const blobs = join(repo, "blobs");
    const snapshot = join(repo, "snapshots", "0123abcd");
    mkdirSync(blobs, { recursive: true });
    mkdirSync(snapshot, { recursive: true });
    for (const [k, name] of readdirSync(pristine).entries()) {
      const blob = join(blobs, `blob${k}`);
      cpSync(join(pristine, name), blob);
      symlinkSync(join("..", "..", "blobs", `blob${k}`), join(snapshot, name));
    }
    const engine = await load(snapshot);
    await engine.dispose();
  });
});

describe("dsv4 on a corrupted checkpoint", () => {
  test("prints one dsv4: error: line, no stack, and exits non-zero", () => {
    const dir = copyOf();
    editIndex(dir, (i) => (i.weight_map[NORM] = "../../../../etc/passwd"));
    const r = spawnSync(process.execPath, [join(repoRoot, "dist", "src", "cli", "main.js"), "run", "--model", dir, "--max-tokens", "1", "hi"], {
      encoding: "utf8",
      env: { ...process.env, DSV4_HOME: join(root, "home"), DSV4_DEBUG: "" },
      timeout: 30_000,
    });
    assert.notEqual(r.status, 0);
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "" && !l.includes("\r"));
    const errors = lines.filter((l) => l.startsWith("dsv4: error:"));
    assert.equal(errors.length, 1, r.stderr);
    assert.ok(errors[0]!.includes(INDEX_FILE) && errors[0]!.includes(NORM), errors[0]);
    assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace: ${r.stderr}`);
  });
});
