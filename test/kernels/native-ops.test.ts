import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { numberToBf16 } from "../../src/formats/dtypes.js";
import type { StoredMatrix, Vec, WeightFormat } from "../../src/kernels/backend.js";
import { requireNativeAddon } from "../../src/kernels/native/addon.js";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { RefBackend } from "../../src/kernels/ref/index.js";
import * as refOps from "../../src/kernels/ref/ops.js";
import { nativeSkip } from "./native-available.js";

// Every native op against the float64 reference on random inputs, for each instruction set
// this CPU has (the vector kernels have their own lane orders and tails to get wrong).
const skip = nativeSkip();
const ref = new RefBackend();

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomMatrix(format: WeightFormat, N: number, K: number, seed: number): StoredMatrix {
  const r = rng(seed);
  let data: Uint8Array;
  let scale: Uint8Array | undefined;
  switch (format) {
    case "fp8":
      data = Uint8Array.from({ length: N * K }, () => {
        const b = Math.floor(r() * 256);
        return (b & 0x7f) === 0x7f ? b - 1 : b; // no NaN codes
      });
      scale = Uint8Array.from({ length: Math.ceil(N / 128) * Math.ceil(K / 128) }, () => 118 + Math.floor(r() * 8));
      break;
    case "fp4":
      data = Uint8Array.from({ length: (N * K) / 2 }, () => Math.floor(r() * 256));
      scale = Uint8Array.from({ length: (N * K) / 32 }, () => 120 + Math.floor(r() * 8));
      break;
    case "bf16": {
      const u = Uint16Array.from({ length: N * K }, () => numberToBf16((r() - 0.5) * 0.2));
      data = new Uint8Array(u.buffer);
      break;
    }
    case "f32":
      data = new Uint8Array(Float32Array.from({ length: N * K }, () => (r() - 0.5) * 0.2).buffer);
      break;
  }
  return { name: `${format}-${N}x${K}`, format, outFeatures: N, inFeatures: K, readData: () => data, location: null, scale, scaleDtype: scale ? "F8_E8M0" : undefined };
}

function randomVec(n: number, seed: number, amp = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() - 0.5) * 2 * amp);
}

/** |a - b| within rel · (scale of the terms) + abs floor, element by element. */
function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i]! - b[i]!) <= tol * Math.max(scale, 1e-30), `${what}[${i}]: ${a[i]} vs ${b[i]} (scale ${scale})`);
  }
}

/** Values with -0 as 0: the sign of a zero that rounding produces is not part of the contract. */
const plain = (v: ArrayLike<number>) => Array.from(v, (x) => x + 0);

const addon = skip ? null : requireNativeAddon();
const isas = addon ? addon.info().isas : [];
const initialIsa = addon ? addon.info().isa : "";

for (const isa of isas) {
  describe(`native ops vs reference (${isa})`, { skip }, () => {
    const nb = new NativeBackend();
    const use = () => assert.ok(addon!.selectIsa(isa));
    after(() => addon!.selectIsa(initialIsa));

    const shapes: Array<[WeightFormat, number, number]> = [
      ["fp8", 256, 512], ["fp8", 130, 160], ["fp8", 3, 128],
      ["fp4", 64, 256], ["fp4", 33, 96], ["fp4", 5, 64], ["fp4", 9, 4160],
      ["bf16", 40, 256], ["bf16", 7, 24],
      ["f32", 24, 1024], ["f32", 9, 21],
    ];
    for (const [format, N, K] of shapes) {
      for (const actQuant of [true, false]) {
        test(`linear ${format} ${N}x${K}${actQuant ? " with activation quantisation" : ""}, 1-13 rows`, () => {
          use();
          const m = randomMatrix(format, N, K, N * 7 + K);
          const hr = ref.uploadMatrix(m);
          const hn = nb.uploadMatrix(m);
          for (const rows of [1, 2, 3, 4, 5, 6, 7, 13]) {
            const x = randomVec(rows * K, rows + K, 3);
            const want = ref.linear(Float64Array.from(x), rows, hr, actQuant);
            const got = nb.linear(x, rows, hn, actQuant);
            close(got, want, 2e-5, `${format} rows=${rows}`);
          }
        });
      }
    }

    test("a row's product does not depend on the rows batched with it", () => {
      use();
      // fp4 K=4160: K goes in chunks when rows share a pass (the carried totals must not change a row's result).
      // fp8 K=384: an odd number of 128-input blocks (the GEMV pairs blocks; the tiled kernel does not).
      for (const [format, N, K] of [["fp8", 256, 512], ["fp8", 136, 384], ["fp4", 64, 256], ["fp4", 18, 4160], ["bf16", 40, 256], ["f32", 24, 64]] as Array<[WeightFormat, number, number]>) {
        const h = nb.uploadMatrix(randomMatrix(format, N, K, 11));
        const rows = 13;
        const x = randomVec(rows * K, 12, 2);
        const all = nb.linear(x, rows, h, true) as Float32Array;
        for (let r = 0; r < rows; r++) {
          const one = nb.linear(x.subarray(r * K, (r + 1) * K), 1, h, true) as Float32Array;
          assert.deepEqual(Array.from(all.subarray(r * N, (r + 1) * N)), Array.from(one), `${format} row ${r}`);
        }
      }
    });

    // Strip products (BF16/F32 from 16 rows on avx2 and 5 on avx512, FP8 from 5 on avx512):
    // activation rows in groups of up to 16, K in chunks sized by the group, output rows in
    // spans and in pairs (an odd count leaves a strip with one row); 4-row passes before
    // that. Each boundary must give every row exactly its one-row product.
    test("every row count gives each row its one-row product bit for bit (1-9, 15-17, 31-33, 63-65 rows)", () => {
      use();
      const counts = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65];
      // bf16 1031x2048: several pool tasks, an odd N, 128-input chunks at 64 rows.
      // fp8 259x1152: odd N over three 128-row scale groups, K an odd number of blocks.
      // f32 9x1000: the tail past the last 16 inputs, K not a multiple of the chunk.
      const shapes: Array<[WeightFormat, number, number, boolean]> = [
        ["bf16", 1031, 2048, false], ["fp8", 259, 1152, true], ["f32", 9, 1000, false], ["fp4", 33, 512, true],
      ];
      for (const [format, N, K, actQuant] of shapes) {
        const h = nb.uploadMatrix(randomMatrix(format, N, K, 21));
        const x = randomVec(65 * K, 22, 2);
        const one = Array.from({ length: 65 }, (_, r) => Array.from(nb.linear(x.subarray(r * K, (r + 1) * K), 1, h, actQuant) as Float32Array));
        for (const rows of counts) {
          const all = nb.linear(x.subarray(0, rows * K), rows, h, actQuant) as Float32Array;
          for (let r = 0; r < rows; r++) assert.deepEqual(Array.from(all.subarray(r * N, (r + 1) * N)), one[r], `${format} rows=${rows} row ${r}`);
        }
      }
    });

    test("a matrix mapped from its file range equals the same matrix copied", () => {
      use();
      const dir = mkdtempSync(join(tmpdir(), "dsv4-native-"));
      try {
        const m = randomMatrix("fp8", 128, 256, 5);
        const bytes = m.readData();
        const file = join(dir, "w.bin");
        const pad = 4096 + 17;
        const buf = new Uint8Array(pad + bytes.length + 9);
        buf.set(bytes, pad);
        writeFileSync(file, buf);
        const mapped = nb.uploadMatrix({ ...m, location: { file, offset: pad, byteLength: bytes.length } });
        const copied = nb.uploadMatrix(m);
        const x = randomVec(2 * 256, 9);
        assert.deepEqual(nb.linear(x, 2, mapped, true), nb.linear(x, 2, copied, true));
        assert.throws(() => nb.uploadMatrix({ ...m, location: { file, offset: buf.length - 10, byteLength: bytes.length } }), /outside/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test("an fp4 matrix with its scales mapped from the file equals the same matrix copied, special scales included", () => {
      use();
      const dir = mkdtempSync(join(tmpdir(), "dsv4-native-"));
      try {
        for (const special of [null, 0, 255]) {
          const m = randomMatrix("fp4", 64, 256, 6);
          const bytes = m.readData();
          const scale = m.scale!.slice();
          if (special !== null) scale[37] = special; // 2^-127 or NaN: the portable kernel's case
          const file = join(dir, `w-${special}.bin`);
          const pad = 4096 + 3;
          const buf = new Uint8Array(pad + bytes.length + scale.length);
          buf.set(bytes, pad);
          buf.set(scale, pad + bytes.length);
          writeFileSync(file, buf);
          const location = { file, offset: pad, byteLength: bytes.length };
          const mapped = nb.uploadMatrix({ ...m, location, scale: undefined, scaleLocation: { file, offset: pad + bytes.length, byteLength: scale.length } });
          const copied = nb.uploadMatrix({ ...m, location, scale });
          const x = randomVec(3 * 256, 10);
          assert.deepEqual(nb.linear(x, 3, mapped, true), nb.linear(x, 3, copied, true), `special scale ${special}`);
          assert.throws(() => nb.uploadMatrix({ ...m, location, scale: undefined, scaleLocation: { file, offset: buf.length - 10, byteLength: scale.length } }), /scale range lies outside/);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test("matrixRow decodes every format with its scales", () => {
      use();
      for (const [format, N, K] of [["fp8", 200, 160], ["fp4", 6, 96], ["bf16", 4, 24], ["f32", 3, 5]] as Array<[WeightFormat, number, number]>) {
        const m = randomMatrix(format, N, K, 3);
        const hr = ref.uploadMatrix(m);
        const hn = nb.uploadMatrix(m);
        for (const row of [0, N - 1]) {
          const a = new Float64Array(K + 2);
          const b = new Float32Array(K + 2);
          ref.matrixRow(hr, row, a, 2);
          nb.matrixRow(hn, row, b, 2);
          assert.deepEqual(Array.from(b), Array.from(a), `${format} row ${row}`);
        }
      }
    });

    test("FP8 and FP4 simulation give the reference's grid values exactly", () => {
      use();
      for (const [block, amp] of [[64, 5], [128, 1e-3], [32, 1e-7], [64, 0]] as Array<[number, number]>) {
        const x = randomVec(320, block + 1, amp);
        x[3] = amp * 1.5;
        const a8 = Float64Array.from(x), b8 = x.slice();
        ref.fp8Simulate(a8, 0, 320, block);
        nb.fp8Simulate(b8, 0, 320, block);
        assert.deepEqual(plain(b8), plain(a8), `fp8 block ${block} amp ${amp}`);
        const a4 = Float64Array.from(x), b4 = x.slice();
        ref.fp4Simulate(a4, 32, 256, 32);
        nb.fp4Simulate(b4, 32, 256, 32);
        assert.deepEqual(plain(b4), plain(a4), `fp4 amp ${amp}`);
      }
    });

    test("rmsNorm, rope, hadamard", () => {
      use();
      const x = randomVec(3 * 96, 1, 2);
      const w = randomVec(96, 2);
      close(nb.rmsNorm(x, 3, 96, w, 1e-6), ref.rmsNorm(Float64Array.from(x), 3, 96, Float64Array.from(w), 1e-6), 1e-6, "rmsNorm");
      close(nb.rmsNorm(x, 3, 96, null, 1e-6), ref.rmsNorm(Float64Array.from(x), 3, 96, null, 1e-6), 1e-6, "rmsNorm unweighted");
      const cos = Float64Array.from({ length: 8 }, (_, i) => Math.cos(i * 0.3));
      const sin = Float64Array.from({ length: 8 }, (_, i) => Math.sin(i * 0.3));
      for (const inverse of [false, true]) {
        const a = Float64Array.from(x), b = x.slice();
        ref.rope(a, 5, 4, 40, cos, sin, inverse);
        nb.rope(b, 5, 4, 40, cos, sin, inverse);
        close(b, a, 1e-6, `rope inverse=${inverse}`);
      }
      const a = Float64Array.from(x), b = x.slice();
      ref.hadamard(a, 32, 256, 64);
      nb.hadamard(b, 32, 256, 64);
      close(b, a, 1e-6, "hadamard");
    });

    test("attention with a sink over two gathered sources", () => {
      use();
      for (const [heads, hd, n0, n1] of [[4, 64, 10, 3], [16, 128, 40, 33], [2, 24, 1, 0]]) {
        const q = randomVec(heads * hd + 5, hd, 1);
        const rows0 = randomVec(12 * hd, 7, 1);
        const rows1 = randomVec(40 * hd, 8, 1);
        const idx0 = Int32Array.from({ length: n0 }, (_, i) => (i * 5) % 12);
        const idx1 = Int32Array.from({ length: n1 }, (_, i) => (i * 7) % 40);
        const sink = randomVec(heads, 3, 2);
        const run = (b: NativeBackend | RefBackend, conv: (v: Float32Array) => Vec) => {
          const out = b.alloc(heads * hd + 3);
          b.attention({ q: conv(q), qOffset: 5, out, outOffset: 3, sources: [{ rows: conv(rows0), indices: idx0, count: n0 }, { rows: conv(rows1), indices: idx1, count: n1 }] }, heads, hd, conv(sink), hd ** -0.5);
          return out;
        };
        close(run(nb, (v) => v), run(ref, (v) => Float64Array.from(v)), 1e-5, `attention ${heads}x${hd}`);
      }
      assert.throws(() => nb.attention({ q: new Float32Array(8), qOffset: 0, out: new Float32Array(8), outOffset: 0, sources: [{ rows: new Float32Array(16), indices: Int32Array.of(2), count: 1 }] }, 1, 8, new Float32Array(1), 1), /outside/);
    });

    test("softmaxPool and indexerScores", () => {
      use();
      const kv = randomVec(8 * 64, 1);
      const score = randomVec(8 * 64, 2, 3);
      score.fill(-Infinity, 0, 10);
      const slots = [{ row: 0, offset: 0 }, { row: 1, offset: 0 }, { row: 4, offset: 32 }, { row: 7, offset: 32 }];
      const a = new Float64Array(40), b = new Float32Array(40);
      ref.softmaxPool(Float64Array.from(kv), Float64Array.from(score), slots, 32, 64, a, 8);
      nb.softmaxPool(kv, score, slots, 32, 64, b, 8);
      close(b, a, 1e-6, "softmaxPool");
      const q = randomVec(4 * 64 + 3, 4);
      const w = randomVec(6, 5);
      const keys = randomVec(9 * 64, 6);
      const sa = new Float64Array(9), sb = new Float64Array(9);
      ref.indexerScores(Float64Array.from(q), 3, Float64Array.from(w), 2, 4, 64, Float64Array.from(keys), 9, sa);
      nb.indexerScores(q, 3, w, 2, 4, 64, keys, 9, sb);
      close(sb, sa, 1e-5, "indexerScores");
    });

    test("hyper-connection collapse and expand equal the float32-stored reference loops exactly", () => {
      use();
      // These ops round to float32 after every term, as the model's JavaScript did: the native
      // result must be the float64 reference's with each step stored in float32.
      const rows = 3, hc = 4, dim = 40;
      const X = randomVec(rows * hc * dim, 11), y = randomVec(rows * dim, 12);
      const r = rng(13);
      const pre = Float64Array.from({ length: rows * hc }, () => r());
      const post = Float64Array.from({ length: rows * hc }, () => 2 * r());
      const comb = Float64Array.from({ length: rows * hc * hc }, () => r());
      const f32ref = (fn: (out: Float32Array) => void, n: number) => {
        const out = new Float32Array(n);
        fn(out);
        return out;
      };
      const collapsed = f32ref((out) => refOps.hcCollapse(X, rows, hc, dim, pre, out), rows * dim);
      assert.deepEqual(nb.hcCollapse(X, rows, hc, dim, pre), collapsed);
      const expanded = f32ref((out) => refOps.hcExpand(y, X, rows, hc, dim, post, comb, out), rows * hc * dim);
      assert.deepEqual(nb.hcExpand(y, X, rows, hc, dim, post, comb), expanded);
      close(nb.hcExpand(y, X, rows, hc, dim, post, comb), ref.hcExpand(Float64Array.from(y), Float64Array.from(X), rows, hc, dim, post, comb), 1e-5, "hcExpand");
    });

    test("swiglu (clamped, row-weighted) and addRows", () => {
      use();
      const rows = 3, dim = 24;
      const g = randomVec(rows * dim, 14, 8), u = randomVec(rows * dim, 15, 16);
      for (const [limit, weights] of [[10, Float64Array.of(0.5, 2, 1.25)], [0, null]] as const) {
        const a = Float64Array.from(g), b = g.slice();
        ref.swiglu(a, Float64Array.from(u), rows, dim, limit, weights);
        nb.swiglu(b, u, rows, dim, limit, weights);
        close(b, a, 1e-6, `swiglu limit=${limit}`);
      }
      const y = randomVec(5 * dim, 16), src = randomVec(3 * dim, 17);
      const index = Int32Array.of(4, 0, 2);
      const a = Float64Array.from(y), b = y.slice();
      ref.addRows(a, Float64Array.from(src), index, dim);
      nb.addRows(b, src, index, dim);
      close(b, a, 1e-6, "addRows");
      assert.throws(() => nb.addRows(y, src, Int32Array.of(5, 0, 0), dim), /outside/);
    });

    test("FP4 scale bytes 0 (2^-127) and 255 (NaN) give the reference's results", () => {
      use();
      const m = randomMatrix("fp4", 8, 128, 21);
      const scale = Uint8Array.from(m.scale!);
      scale[0] = 0;
      scale[5] = 255;
      const special = { ...m, scale };
      const x = randomVec(3 * 128, 22, 2);
      const want = ref.linear(Float64Array.from(x), 3, ref.uploadMatrix(special), true);
      const got = nb.linear(x, 3, nb.uploadMatrix(special), true);
      for (let i = 0; i < want.length; i++) {
        if (Number.isNaN(want[i])) assert.ok(Number.isNaN(got[i]!), `${i}: NaN expected`);
        else assert.ok(Math.abs(got[i]! - want[i]!) <= 2e-5 * Math.max(1, Math.abs(want[i]!)), `${i}: ${got[i]} vs ${want[i]}`);
      }
    });

    test("FP4 float32 scales must be powers of two", () => {
      use();
      const m = randomMatrix("fp4", 4, 64, 23);
      const pow2 = new Float32Array(m.scale!.length).fill(0.25);
      const viaF32 = nb.linear(randomVec(64, 24), 1, nb.uploadMatrix({ ...m, scale: new Uint8Array(pow2.buffer), scaleDtype: "F32" }), true);
      const viaE8m0 = nb.linear(randomVec(64, 24), 1, nb.uploadMatrix({ ...m, scale: new Uint8Array(m.scale!.length).fill(125) }), true);
      assert.deepEqual(Array.from(viaF32), Array.from(viaE8m0));
      assert.throws(() => nb.uploadMatrix({ ...m, scale: new Uint8Array(new Float32Array(m.scale!.length).fill(0.3).buffer), scaleDtype: "F32" }), /powers of two/);
    });

    test("bad arguments are errors, not crashes", () => {
      use();
      const h = nb.uploadMatrix(randomMatrix("fp8", 128, 128, 1));
      assert.throws(() => nb.linear(new Float32Array(100), 1, h, true), /shorter/);
      assert.throws(() => nb.linear(new Float32Array(256), 2, h, true, new Float32Array(10)), /shorter/);
      assert.throws(() => nb.uploadMatrix({ ...randomMatrix("fp8", 128, 128, 1), scale: new Uint8Array(3) }), /scale/);
      assert.throws(() => nb.uploadMatrix({ ...randomMatrix("fp8", 128, 128, 1), location: { file: "/nonexistent/dsv4", offset: 0, byteLength: 128 * 128 } }), /cannot open/);
      assert.throws(() => nb.hadamard(new Float32Array(12), 0, 12, 12), /power of two/);
    });
  });
}

// The avx512 table runs the AVX2 arithmetic two outputs per 512-bit FMA, and avx512bf16 its
// FP4 chains as exact bf16 dot products, so their products must equal the avx2 table's bit for
// bit (and a machine's logits not depend on which it has).
for (const wide of ["avx512", "avx512bf16"])
describe(`${wide} products equal avx2 products`, { skip: skip || !isas.includes(wide) || !isas.includes("avx2") ? `needs both avx2 and ${wide}` : false }, () => {
  const nb = new NativeBackend();
  after(() => addon!.selectIsa(initialIsa));
  test("bf16, f32, fp8, fp4 at 1-65 rows", () => {
    for (const [format, N, K, actQuant] of [["bf16", 517, 1024, false], ["f32", 66, 520, false], ["fp8", 259, 1152, true], ["fp4", 65, 512, true]] as Array<[WeightFormat, number, number, boolean]>) {
      const m = randomMatrix(format, N, K, 31);
      const x = randomVec(65 * K, 32, 2);
      for (const rows of [1, 2, 4, 5, 8, 16, 17, 33, 65]) {
        const xs = x.subarray(0, rows * K);
        assert.ok(addon!.selectIsa("avx2"));
        const want = Array.from(nb.linear(xs, rows, nb.uploadMatrix(m), actQuant) as Float32Array);
        assert.ok(addon!.selectIsa(wide));
        const got = Array.from(nb.linear(xs, rows, nb.uploadMatrix(m), actQuant) as Float32Array);
        assert.deepEqual(got, want, `${format} ${N}x${K} rows=${rows}`);
      }
    }
  });
});

// The register-tiled AVX-512 products (tiles_avx512.h) at the shapes their loops split on:
// tails of the 4-weight-row tile (N % 4 = 1, 2, 3), row groups of up to 6 in blocks of up to
// 16 (1-9, 16, 33 rows), K that is not a multiple of 32 or 64 where the format allows it.
// Each must equal the avx2 table bit for bit, and the scalar table within rounding.
for (const wide of ["avx512", "avx512bf16"])
describe(`${wide} tiled products equal avx2 bit for bit, scalar within rounding`, { skip: skip || !isas.includes(wide) || !isas.includes("avx2") ? `needs both avx2 and ${wide}` : false }, () => {
  const nb = new NativeBackend();
  after(() => addon!.selectIsa(initialIsa));
  const rowCounts = [1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 33];
  const cases: Array<[WeightFormat, number, number, boolean]> = [
    ["bf16", 13, 48, false], ["bf16", 37, 1040, false], ["bf16", 6, 16, true],
    // bf16: K in 1024-input passes over blocks of 16 tiles for up to 12 rows (two blocks, the
    // second ending in a 2-row tile), whole-K tiles beyond.
    ["bf16", 70, 3072, false],
    // fp4: an odd N (a last pair with one row), K of one group, K in several L1 chunks.
    ["fp4", 7, 64, true], ["fp4", 33, 4160, true], ["fp4", 6, 192, false],
    // fp8: an odd N over two 128-row scale groups (a last tile of one row), K ending in a
    // partial 128-input block, odd row counts (the last pair's second row a copy).
    ["fp8", 131, 160, true], ["fp8", 5, 1056, false], ["fp8", 258, 4096, true],
  ];
  for (const [format, N, K, actQuant] of cases) {
    test(`${format} ${N}x${K}, rows ${rowCounts.join(", ")}`, () => {
      const m = randomMatrix(format, N, K, N + 3 * K);
      const x = randomVec(33 * K, K + 5, 2);
      for (const rows of rowCounts) {
        const xs = x.subarray(0, rows * K);
        const run = (isa: string) => {
          assert.ok(addon!.selectIsa(isa));
          return nb.linear(xs, rows, nb.uploadMatrix(m), actQuant) as Float32Array;
        };
        const want = run("avx2");
        const got = run(wide);
        assert.deepEqual(plain(got), plain(want), `${format} ${N}x${K} rows=${rows}`);
        close(got, run("scalar"), 2e-5, `${format} ${N}x${K} rows=${rows} vs scalar`);
      }
    });
  }

  // Rows of extreme, non-finite and tiny activations beside an ordinary one: `wideStep` sets
  // the block amplitudes of "wide" (10^-30, then up by 10^wideStep per 128 inputs).
  function extremeRows(K: number, ordinary: Float32Array, wideStep: number): Record<string, Float32Array> {
    return {
      ordinary,
      wide: Float32Array.from(ordinary, (v, i) => v * 10 ** (-30 + wideStep * Math.floor(i / 128))),
      huge: Float32Array.from(ordinary, (v, i) => (i === 5 ? 1e35 : v)),
      // Products near the float range, where the order of a chain's sum decides whether it overflows.
      nearOverflow: Float32Array.from(ordinary, (v) => Math.sign(v) * 3e37),
      nan: Float32Array.from(ordinary, (v, i) => (i === 200 ? Number.NaN : v)),
      infinite: Float32Array.from(ordinary, (v, i) => (i === 64 ? -Infinity : v)),
      zero: new Float32Array(K),
    };
  }

  // Each row alone and in `batch` (its "row" entries replaced by it), quantised or not: the
  // wide table's products must equal the avx2 table's.
  function sameAsAvx2(m: StoredMatrix, K: number, rowsOf: Record<string, Float32Array>, batch: Array<"row" | "ordinary">): void {
    for (const actQuant of [true, false]) {
      for (const [name, row] of Object.entries(rowsOf)) {
        for (const rows of [[row], batch.map((b) => (b === "row" ? row : rowsOf.ordinary!))]) {
          const xs = new Float32Array(rows.length * K);
          rows.forEach((r, i) => xs.set(r, i * K));
          const run = (isa: string) => {
            assert.ok(addon!.selectIsa(isa));
            return plain(nb.linear(xs, rows.length, nb.uploadMatrix(m), actQuant) as Float32Array);
          };
          assert.deepEqual(run(wide), run("avx2"), `${name} row, ${rows.length} rows, actQuant ${actQuant}`);
        }
      }
    }
  }

  // avx512bf16 takes an FP4 pass of rows through bf16 dot products only when each row's
  // quantised values keep every chain exact; the others (a value at or past 2^100, NaN,
  // infinity, or no quantisation) go the float way. Either must give the avx2 bits, the
  // extreme rows batched with ordinary ones as well as alone.
  test("fp4 rows of extreme, non-finite and tiny activations, alone and batched", () => {
    const K = 256;
    // Block amplitudes from 1e-30 (below the 1e-4 floor of the scale rule) to 1e28.
    const rowsOf = extremeRows(K, randomVec(K, 78, 3), 29);
    sameAsAvx2(randomMatrix("fp4", 9, K, 77), K, rowsOf, ["ordinary", "row", "ordinary", "ordinary", "row"]);
  });

  // avx512bf16 takes an FP8 group of weight rows through bf16 dot products only when every
  // prescaled activation is 0 or within about 2^90 of the row's largest (no product a
  // denormal, which vdpbf16ps would flush) and a bf16 value; otherwise the float way. Rows
  // whose second half is 2^-60 ... 2^-95 of the first straddle that edge, alone and batched.
  test("fp8 rows of extreme, non-finite and tiny activations, alone and batched", () => {
    const K = 512;
    const ordinary = randomVec(K, 80, 3);
    const rowsOf = extremeRows(K, ordinary, 19);
    for (const e of [60, 70, 75, 80, 85, 90, 95]) rowsOf[`half at 2^-${e}`] = Float32Array.from(ordinary, (v, i) => (i >= K / 2 ? v * 2 ** -e : v));
    sameAsAvx2(randomMatrix("fp8", 136, K, 79), K, rowsOf, ["ordinary", "row", "ordinary", "ordinary", "row", "ordinary"]);
  });
});
