import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { StoredMatrix } from "../../src/kernels/backend.js";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { writeShardedCheckpointStreaming } from "../../src/formats/safetensors-writer.js";
import { nativeSkip } from "./native-available.js";
import { smapsBytesOf } from "../helpers/smaps.js";

// The native backend maps checkpoint files at 2 MiB-aligned addresses asking for huge pages,
// and its prefetch reads a file that the page cache holds in small pages once more so that it
// comes back in large folios (native/src/prefetch.cc). Neither may change a byte it reads.

const skip = nativeSkip();
const dir = skip ? "" : mkdtempSync(join(tmpdir(), "dsv4-mapping-"));
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

describe("mapped checkpoint files", { skip }, () => {
  // 160 MiB: two whole 64 MiB chunks of the prefetch's folio check and part of a third. An FP4
  // 2048x4096 matrix and its scales sit at an odd offset in the middle, the rest is filler.
  const N = 2048;
  const K = 4096;
  const data = bytes((N * K) / 2, 11);
  const scale = Uint8Array.from({ length: (N * K) / 32 }, (_, i) => 118 + (i % 9));
  const file = join(dir, "shard.bin");
  const offset = 96 * 2 ** 20 + 8;
  if (!skip) {
    const fd = openSync(file, "w");
    writeSync(fd, bytes(offset, 3));
    writeSync(fd, data);
    writeSync(fd, scale);
    const rest = 160 * 2 ** 20 - offset - data.length - scale.length;
    writeSync(fd, bytes(rest, 5));
    closeSync(fd);
  }
  const stored = (mapped: boolean): StoredMatrix => ({
    name: "experts.0.w1",
    format: "fp4",
    outFeatures: N,
    inFeatures: K,
    readData: () => data,
    location: mapped ? { file, offset, byteLength: data.length } : null,
    scale,
    scaleDtype: "F8_E8M0",
    scaleLocation: mapped ? { file, offset: offset + data.length, byteLength: scale.length } : null,
  });
  const x = Float32Array.from({ length: 2 * K }, (_, i) => Math.sin(i * 0.37) * 3);

  test("a mapped matrix gives its owned copy's products, before and after the prefetch", () => {
    const nb = new NativeBackend();
    const owned = nb.linear(x, 2, nb.uploadMatrix(stored(false)), true) as Float32Array;
    const mapped = nb.uploadMatrix(stored(true));
    assert.deepEqual(Array.from(nb.linear(x, 2, mapped, true)), Array.from(owned));
    const pmdBefore = smapsBytesOf(file, "FilePmdMapped");
    assert.equal(nb.prefetchFile(file), 160 * 2 ** 20);
    assert.deepEqual(Array.from(nb.linear(x, 2, mapped, true)), Array.from(owned), "after the prefetch");
    // Whether the file now has 2 MiB entries depends on the kernel and file system; say which.
    const pmdAfter = smapsBytesOf(file, "FilePmdMapped");
    if (pmdBefore !== null && pmdAfter !== null) console.log(`# the file's bytes mapped with 2 MiB entries: ${pmdBefore} before the prefetch, ${pmdAfter} after`);
  });

  test("prefetching the same file again reads it the same", () => {
    const nb = new NativeBackend();
    const mapped = nb.uploadMatrix(stored(true));
    const first = Array.from(nb.linear(x, 1, mapped, true));
    assert.equal(nb.prefetchFile(file), 160 * 2 ** 20);
    assert.equal(nb.prefetchFile(file), 160 * 2 ** 20);
    assert.deepEqual(Array.from(nb.linear(x, 1, mapped, true)), first);
  });

  test("a file whose later part the page cache holds in 4 KiB folios is mapped with 2 MiB entries after the prefetch", () => {
    // Written as a download or a converter may: the first 64 MiB in 4 MiB writes (the page
    // cache takes them in large folios where the kernel and file system make them), the rest
    // in 4 KiB writes (4 KiB folios). A check of the file's start alone finds large folios.
    const mixed = join(dir, "mixed.bin");
    const fd = openSync(mixed, "w");
    for (let i = 0; i < 16; i++) writeSync(fd, bytes(4 * 2 ** 20, 20 + i));
    const page = bytes(4096, 40);
    for (let i = 0; i < (96 * 2 ** 20) / 4096; i++) writeSync(fd, page);
    closeSync(fd);
    const nb = new NativeBackend();
    const m = nb.uploadMatrix({ ...stored(true), location: { file: mixed, offset: 100 * 2 ** 20, byteLength: data.length }, scale, scaleLocation: null });
    assert.equal(nb.prefetchFile(mixed), 160 * 2 ** 20);
    const pmd = smapsBytesOf(mixed, "FilePmdMapped");
    if (pmd === null || pmd < 64 * 2 ** 20) {
      // No 2 MiB file folios here even for the large writes (kernel, file system or memory): nothing to check.
      console.log(`# ${mixed}: ${pmd} bytes mapped with 2 MiB entries after the prefetch; large folios unavailable here`);
      return;
    }
    // Without the re-read only the first 64 MiB are; a busy machine may not find a free 2 MiB
    // page for every re-read region (a CI run came back 2 regions short), so most of the rest.
    assert.ok(pmd >= (64 + 0.9 * 96) * 2 ** 20, `${pmd / 2 ** 20} of 160 MiB mapped with 2 MiB entries after the prefetch`);
    assert.ok(m.bytes > 0);
  });

  test("a checkpoint written from 64 KiB pieces is mapped with 2 MiB entries without a prefetch", () => {
    const nb = new NativeBackend();
    // Four 4 MiB FP4 matrices over a 16 MiB stretch of `path` (from `start`), their pages touched by one product each.
    const touched2MiB = (path: string, start: number) => {
      for (let i = 0; i < 4; i++) {
        const m = nb.uploadMatrix({ ...stored(true), location: { file: path, offset: start + i * data.length, byteLength: data.length }, scaleLocation: null });
        nb.linear(x, 1, m, true);
      }
      return smapsBytesOf(path, "FilePmdMapped");
    };
    const whole = join(dir, "whole.bin");
    writeFileSync(whole, bytes(16 * 2 ** 20, 50)); // one write: large folios wherever this kernel makes them
    const reference = touched2MiB(whole, 0);
    if (reference === null || reference === 0) {
      console.log(`# ${whole}: no 2 MiB entries for a file written in one piece; large folios unavailable here`);
      return;
    }
    const ckpt = join(dir, "ckpt");
    const piece = bytes(64 * 1024, 60);
    const [file] = writeShardedCheckpointStreaming(ckpt, [{ name: "w", dtype: "U8", shape: [16 * 2 ** 20], produce: (emit) => { for (let i = 0; i < 256; i++) emit(piece); } }], 2 ** 30);
    const path = join(ckpt, file!);
    const head = new Uint8Array(8);
    const fd = openSync(path, "r");
    readSync(fd, head, 0, 8, 0);
    closeSync(fd);
    const dataStart = 8 + Number(new DataView(head.buffer).getBigUint64(0, true));
    // 7 or 8 whole 2 MiB regions in the 16 MiB; the old writer's pieces gave none. At least half,
    // so a busy machine short of free 2 MiB pages for a few does not fail it.
    const pmd = touched2MiB(path, dataStart)!;
    assert.ok(pmd >= 8 * 2 ** 20, `${pmd / 2 ** 20} of 16 MiB mapped with 2 MiB entries`);
  });
});
