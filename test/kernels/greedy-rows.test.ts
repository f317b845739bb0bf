import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { numberToBf16 } from "../../src/formats/dtypes.js";
import type { MatrixHandle } from "../../src/kernels/backend.js";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { argmaxJs } from "../../src/engine/softmax.js";
import { nativeSkip } from "./native-available.js";
import { rng } from "./native-random.js";

// greedyRows (greedy_head.cc) answers "which output of this BF16 product is largest" from a
// bf16 first pass and a bound, computing only the outputs the bound cannot rule out exactly.
// Its answer must be argmax over linear()'s float32 outputs, bit for bit, ties included.
const skip = nativeSkip();

function bf16Matrix(nb: NativeBackend, N: number, K: number, value: (n: number, k: number) => number): MatrixHandle {
  const bits = new Uint16Array(N * K);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) bits[n * K + k] = numberToBf16(value(n, k));
  return nb.uploadMatrix({ name: "head", format: "bf16", outFeatures: N, inFeatures: K, readData: () => new Uint8Array(bits.buffer), location: null });
}

function gaussian(r: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

describe("greedyRows", { skip }, () => {
  const nb = skip ? (null as unknown as NativeBackend) : new NativeBackend();
  // Only the avx512bf16 table has the bf16 dot products the first pass needs; elsewhere every
  // row is left to the caller.
  const decides = !skip && nb.info().isa === "avx512bf16";

  /** A head of Gaussian weights (times wScale) and `rows` Gaussian activation rows (times xScale), drawn from seed. */
  function gaussianCase(N: number, K: number, rows: number, seed: number, wScale: number, xScale = 1): { w: MatrixHandle; x: Float32Array } {
    const g = gaussian(rng(seed));
    const w = bf16Matrix(nb, N, K, () => wScale * g());
    return { w, x: Float32Array.from({ length: rows * K }, () => xScale * g()) };
  }

  /** argmax over linear()'s outputs, the masked ones at -Infinity. */
  function exactGreedy(x: Float32Array, rows: number, w: MatrixHandle, masked: number[][]): number[] {
    const N = w.outFeatures;
    const logits = nb.linear(x, rows, w, false);
    return Array.from({ length: rows }, (_, r) => {
      const row = logits.slice(r * N, (r + 1) * N);
      for (const id of masked[r]!) row[id] = -Infinity;
      return argmaxJs(row);
    });
  }

  /** greedyRows agrees with exactGreedy on every row it decides, and decides every row where the table allows. */
  function agrees(x: Float32Array, rows: number, w: MatrixHandle, masked: number[][] = Array.from({ length: rows }, () => [])): Int32Array {
    const exact = new Int32Array(rows);
    const got = nb.greedyRows(x, rows, w, masked, exact);
    const want = exactGreedy(x, rows, w, masked);
    for (let r = 0; r < rows; r++) {
      if (!decides) {
        assert.equal(got[r], -1, "without bf16 dot products every row is the caller's");
        continue;
      }
      assert.equal(got[r], want[r], `row ${r}`);
    }
    return exact;
  }

  test("random heads and activations: the exact argmax, with few outputs computed exactly", () => {
    const N = 3000;
    const K = 256;
    const rows = 24;
    const { w, x } = gaussianCase(N, K, rows, 11, 0.05, 3);
    const exact = agrees(x, rows, w);
    if (decides) {
      const total = exact.reduce((a, b) => a + b, 0);
      assert.ok(total > 0 && total < (rows * N) / 20, `${total} of ${rows * N} outputs computed exactly`);
    }
  });

  test("masked ids are never chosen: the largest of the rest", () => {
    const N = 500;
    const K = 64;
    const { w, x } = gaussianCase(N, K, 3, 12, 0.1);
    const unmasked = exactGreedy(x, 3, w, [[], [], []]);
    // Each row's own winner masked, with ids past the vocabulary and repeats, which mask nothing.
    const masked = unmasked.map((t, r) => [t, N + 5, t, (t + r + 1) % N]);
    agrees(x, 3, w, masked);
    if (decides) {
      const got = nb.greedyRows(x, 3, w, masked);
      unmasked.forEach((t, r) => assert.notEqual(got[r], t));
    }
  });

  test("exact ties go to the lowest index, as argmax does", () => {
    const N = 400;
    const K = 96;
    const g = gaussian(rng(13));
    const x = Float32Array.from({ length: K }, () => g());
    // Rows 37, 38 and 211 are the same vector pointing along x: the largest outputs, equal.
    const top = new Set([37, 38, 211]);
    const w = bf16Matrix(nb, N, K, (n, k) => (top.has(n) ? 0.2 * Math.sign(x[k]!) : 0.02 * g()));
    agrees(x, 1, w);
    if (decides) assert.equal(nb.greedyRows(x, 1, w, [[]])[0], 37);
    // With 37 masked, 38.
    agrees(x, 1, w, [[37]]);
  });

  test("near ties: rows one bf16 step apart in one weight give the exact argmax", () => {
    const K = 128;
    for (let seed = 0; seed < 40; seed++) {
      const r = rng(100 + seed);
      const g = gaussian(r);
      const x = Float32Array.from({ length: 2 * K }, () => g());
      const base = Array.from({ length: K }, () => 0.1 * Math.sign(x[0]! * g() + x[0]!));
      const j = Math.floor(r() * K);
      // Rows 0-9: noise; rows 10 and 11 the base vector, row 11 with weight j one step up or down.
      const w = bf16Matrix(nb, 12, K, (n, k) => {
        if (n < 10) return 0.01 * g();
        if (n === 11 && k === j) return base[k]! * (seed % 2 === 0 ? 1 + 2 ** -7 : 1 - 2 ** -8);
        return base[k]!;
      });
      agrees(x, 2, w);
    }
  });

  test("activations next to bf16 rounding midpoints, where the first pass orders two outputs the wrong way round", () => {
    const K = 64;
    const x = new Float32Array(K);
    // Output 1 = x0 + x1 = 1 + 2^-8 - 2^-15 exactly, but its bf16 inputs round down to 0.5 each;
    // output 0 = x2 + x3 = 1 + 2^-9 + 2^-16, its first input rounding up: in bf16, 1 + 2^-8 > 1.
    x[0] = x[1] = 0.5 + 2 ** -9 - 2 ** -16;
    x[2] = 0.5 + 2 ** -9 + 2 ** -16;
    x[3] = 0.5;
    const w = bf16Matrix(nb, 6, K, (n, k) => (n === 0 ? (k === 2 || k === 3 ? 1 : 0) : n === 1 ? (k <= 1 ? 1 : 0) : k === n ? 0.25 : 0));
    agrees(x, 1, w);
    if (decides) assert.equal(nb.greedyRows(x, 1, w, [[]])[0], 1);
  });

  test("random activations at rounding midpoints: the exact argmax wherever the first pass's would differ", () => {
    const K = 96;
    const N = 300;
    const r = rng(21);
    // Sparse rows of +-1 weights over activations half a bf16 step (plus or minus a little)
    // from a bf16 value: each output's first-pass value is off by up to ~2^-9 per term.
    const w = bf16Matrix(nb, N, K, () => (r() < 0.1 ? (r() < 0.5 ? 1 : -1) : 0));
    const rows = 40;
    const x = new Float32Array(rows * K);
    const bf16 = new Float32Array(1);
    const bits = new Uint32Array(bf16.buffer);
    for (let i = 0; i < x.length; i++) {
      bf16[0] = 0.5 + r();
      bits[0]! &= 0xffff0000;
      const half = 2 ** (Math.floor(Math.log2(bf16[0]!)) - 8);
      x[i] = (bf16[0]! + half + (r() < 0.5 ? 1 : -1) * half * 2 ** -6) * (r() < 0.5 ? 1 : -1);
    }
    agrees(x, rows, w);
    // The case arises: some row's argmax over the bf16-rounded activations is not the exact one.
    const rounded = x.map((v) => {
      bf16[0] = v;
      bits[0] = (bits[0]! + 0x7fff + ((bits[0]! >>> 16) & 1)) & 0xffff0000;
      return bf16[0]!;
    });
    assert.notDeepEqual(exactGreedy(rounded, rows, w, Array.from({ length: rows }, () => [])), exactGreedy(x, rows, w, Array.from({ length: rows }, () => [])));
  });

  test("more candidates than the bound prunes to (every row the same): the whole row, lowest index", () => {
    const N = 5000;
    const K = 64;
    const w = bf16Matrix(nb, N, K, (_, k) => 0.01 * ((k % 7) - 3));
    const x = Float32Array.from({ length: K }, (_, k) => (k % 5) - 2);
    const exact = agrees(x, 1, w);
    if (decides) assert.equal(exact[0], N);
  });

  test("rows the bound does not cover are left to the caller: NaN, infinity, 2^60, every id masked", () => {
    const N = 64;
    const K = 64;
    const { w, x } = gaussianCase(N, K, 5, 14, 0.1);
    x[3] = NaN;
    x[K + 9] = Infinity;
    x[2 * K + 1] = 2 ** 60;
    const masked = [[], [], [], Array.from({ length: N }, (_, i) => i), []];
    const got = nb.greedyRows(x, 5, w, masked);
    assert.deepEqual(Array.from(got.subarray(0, 4)), [-1, -1, -1, -1]);
    // The ordinary row beside them is decided (where the table can).
    assert.equal(got[4], decides ? exactGreedy(x.subarray(4 * K), 1, w, [[]])[0] : -1);
  });

  test("a head whose K is not a multiple of 32 is left to the caller", () => {
    const w = bf16Matrix(nb, 40, 48, (n, k) => ((n * 7 + k) % 11) / 50);
    const x = Float32Array.from({ length: 48 }, (_, k) => k / 10);
    assert.deepEqual(Array.from(nb.greedyRows(x, 1, w, [[]])), [-1]);
  });
});
