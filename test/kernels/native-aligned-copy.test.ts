import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { MatrixHandle, StoredMatrix, WeightFormat } from "../../src/kernels/backend.js";
import { requireNativeAddon } from "../../src/kernels/native/addon.js";
import { NativeBackend, type NativeMatrix } from "../../src/kernels/native/backend.js";
import { Dsv4Model } from "../../src/model/transformer.js";
import { Golden } from "../model/conformance.js";
import { nativeSkip } from "./native-available.js";
import { randomMatrix } from "./native-random.js";

// Checkpoints place tensors at any byte offset; mapped FP8, BF16 and F32 rows that do not
// start on a cache line are copied at load to an aligned place of the matrix's own
// (Backend.alignRows). Only where the bytes live changes.

const skip = nativeSkip();
const dir = skip ? "" : mkdtempSync(join(tmpdir(), "dsv4-aligned-"));
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sameBits = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** The matrix's rows written `offset` bytes into a file of their own, as a mapped matrix. */
function mappedAt(format: WeightFormat, N: number, K: number, offset: number, seed: number): StoredMatrix {
  const stored = randomMatrix(format, N, K, seed);
  const data = stored.readData();
  const file = join(dir, `${format}-${N}x${K}-${offset}.bin`);
  const fd = openSync(file, "w");
  writeSync(fd, new Uint8Array(offset));
  writeSync(fd, data);
  writeSync(fd, new Uint8Array(4096));
  closeSync(fd);
  return { ...stored, location: { file, offset, byteLength: data.length } };
}

describe("mapped dense matrices that do not start on a cache line (native backend)", { skip }, () => {
  const be = skip ? (null as unknown as NativeBackend) : new NativeBackend();
  const addon = skip ? (null as unknown as ReturnType<typeof requireNativeAddon>) : requireNativeAddon();
  const storage = (h: NativeMatrix) => addon.matrixStorage(h.ptr);

  test("are copied by alignRows, and give the mapped rows' products bit for bit", () => {
    for (const [format, N, K, actQuant] of [["fp8", 136, 256, true], ["fp8", 24, 1024, false], ["bf16", 40, 512, false], ["f32", 12, 96, false]] as const) {
      const mapped = mappedAt(format, N, K, 4096 * 2 + 52, N + K);
      const inPlace = be.uploadMatrix(mapped);
      const copied = be.uploadMatrix(mapped);
      assert.equal(storage(copied), "mapped", format);
      assert.equal(be.alignRows(copied), true, format);
      assert.equal(storage(copied), "copied", format);
      assert.equal(storage(inPlace), "mapped", format);
      for (const rows of [1, 3, 8, 17]) {
        const x = Float32Array.from({ length: rows * K }, (_, i) => Math.sin(i * 0.37) * 2);
        const a = new Float32Array(rows * N);
        const b = new Float32Array(rows * N);
        be.linear(x, rows, inPlace, actQuant, a);
        be.linear(x, rows, copied, actQuant, b);
        assert.ok(sameBits(a, b), `${format} ${N}x${K}, ${rows} rows`);
      }
      const r0 = new Float32Array(K);
      const r1 = new Float32Array(K);
      be.matrixRow(inPlace, N - 1, r0, 0);
      be.matrixRow(copied, N - 1, r1, 0);
      assert.ok(sameBits(r0, r1), `${format}: last row decoded`);
    }
  });

  test("rows already on a cache line, FP4 rows and owned bytes are left where they are", () => {
    const aligned = be.uploadMatrix(mappedAt("fp8", 16, 256, 4096 + 64, 3));
    assert.equal(be.alignRows(aligned), false);
    assert.equal(storage(aligned), "mapped");
    const fp4 = be.uploadMatrix(mappedAt("fp4", 16, 256, 4096 + 8, 4));
    assert.equal(be.alignRows(fp4), false);
    assert.equal(storage(fp4), "mapped");
    const owned = be.uploadMatrix({ ...mappedAt("bf16", 16, 256, 4096 + 8, 5), location: null });
    assert.equal(be.alignRows(owned), false);
    assert.equal(storage(owned), "owned");
  });
});

describe("a model load (native backend)", { skip }, () => {
  test("copies the dense matrices whose mapped rows are off a cache line, never the embedding", () => {
    const addon = requireNativeAddon();
    const golden = new Golden("tiny-a");
    const storage = (h: MatrixHandle) => addon.matrixStorage((h as NativeMatrix).ptr);
    const load = (repack: boolean) => Dsv4Model.load(golden.dir, { backend: new NativeBackend(), repack, prefetch: "off" });
    const model = load(true);
    const inPlace = load(false);
    try {
      const dense = (m: Dsv4Model) => { const a = m.weights.blocks[0]!.attn; return [m.weights.head, a.wqA, a.wqB, a.wkv, a.woB, ...a.woA]; };
      assert.equal(storage(model.weights.embed), "mapped");
      assert.ok(dense(model).some((h) => storage(h) === "copied"), dense(model).map(storage).join(" "));
      assert.ok(dense(inPlace).every((h) => storage(h) === "mapped"), dense(inPlace).map(storage).join(" "));
    } finally {
      model.close();
      inPlace.close();
    }
  });
});
