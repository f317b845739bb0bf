/**
 * Corrupted prefix-cache directories, one class per row: a server started on each
 * starts, answers 200, and its answers equal a fresh server's. The directory is first
 * filled by a real run; each row damages a copy (entries rewritten with a valid checksum
 * but a wrong header, truncated or padded files, junk, links, a FIFO, cycles).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isEntryError, readEntry, writeEntry } from "../../src/engine/cache-file.js";
import { MODEL, realServer } from "./helpers.js";
import { httpRequest, rawRequest } from "./raw-http.js";

const root = mkdtempSync(join(tmpdir(), "dsv4-corrupt-cache-"));
after(() => rmSync(root, { recursive: true, force: true }));
const filled = join(root, "filled");
let copies = 0;

const words = (seed: number, n: number) => Array.from({ length: n }, (_, i) => `w${(seed * 7919 + i * 104729) % 997}`).join(" ");
const LONG = words(1, 300);
const PROMPTS = [LONG, `${LONG} ${words(2, 60)}`, words(3, 200)];

async function answers(cacheDir: string | undefined): Promise<string[]> {
  const server = await realServer(cacheDir ? { prefixCache: { dir: cacheDir } } : {});
  try {
    const out: string[] = [];
    for (const prompt of PROMPTS) {
      const body = { model: MODEL, messages: [{ role: "user", content: prompt }], max_tokens: 4, temperature: 0, thinking: { type: "disabled" } };
      const r = await rawRequest(server.port, httpRequest("POST", "/chat/completions", JSON.stringify(body), { "content-type": "application/json" }));
      assert.equal(r.status, 200, r.body);
      out.push(r.json.choices[0].message.content as string);
    }
    return out;
  } finally {
    await server.close();
  }
}

/** The folder of entries (one per cache identity) inside a cache directory. */
const entryFolder = (dir: string): string => {
  const sub = readdirSync(dir).filter((n) => statSync(join(dir, n)).isDirectory());
  assert.equal(sub.length, 1, `one identity folder in ${dir}`);
  return join(dir, sub[0]!);
};
const entries = (dir: string): string[] => readdirSync(entryFolder(dir)).filter((n) => /^[0-9a-f]{64}\.blk$/.test(n)).sort().map((n) => join(entryFolder(dir), n));
const keyOf = (file: string) => file.slice(-68, -4);

function headerOf(file: string): Record<string, any> {
  const r = readEntry(file);
  assert.ok(!isEntryError(r), isEntryError(r) ? r.error : "");
  return r.header;
}

/** Rewrites an entry with a changed header and a valid checksum: only the header's meaning is wrong. */
async function rewrite(file: string, edit: (h: Record<string, any>) => void): Promise<void> {
  const r = readEntry(file);
  assert.ok(!isEntryError(r));
  edit(r.header);
  await writeEntry(file, r.header, r.payload);
}

/** An entry with a parent (or the first one, when none has). */
const child = (dir: string): string => entries(dir).find((f) => headerOf(f).parent !== null) ?? entries(dir)[0]!;
const rootEntry = (dir: string): string => entries(dir).find((f) => headerOf(f).parent === null)!;

interface Damage {
  name: string;
  damage(dir: string): void | Promise<void>;
}

const DAMAGES: Damage[] = [
  { name: "an entry whose parent is itself", damage: (d) => rewrite(child(d), (h) => (h.parent = h.key)) },
  { name: "two entries that are each other's parent", damage: async (d) => {
    const [a, b] = entries(d);
    await rewrite(a!, (h) => (h.parent = keyOf(b!)));
    await rewrite(b!, (h) => (h.parent = keyOf(a!)));
  } },
  { name: "a header with an empty layers list", damage: (d) => rewrite(child(d), (h) => (h.layers = [])) },
  { name: "a header with an extra layer", damage: (d) => rewrite(child(d), (h) => h.layers.push(h.layers[0])) },
  { name: "a header whose layers are null", damage: (d) => rewrite(child(d), (h) => (h.layers = h.layers.map(() => null))) },
  { name: "a header with a wrong token range", damage: (d) => rewrite(child(d), (h) => (h.end += 1)) },
  { name: "a header naming another key", damage: (d) => rewrite(child(d), (h) => (h.key = "0".repeat(64))) },
  { name: "a header for another model identity", damage: (d) => rewrite(child(d), (h) => (h.identity = "f".repeat(64))) },
  { name: "array kinds of the other precision", damage: (d) => rewrite(child(d), (h) => (h.arrays = h.arrays.map((k: string) => (k === "f32" ? "f64" : k === "f64" ? "f32" : k)))) },
  { name: "a missing parent", damage: (d) => unlinkSync(rootEntry(d)) },
  { name: "an entry truncated to half", damage: (d) => truncateSync(child(d), Math.floor(statSync(child(d)).size / 2)) },
  { name: "an entry with bytes appended", damage: (d) => writeFileSync(child(d), Buffer.concat([readFileSync(child(d)), Buffer.alloc(64)])) },
  { name: "a header length x10", damage: (d) => { const f = child(d); const b = readFileSync(f); b.writeUInt32LE(b.readUInt32LE(8) * 10, 8); writeFileSync(f, b); } },
  { name: "a flipped payload byte (checksum mismatch)", damage: (d) => { const f = child(d); const b = readFileSync(f); b[b.length - 3] ^= 0xff; writeFileSync(f, b); } },
  { name: "a wrong magic", damage: (d) => { const f = child(d); const b = readFileSync(f); b.write("NOTDSV4!", 0, "latin1"); writeFileSync(f, b); } },
  { name: "an empty entry", damage: (d) => writeFileSync(child(d), "") },
  { name: "an entry of random bytes", damage: (d) => writeFileSync(child(d), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 0xff))) },
  { name: "a sparse 1 GiB entry", damage: (d) => truncateSync(child(d), 1 << 30) },
  { name: "junk files beside the entries", damage: (d) => {
    const f = entryFolder(d);
    writeFileSync(join(f, "notes.txt"), "junk");
    writeFileSync(join(f, "x.blk"), "junk");
    writeFileSync(join(f, `${"a".repeat(64)}.blk.123.abcd.tmp`), "half a write");
    writeFileSync(join(d, "stray"), "junk");
  } },
  { name: "dangling symlinks", damage: (d) => {
    symlinkSync(join(root, "nowhere"), join(entryFolder(d), `${"b".repeat(64)}.blk`));
    symlinkSync(join(root, "nowhere"), join(entryFolder(d), "link"));
    symlinkSync(join(root, "nowhere"), join(d, "link"));
  } },
  { name: "an entry replaced by a symlink to itself elsewhere", damage: (d) => { const f = child(d); const moved = join(d, "moved.blk"); cpSync(f, moved); unlinkSync(f); symlinkSync(moved, f); } },
  { name: "a directory named as an entry", damage: (d) => mkdirSync(join(entryFolder(d), `${"c".repeat(64)}.blk`)) },
  { name: "a FIFO named as an entry", damage: (d) => execFileSync("mkfifo", [join(entryFolder(d), `${"d".repeat(64)}.blk`)]) },
  { name: "an unreadable entry", damage: (d) => chmodSync(child(d), 0) },
  { name: "the identity folder replaced by a file", damage: (d) => { const f = entryFolder(d); rmSync(f, { recursive: true }); writeFileSync(f, "not a folder"); } },
  { name: "the identity folder replaced by a dangling symlink", damage: (d) => { const f = entryFolder(d); rmSync(f, { recursive: true }); symlinkSync(join(root, "nowhere"), f); } },
  { name: "a garbage shard-digests file", damage: (d) => writeFileSync(join(d, "shard-digests.json"), "{garbage") },
];

let fresh: string[];

before(async () => {
  fresh = await answers(undefined);
  assert.deepEqual(await answers(filled), fresh, "a cache being filled must not change the answers");
  assert.ok(entries(filled).length >= 3, `the run should have written entries (found ${entries(filled).length})`);
  assert.ok(entries(filled).some((f) => headerOf(f).parent !== null), "some entry should have a parent");
});

describe("a corrupted cache directory: the server starts, answers 200, and answers as a fresh one", () => {
  test("the intact directory (cache hits) answers as a fresh server", async () => {
    const dir = join(root, `c${copies++}`);
    cpSync(filled, dir, { recursive: true });
    assert.deepEqual(await answers(dir), fresh);
  });
  for (const row of DAMAGES) {
    test(row.name, async () => {
      const dir = join(root, `c${copies++}`);
      cpSync(filled, dir, { recursive: true });
      await row.damage(dir);
      assert.deepEqual(await answers(dir), fresh);
    });
  }
});
