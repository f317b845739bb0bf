import type { Backend, Vec } from "../kernels/backend.js";
import type { ModelConfig } from "./config.js";
import type { HcWeights } from "./weights.js";

/**
 * Manifold-constrained hyper-connections (spec §4): the residual is `hc` parallel streams;
 * each block reads a learned mixture of them and writes back through a doubly-stochastic
 * (Sinkhorn-normalised) stream-mixing matrix.
 */

export interface HcMix {
  pre: Float64Array; // [rows, hc]
  post: Float64Array; // [rows, hc]
  comb: Float64Array; // [rows, hc, hc], comb[j][k]: source stream j -> destination k
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Projections of the flattened streams, scaled by their rms: `(fn · v) · rsqrt(mean(v²) + eps)`. */
function mixes(backend: Backend, X: Vec, rows: number, hcDim: number, fn: HcWeights["fn"], normEps: number): Vec {
  const m = backend.linear(X, rows, fn, false);
  const mix = fn.outFeatures;
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = r * hcDim; i < (r + 1) * hcDim; i++) ss += X[i]! * X[i]!;
    const rs = 1 / Math.sqrt(ss / hcDim + normEps);
    for (let j = 0; j < mix; j++) m[r * mix + j] = m[r * mix + j]! * rs;
  }
  return m;
}

/** pre / post weights and the Sinkhorn-normalised comb matrix from the raw mixes of one row. */
export function splitSinkhorn(m: ArrayLike<number>, mOffset: number, w: HcWeights, hc: number, iters: number, eps: number, out: HcMix, r: number): void {
  const { scale, base } = w;
  for (let j = 0; j < hc; j++) {
    out.pre[r * hc + j] = sigmoid(m[mOffset + j]! * scale[0]! + base[j]!) + eps;
    out.post[r * hc + j] = 2 * sigmoid(m[mOffset + hc + j]! * scale[1]! + base[hc + j]!);
  }
  const c = out.comb.subarray(r * hc * hc, (r + 1) * hc * hc);
  for (let j = 0; j < hc; j++) {
    let mx = -Infinity;
    for (let k = 0; k < hc; k++) {
      const v = m[mOffset + 2 * hc + j * hc + k]! * scale[2]! + base[2 * hc + j * hc + k]!;
      c[j * hc + k] = v;
      if (v > mx) mx = v;
    }
    let sum = 0;
    for (let k = 0; k < hc; k++) sum += c[j * hc + k] = Math.exp(c[j * hc + k]! - mx);
    for (let k = 0; k < hc; k++) c[j * hc + k] = c[j * hc + k]! / sum + eps;
  }
  const normCols = () => {
    for (let k = 0; k < hc; k++) {
      let s = 0;
      for (let j = 0; j < hc; j++) s += c[j * hc + k]!;
      for (let j = 0; j < hc; j++) c[j * hc + k] = c[j * hc + k]! / (s + eps);
    }
  };
  const normRows = () => {
    for (let j = 0; j < hc; j++) {
      let s = 0;
      for (let k = 0; k < hc; k++) s += c[j * hc + k]!;
      for (let k = 0; k < hc; k++) c[j * hc + k] = c[j * hc + k]! / (s + eps);
    }
  };
  normCols();
  for (let i = 1; i < iters; i++) {
    normRows();
    normCols();
  }
}

export function hcPre(backend: Backend, cfg: ModelConfig, X: Vec, rows: number, w: HcWeights): { collapsed: Vec; mix: HcMix } {
  const hc = cfg.hcMult;
  const m = mixes(backend, X, rows, hc * cfg.dim, w.fn, cfg.normEps);
  const mix: HcMix = { pre: new Float64Array(rows * hc), post: new Float64Array(rows * hc), comb: new Float64Array(rows * hc * hc) };
  const width = w.fn.outFeatures;
  for (let r = 0; r < rows; r++) splitSinkhorn(m, r * width, w, hc, cfg.hcSinkhornIters, cfg.hcEps, mix, r);
  return { collapsed: backend.hcCollapse(X, rows, hc, cfg.dim, mix.pre), mix };
}

/** The mixes of the given rows (ascending batch indices), in that order. */
export function selectMix(mix: HcMix, rows: readonly number[], hc: number): HcMix {
  const out: HcMix = { pre: new Float64Array(rows.length * hc), post: new Float64Array(rows.length * hc), comb: new Float64Array(rows.length * hc * hc) };
  rows.forEach((r, i) => {
    out.pre.set(mix.pre.subarray(r * hc, (r + 1) * hc), i * hc);
    out.post.set(mix.post.subarray(r * hc, (r + 1) * hc), i * hc);
    out.comb.set(mix.comb.subarray(r * hc * hc, (r + 1) * hc * hc), i * hc * hc);
  });
  return out;
}

/** X'[k] = post[k] · y + Σ_j comb[j][k] · X[j]. */
export function hcPost(backend: Backend, cfg: ModelConfig, y: Vec, X: Vec, rows: number, mix: HcMix): Vec {
  return backend.hcExpand(y, X, rows, cfg.hcMult, cfg.dim, mix.post, mix.comb);
}

/** Final collapse of the streams before the head (no post/comb). */
export function hcHead(backend: Backend, cfg: ModelConfig, X: Vec, rows: number, w: HcWeights): Vec {
  const hc = cfg.hcMult;
  const m = mixes(backend, X, rows, hc * cfg.dim, w.fn, cfg.normEps);
  const pre = new Float64Array(rows * hc);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < hc; j++) pre[r * hc + j] = sigmoid(m[r * hc + j]! * w.scale[0]! + w.base[j]!) + cfg.hcEps;
  }
  return backend.hcCollapse(X, rows, hc, cfg.dim, pre);
}
