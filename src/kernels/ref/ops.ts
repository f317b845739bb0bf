import type { AttentionQuery, Vec } from "../backend.js";

export function rmsNorm(x: Vec, rows: number, dim: number, weight: Vec | null, eps: number, out: Vec): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i]! * x[o + i]!;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    if (weight) for (let i = 0; i < dim; i++) out[o + i] = weight[i]! * (x[o + i]! * inv);
    else for (let i = 0; i < dim; i++) out[o + i] = x[o + i]! * inv;
  }
}

export function rope(x: Vec, start: number, segments: number, stride: number, cos: Float64Array, sin: Float64Array, inverse: boolean): void {
  const half = cos.length;
  const sgn = inverse ? -1 : 1;
  for (let s = 0; s < segments; s++) {
    const o = start + s * stride;
    for (let i = 0; i < half; i++) {
      const a = x[o + 2 * i]!;
      const b = x[o + 2 * i + 1]!;
      const c = cos[i]!;
      const sn = sgn * sin[i]!;
      x[o + 2 * i] = a * c - b * sn;
      x[o + 2 * i + 1] = a * sn + b * c;
    }
  }
}

/** In-place fast Walsh-Hadamard transform (Sylvester order) of n-wide segments, times n^-1/2. */
export function hadamard(x: Vec, start: number, length: number, n: number): void {
  const scale = 1 / Math.sqrt(n);
  for (let seg = start; seg < start + length; seg += n) {
    for (let h = 1; h < n; h *= 2) {
      for (let i = 0; i < n; i += 2 * h) {
        for (let j = seg + i; j < seg + i + h; j++) {
          const a = x[j]!;
          const b = x[j + h]!;
          x[j] = a + b;
          x[j + h] = a - b;
        }
      }
    }
    for (let j = seg; j < seg + n; j++) x[j] = x[j]! * scale;
  }
}

export function attention(query: AttentionQuery, heads: number, headDim: number, sink: Vec, scale: number): void {
  let total = 0;
  for (const src of query.sources) total += src.count;
  const scores = new Float64Array(total);
  const acc = new Float64Array(headDim);
  for (let h = 0; h < heads; h++) {
    const qo = query.qOffset + h * headDim;
    let m = -Infinity;
    let j = 0;
    for (const src of query.sources) {
      for (let t = 0; t < src.count; t++, j++) {
        const ko = src.indices[t]! * headDim;
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += query.q[qo + i]! * src.rows[ko + i]!;
        const s = dot * scale;
        scores[j] = s;
        if (s > m) m = s;
      }
    }
    const oo = query.outOffset + h * headDim;
    if (total === 0) {
      for (let i = 0; i < headDim; i++) query.out[oo + i] = 0;
      continue;
    }
    acc.fill(0);
    let den = 0;
    j = 0;
    for (const src of query.sources) {
      for (let t = 0; t < src.count; t++, j++) {
        const p = Math.exp(scores[j]! - m);
        den += p;
        const ko = src.indices[t]! * headDim;
        for (let i = 0; i < headDim; i++) acc[i] += p * src.rows[ko + i]!;
      }
    }
    // The sink is one more logit whose value vector is zero; the max excludes it (spec §5.3).
    den += Math.exp(sink[h]! - m);
    for (let i = 0; i < headDim; i++) query.out[oo + i] = acc[i]! / den;
  }
}

export function softmaxPool(
  kv: Vec, score: Vec, slots: ReadonlyArray<{ row: number; offset: number }>, width: number, rowStride: number, out: Vec, outOffset: number,
): void {
  for (let j = 0; j < width; j++) {
    let m = -Infinity;
    for (const s of slots) {
      const v = score[s.row * rowStride + s.offset + j]!;
      if (v > m) m = v;
    }
    let den = 0;
    let num = 0;
    for (const s of slots) {
      const i = s.row * rowStride + s.offset + j;
      const p = Math.exp(score[i]! - m);
      den += p;
      num += p * kv[i]!;
    }
    out[outOffset + j] = num / den;
  }
}

export function indexerScores(
  q: Vec, qOffset: number, weights: Vec, wOffset: number, heads: number, headDim: number, keys: Vec, count: number, out: Float64Array,
): void {
  for (let s = 0; s < count; s++) {
    const ko = s * headDim;
    let total = 0;
    for (let h = 0; h < heads; h++) {
      const qo = qOffset + h * headDim;
      let dot = 0;
      for (let i = 0; i < headDim; i++) dot += q[qo + i]! * keys[ko + i]!;
      if (dot > 0) total += dot * weights[wOffset + h]!;
    }
    out[s] = total;
  }
}

export function hcCollapse(X: Vec, rows: number, hc: number, dim: number, pre: Float64Array, out: Vec): void {
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < hc; j++) {
      const p = pre[r * hc + j]!;
      const xo = (r * hc + j) * dim;
      for (let i = 0; i < dim; i++) out[r * dim + i] = out[r * dim + i]! + p * X[xo + i]!;
    }
  }
}

export function hcExpand(y: Vec, X: Vec, rows: number, hc: number, dim: number, post: Float64Array, comb: Float64Array, out: Vec): void {
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < hc; k++) {
      const oo = (r * hc + k) * dim;
      const p = post[r * hc + k]!;
      for (let i = 0; i < dim; i++) out[oo + i] = p * y[r * dim + i]!;
      for (let j = 0; j < hc; j++) {
        const c = comb[(r * hc + j) * hc + k]!;
        const xo = (r * hc + j) * dim;
        for (let i = 0; i < dim; i++) out[oo + i] = out[oo + i]! + c * X[xo + i]!;
      }
    }
  }
}

export function swiglu(g: Vec, u: Vec, rows: number, dim: number, limit: number, rowWeights: Float64Array | null): void {
  for (let r = 0; r < rows; r++) {
    const rw = rowWeights ? rowWeights[r]! : 1;
    for (let i = r * dim; i < (r + 1) * dim; i++) {
      let gi = g[i]!;
      let ui = u[i]!;
      if (limit > 0) {
        gi = Math.min(gi, limit);
        ui = Math.min(Math.max(ui, -limit), limit);
      }
      const h = (gi / (1 + Math.exp(-gi))) * ui;
      g[i] = rowWeights ? rw * h : h;
    }
  }
}

export function addRows(y: Vec, src: Vec, rowIndex: Int32Array, dim: number): void {
  for (let i = 0; i < rowIndex.length; i++) {
    const yo = rowIndex[i]! * dim;
    for (let j = 0; j < dim; j++) y[yo + j] = y[yo + j]! + src[i * dim + j]!;
  }
}
