import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { MatrixHandle, StoredMatrix } from "../../src/kernels/backend.js";
import { requireNativeAddon } from "../../src/kernels/native/addon.js";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { RefBackend } from "../../src/kernels/ref/index.js";
import { PREFETCH_HEADROOM_BYTES, shouldRepack } from "../../src/model/prefetch.js";
import { Dsv4Model } from "../../src/model/transformer.js";
import type { LoadProgress } from "../../src/model/weights.js";
import { Golden } from "../model/conformance.js";
import { nativeSkip } from "./native-available.js";
import { randomMatrix } from "./native-random.js";

// Routed FP4 experts are copied at load into tiles of four rows whose 64-input
// groups lie together (native/src/matrix.h fp4_packed), which the AVX-512 kernels stream as
// one sequence. Only the layout changes: every product must be the mapped rows' bit for bit.

const skip = nativeSkip();
const dir = skip ? "" : mkdtempSync(join(tmpdir(), "dsv4-repack-"));
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sameBits = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function product(be: NativeBackend, h: MatrixHandle, x: Float32Array, rows: number, actQuant: boolean): Float32Array {
  const out = new Float32Array(rows * h.outFeatures);
  be.linear(x, rows, h, actQuant, out);
  return out;
}

describe("repacked FP4 matrices (native backend)", { skip }, () => {
  const be = skip ? (null as unknown as NativeBackend) : new NativeBackend();

  test("give the row-major matrix's products bit for bit, at every row count", () => {
    for (const [N, K] of [[8, 64], [20, 192], [36, 128], [256, 2048], [128, 4096]] as const) {
      const stored = randomMatrix("fp4", N, K, N + K);
      const rows = be.uploadMatrix(stored);
      const packed = be.uploadMatrix({ ...stored, repack: true });
      for (const r of [1, 2, 3, 5, 8, 9, 16]) {
        const x = Float32Array.from({ length: r * K }, (_, i) => Math.sin(i * 1.37) * 3);
        for (const actQuant of [true, false]) {
          assert.ok(sameBits(product(be, packed, x, r, actQuant), product(be, rows, x, r, actQuant)), `${N}x${K}, ${r} rows, actQuant ${actQuant}`);
        }
      }
      const a = new Float32Array(K);
      const b = new Float32Array(K);
      for (const n of [0, 1, 3, 4, N - 1]) {
        be.matrixRow(rows, n, a, 0);
        be.matrixRow(packed, n, b, 0);
        assert.ok(sameBits(a, b), `${N}x${K}: row ${n} decoded`);
      }
    }
  });

  test("read from a mapped file, the copy is the mapped rows' (and the file's pages are let go unharmed)", () => {
    const N = 64;
    const K = 1024;
    const stored = randomMatrix("fp4", N, K, 5);
    const data = stored.readData();
    const file = join(dir, "experts.bin");
    const offset = 3 * 4096 + 40;
    const fd = openSync(file, "w");
    writeSync(fd, new Uint8Array(offset));
    writeSync(fd, data);
    writeSync(fd, stored.scale!);
    writeSync(fd, new Uint8Array(8192));
    closeSync(fd);
    const mapped: StoredMatrix = {
      ...stored,
      location: { file, offset, byteLength: data.length },
      scaleLocation: { file, offset: offset + data.length, byteLength: stored.scale!.length },
    };
    const plain = be.uploadMatrix(mapped);
    const packed = be.uploadMatrix({ ...mapped, repack: true });
    const x = Float32Array.from({ length: 3 * K }, (_, i) => Math.cos(i * 0.71) * 2);
    assert.ok(sameBits(product(be, packed, x, 3, true), product(be, plain, x, 3, true)));
    // The row-major matrix maps the same range the copy let go: it reads it back from the file.
    assert.ok(sameBits(product(be, plain, x, 1, true), product(be, be.uploadMatrix(stored), x, 1, true)));
  });

  test("a kernel table that cannot read the packed layout refuses the matrix, saying why", (t) => {
    const addon = requireNativeAddon();
    const { isa } = addon.info();
    if (!isa.startsWith("avx512")) return t.skip(`the ${isa} table does not repack`);
    const packed = be.uploadMatrix({ ...randomMatrix("fp4", 8, 64, 3), repack: true });
    try {
      assert.ok(addon.selectIsa("avx2"));
      assert.throws(() => be.linear(new Float32Array(64).fill(1), 1, packed, true, new Float32Array(8)), /repacked for the AVX-512 kernels and the avx2 table cannot read it/);
    } finally {
      addon.selectIsa(isa);
    }
  });

  test("a model's logits are the same with and without repacked experts (tiny-a)", () => {
    const golden = new Golden("tiny-a");
    const ids = golden.inputIds().slice(0, 6);
    const logits = (repack: boolean) => {
      const model = Dsv4Model.load(golden.dir, { backend: be, repack, prefetch: "off" });
      try {
        const seq = model.newSequence();
        const [out] = model.forward([{ seq, tokens: ids }], { logits: "all" });
        return out!.logits.map((l) => Float32Array.from(l));
      } finally {
        model.close();
      }
    };
    const a = logits(true);
    const b = logits(false);
    assert.equal(a.length, ids.length);
    a.forEach((l, i) => assert.ok(sameBits(l, b[i]!), `position ${i}`));
  });
});

describe("when a load repacks the routed experts", () => {
  const GiB = 2 ** 30;
  test("by default, when the checkpoint fits in available memory with the prefetch's headroom", () => {
    assert.equal(shouldRepack(undefined, 10 * GiB, 10 * GiB + PREFETCH_HEADROOM_BYTES), true);
  });

  test("never for a checkpoint that does not fit (the copies could not be paged out), nor when turned off", () => {
    assert.equal(shouldRepack(true, 10 * GiB, 10 * GiB + PREFETCH_HEADROOM_BYTES - 1), false);
    assert.equal(shouldRepack(false, 1, 100 * GiB), false);
  });

  test("all at load, reported block by block after the prefetch, so that no step copies an expert", { skip }, () => {
    const golden = new Golden("tiny-a");
    const events: LoadProgress[] = [];
    Dsv4Model.load(golden.dir, { backend: new NativeBackend(), prefetch: "on", onProgress: (p) => events.push(p) }).close();
    const phases = events.map((e) => e.phase ?? "weights");
    const repacks = events.filter((e) => e.phase === "repack");
    assert.ok(repacks.length > 0 && repacks.at(-1)!.done === repacks.at(-1)!.total, JSON.stringify(repacks));
    assert.ok(phases.lastIndexOf("prefetch") < phases.indexOf("repack"), phases.join(" "));
    const none: LoadProgress[] = [];
    Dsv4Model.load(golden.dir, { backend: new NativeBackend(), repack: false, onProgress: (p) => none.push(p) }).close();
    assert.equal(none.filter((e) => e.phase === "repack").length, 0);
  });

  test("not with a backend that would not repack them (each expert still loads on its first use)", () => {
    const events: LoadProgress[] = [];
    Dsv4Model.load(new Golden("tiny-a").dir, { backend: new RefBackend(), onProgress: (p) => events.push(p) }).close();
    assert.equal(events.filter((e) => e.phase === "repack").length, 0);
  });
});
