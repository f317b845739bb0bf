import { numberToBf16 } from "../../src/formats/dtypes.js";
import type { StoredMatrix, WeightFormat } from "../../src/kernels/backend.js";

/** Deterministic uniform [0, 1) numbers. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A random N x K weight in `format` with plausible scales (no FP8 NaN codes). */
export function randomMatrix(format: WeightFormat, N: number, K: number, seed: number): StoredMatrix {
  const r = rng(seed);
  let data: Uint8Array;
  let scale: Uint8Array | undefined;
  if (format === "fp8") {
    data = Uint8Array.from({ length: N * K }, () => {
      const b = Math.floor(r() * 256);
      return (b & 0x7f) === 0x7f ? b - 1 : b;
    });
    scale = Uint8Array.from({ length: Math.ceil(N / 128) * Math.ceil(K / 128) }, () => 118 + Math.floor(r() * 8));
  } else if (format === "fp4") {
    data = Uint8Array.from({ length: (N * K) / 2 }, () => Math.floor(r() * 256));
    scale = Uint8Array.from({ length: (N * K) / 32 }, () => 120 + Math.floor(r() * 8));
  } else if (format === "bf16") {
    data = new Uint8Array(Uint16Array.from({ length: N * K }, () => numberToBf16((r() - 0.5) * 0.2)).buffer);
  } else {
    data = new Uint8Array(Float32Array.from({ length: N * K }, () => (r() - 0.5) * 0.2).buffer);
  }
  return { name: `${format}-${N}x${K}`, format, outFeatures: N, inFeatures: K, readData: () => data, location: null, scale, scaleDtype: scale ? "F8_E8M0" : undefined };
}

export function randomVec(n: number, seed: number, amp = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() - 0.5) * 2 * amp);
}
