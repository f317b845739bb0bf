import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, readFileSync, readdirSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { after } from "node:test";
import { BlockStore } from "../../src/engine/cache-disk.js";
import { createBackend } from "../../src/kernels/index.js";
import { captureBlock, type StateBlock } from "../../src/model/state-blocks.js";
import { Dsv4Model } from "../../src/model/transformer.js";
import { isEntryError, MAX_ENVELOPE_BYTES, readEntry, writeEntry } from "../../src/engine/cache-file.js";
import { checkpoint, promptIds, tempDir } from "./helpers.js";

const header = { kind: "test", tokens: 64, note: "é" };
const parts = () => [Uint8Array.from([1, 2, 3]), new Uint8Array(new Float64Array([0.5, -2, 1e300]).buffer), new Uint8Array(0), Uint8Array.from({ length: 1000 }, (_, i) => i & 255)];

async function goodFile(dir: string, name = "entry.bin"): Promise<string> {
  const path = join(dir, name);
  await writeEntry(path, header, parts());
  return path;
}

/** The file's envelope-length field, at byte 8. */
const ENVELOPE_LENGTH_AT = 8;
const PREAMBLE = 48;

function flip(path: string, at: (size: number) => number): void {
  const b = readFileSync(path);
  b[at(b.length)]! ^= 0x40;
  writeFileSync(path, b);
}

describe("cache entry files", () => {
  test("an entry reads back as written: header, parts, 8-aligned part offsets; no temporary file is left", async () => {
    const dir = tempDir("entry");
    const path = await goodFile(dir);
    const r = readEntry(path, () => null);
    assert.ok(!isEntryError(r), isEntryError(r) ? r.error : "");
    assert.deepEqual(r.header, header);
    assert.deepEqual(r.payload.map((p) => [...p]), parts().map((p) => [...p]));
    for (const p of r.payload) assert.equal(p.byteOffset % 8, 0);
    assert.deepEqual(new Float64Array(r.payload[1]!.buffer, r.payload[1]!.byteOffset, 3), new Float64Array([0.5, -2, 1e300]));
    assert.deepEqual(readdirSync(dir), ["entry.bin"]);
  });

  test("the caller's validator sees the header and its refusal is the error", async () => {
    const path = await goodFile(tempDir("entry"));
    const r = readEntry(path, (h) => (h.tokens === 128 ? null : `expected 128 tokens, the header says ${String(h.tokens)}`));
    assert.ok(isEntryError(r));
    assert.match(r.error, /expected 128 tokens, the header says 64/);
    assert.match(r.error, /entry\.bin/, "the error names the file");
  });

  const corruptions: Array<[string, (path: string) => void, RegExp]> = [
    ["truncated by one byte", (p) => truncateSync(p, readFileSync(p).length - 1), /truncated/],
    ["truncated inside the preamble", (p) => truncateSync(p, 20), /shorter than the 48-byte preamble/],
    ["junk appended", (p) => appendFileSync(p, Buffer.from("junk junk")), /extra bytes appended/],
    ["a flipped payload byte", (p) => flip(p, (n) => n - 500), /checksum mismatch/],
    ["a flipped header byte", (p) => flip(p, () => PREAMBLE + 3), /not valid JSON|checksum mismatch|shape/],
    ["a flipped digit inside the header (still valid JSON)", (p) => {
      const b = readFileSync(p);
      const at = b.indexOf(Buffer.from('"tokens":64'));
      b[at + 9] = "7".charCodeAt(0);
      writeFileSync(p, b);
    }, /checksum mismatch/],
    ["a flipped checksum byte", (p) => flip(p, () => 20), /checksum mismatch/],
    ["the header length ×10", (p) => {
      const b = readFileSync(p);
      b.writeUInt32LE(b.readUInt32LE(ENVELOPE_LENGTH_AT) * 10, ENVELOPE_LENGTH_AT);
      writeFileSync(p, b);
      // Within the file here (the payload is bigger than the header): then the bytes it spans are not JSON.
    }, /header length \d+ does not fit|not valid JSON/],
    ["the header length at its maximum", (p) => {
      const b = readFileSync(p);
      b.writeUInt32LE(0xffffffff, ENVELOPE_LENGTH_AT);
      writeFileSync(p, b);
    }, /header length 4294967295 does not fit/],
    ["an empty file", (p) => writeFileSync(p, ""), /0 bytes, shorter than the 48-byte preamble/],
    ["another format's magic", (p) => flip(p, () => 0), /wrong magic/],
    ["a non-JSON header", (p) => {
      const b = readFileSync(p);
      const len = b.readUInt32LE(ENVELOPE_LENGTH_AT);
      b.fill("x".charCodeAt(0), PREAMBLE, PREAMBLE + len);
      writeFileSync(p, b);
    }, /not valid JSON/],
    ["invalid UTF-8 in the header", (p) => {
      const b = readFileSync(p);
      b[PREAMBLE + 2] = 0xff;
      writeFileSync(p, b);
    }, /not valid JSON/],
    ["a directory in place of the file", (p) => mkdirSync(p), /is a directory/],
    ["a dangling symlink in place of the file", (p) => symlinkSync(join(p, "..", "nowhere.bin"), p), /symbolic link/],
    ["a symlink to a valid entry", (p) => symlinkSync(join(p, "..", "good.bin"), p), /symbolic link/],
    ["a missing file", () => undefined, /cannot open \(ENOENT\)/],
  ];

  for (const [name, corrupt, expected] of corruptions) {
    test(`${name}: an error naming the file, never an exception`, async () => {
      const dir = tempDir("corrupt");
      await goodFile(dir, "good.bin");
      const path = join(dir, "entry.bin");
      const needsFile = !/directory|symlink|missing/.test(name);
      if (needsFile) await goodFile(dir);
      corrupt(path);
      const r = readEntry(path, () => null);
      assert.ok(isEntryError(r), "must not read as an entry");
      assert.match(r.error, expected);
      assert.ok(r.error.includes(path), r.error);
    });
  }

  test("a header length just under the limit on a small file allocates nothing big and fails on size", async () => {
    const path = await goodFile(tempDir("entry"));
    const b = readFileSync(path);
    b.writeUInt32LE(MAX_ENVELOPE_BYTES - 1, ENVELOPE_LENGTH_AT);
    writeFileSync(path, b);
    const r = readEntry(path);
    assert.ok(isEntryError(r));
    assert.match(r.error, /does not fit a \d+-byte file/);
  });

  test("a header of the wrong shape, with a correct checksum, is refused", async () => {
    const path = join(tempDir("entry"), "entry.bin");
    await writeEntry(path, header, parts());
    // Re-write with parts lengths that disagree with the data actually present.
    const b = readFileSync(path);
    const good = readEntry(path);
    assert.ok(!isEntryError(good));
    const len = b.readUInt32LE(ENVELOPE_LENGTH_AT);
    const env = JSON.parse(b.subarray(PREAMBLE, PREAMBLE + len).toString("utf8"));
    env.parts = "not a list";
    const text = Buffer.from(JSON.stringify(env).padEnd(len, " "));
    text.copy(b, PREAMBLE);
    writeFileSync(path, b);
    const r = readEntry(path);
    assert.ok(isEntryError(r));
    assert.match(r.error, /shape/);
  });
});

describe("disk cache: bad entries are misses with one warning", async () => {
  const model = Dsv4Model.load(await checkpoint("micro"), { backend: createBackend("native") });
  after(() => model.close());
  const block = (): StateBlock => {
    const seq = model.newSequence();
    model.forward([{ seq, tokens: promptIds(16) }], { logits: "none" });
    return captureBlock(seq, 0);
  };
  const store = (root: string, identity: string, warnings: string[]) => new BlockStore(root, identity, model.cfg, "f32", (m) => warnings.push(m));
  const key = (c: string) => c.repeat(64);

  test("a written entry restores; a damaged one warns once, is removed and stays a miss", async () => {
    const root = tempDir("disk");
    const warnings: string[] = [];
    const a = store(root, "f".repeat(64), warnings);
    const b1 = block();
    a.write(key("1"), null, false, b1);
    a.write(key("2"), key("1"), false, { ...b1, tip: null });
    await a.flush();
    const b = store(root, "f".repeat(64), warnings);
    assert.equal(b.size, 2);
    const r = b.read(key("1"));
    assert.ok(r);
    assert.deepEqual(r.tip![0]!.window.codes, b1.tip![0]!.window.codes);
    assert.equal(warnings.length, 0);

    const file = join(b.dir, `${key("2")}.blk`);
    flip(file, (n) => n - 3);
    assert.equal(b.read(key("2")), null);
    assert.equal(b.read(key("2")), null);
    assert.equal(warnings.length, 1, "one warning per bad entry, not per lookup");
    assert.match(warnings[0]!, /checksum mismatch.*a miss/);
    assert.equal(b.has(key("2")), false);
    assert.deepEqual(readdirSync(b.dir).sort(), [`${key("1")}.blk`]);
  });

  test("another identity's file under this key is refused by the header check", async () => {
    const root = tempDir("disk");
    const warnings: string[] = [];
    const a = store(root, "a".repeat(64), warnings);
    a.write(key("1"), null, false, block());
    await a.flush();
    // Same folder (it is named by the identity's first half), other full identity.
    const b = store(root, "a".repeat(32) + "b".repeat(32), warnings);
    assert.equal(b.read(key("1")), null);
    assert.match(warnings[0]!, /another model identity or precision/);
  });

  test("a directory or dangling symlink among the files is skipped at start with one warning, and left alone", async () => {
    const root = tempDir("disk");
    const warnings: string[] = [];
    const a = store(root, "c".repeat(64), warnings);
    mkdirSync(join(a.dir, `${key("d")}.blk`));
    symlinkSync(join(a.dir, "gone"), join(a.dir, `${key("e")}.blk`));
    const b = store(root, "c".repeat(64), warnings);
    assert.equal(b.size, 0);
    assert.equal(warnings.length, 2);
    assert.equal(b.read(key("d")), null);
    assert.equal(readdirSync(a.dir).length, 2);
  });
});
