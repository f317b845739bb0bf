import { blockScale } from "../../src/conform/decisions.js";
import { DelegatingBackend } from "../../src/conform/delegating-backend.js";
import type { MatrixHandle, Vec } from "../../src/kernels/backend.js";

/**
 * Backends with one deliberate bug each, for showing that conform catches it. They wrap a
 * working backend and change one operation only.
 */

/** E4M3 rounding toward zero instead of to nearest-even, in the KV / compressor FP8 simulation. */
export class TruncatingFp8Backend extends DelegatingBackend {
  override fp8Simulate(x: Vec, start: number, length: number, block: number): void {
    for (let i0 = 0; i0 < length; i0 += block) {
      const i1 = Math.min(i0 + block, length);
      const { scale } = blockScale("e4m3", x, start + i0, start + i1, this.precision);
      for (let i = start + i0; i < start + i1; i++) {
        const v = Math.min(448, Math.max(-448, x[i]! / scale));
        const q = 2 ** (Math.max(Math.floor(Math.log2(Math.abs(v) || 2 ** -9)), -6) - 3);
        x[i] = Math.sign(v) * Math.floor(Math.abs(v) / q) * q * scale;
      }
    }
  }
}

/** The indexer's FP4 simulation leaves out its block scale for the first block of every range. */
export class SkippedScaleFp4Backend extends DelegatingBackend {
  override fp4Simulate(x: Vec, start: number, length: number, block: number): void {
    const first = Math.min(block, length);
    const { scale } = blockScale("e2m1", x, start, start + first, this.precision);
    this.inner.fp4Simulate(x, start, length, block);
    for (let i = start; i < start + first; i++) x[i] = x[i]! / scale;
  }
}

/** A GEMM that drops the last input column: no quantisation point sees it, only the logits do. */
export class DroppedColumnBackend extends DelegatingBackend {
  override linear(x: Vec, rows: number, w: MatrixHandle, actQuant: boolean, out?: Vec): Vec {
    if (!w.name.endsWith("ffn.shared_experts.w2")) return this.inner.linear(x, rows, w, actQuant, out);
    const K = w.inFeatures;
    const xs = this.inner.alloc(rows * K);
    xs.set(x.subarray(0, rows * K));
    for (let r = 0; r < rows; r++) xs[r * K + K - 1] = 0;
    return this.inner.linear(xs, rows, w, actQuant, out);
  }
}
