import type { Backend, Vec } from "../kernels/backend.js";
import { keyRows, outputProjection, queryRows } from "./attention.js";
import type { ModelConfig } from "./config.js";
import type { RopeTable } from "./rope.js";
import type { LayerState } from "./state.js";
import type { AttentionWeights } from "./weights.js";

/** One sequence's draft block in a DSpark stage: its ring, and t, the last committed position. */
export interface DsparkBlockGroup {
  state: LayerState;
  t: number;
}

/**
 * The ring entries of one DSpark stage for main positions (spec §8b): kv_norm(wkv(main_x))
 * with RoPE at the position and the FP8 simulation, stored at slot pos mod window.
 * `mainX` is [rows.length, dim]; the rows must be in position order per sequence.
 */
export function writeDsparkRing(
  backend: Backend, cfg: ModelConfig, w: AttentionWeights, rope: RopeTable, mainX: Vec, rows: ReadonlyArray<{ state: LayerState; pos: number }>,
): void {
  if (rows.length === 0) return;
  const hd = cfg.headDim;
  const kv = keyRows(backend, cfg, w, mainX, rows.length, rows.map((r) => rope.angles(r.pos)));
  rows.forEach((r, i) => r.state.window.set(kv.subarray(i * hd, (i + 1) * hd), (r.pos % cfg.window) * hd));
}

/**
 * DSparkAttention for a batch of draft blocks (spec §8b): x is [groups·B, dim], block row i of
 * group g sits at position t_g + 1 + i. Every query sees the group's min(window, t+1) ring
 * entries and all B keys of its own block (no causal mask inside the block), plus the sink.
 * Block keys never enter the ring.
 */
export function dsparkAttention(
  backend: Backend, cfg: ModelConfig, w: AttentionWeights, rope: RopeTable, x: Vec, groups: readonly DsparkBlockGroup[], B: number,
): Vec {
  const R = groups.length * B;
  const H = cfg.numHeads;
  const hd = cfg.headDim;
  const nope = hd - cfg.ropeDim;
  const win = cfg.window;
  const angles = groups.flatMap((g) => Array.from({ length: B }, (_, i) => rope.angles(g.t + 1 + i)));
  const kv = keyRows(backend, cfg, w, x, R, angles);
  const { q } = queryRows(backend, cfg, w, x, R, angles);
  const o = backend.alloc(R * H * hd);
  const ringIdx = new Int32Array(win);
  groups.forEach((g, gi) => {
    const first = Math.max(0, g.t - win + 1);
    for (let p = first; p <= g.t; p++) ringIdx[p - first] = p % win;
    const blockIdx = Int32Array.from({ length: B }, (_, i) => gi * B + i);
    const sources = [
      { rows: g.state.window, indices: ringIdx, count: g.t - first + 1 },
      { rows: kv, indices: blockIdx, count: B },
    ];
    for (let i = 0; i < B; i++) {
      const r = gi * B + i;
      backend.attention({ q, qOffset: r * H * hd, out: o, outOffset: r * H * hd, sources }, H, hd, w.sink, hd ** -0.5);
      const { cos, sin } = angles[r]!;
      backend.rope(o, r * H * hd + nope, H, hd, cos, sin, true);
    }
  });
  return outputProjection(backend, cfg, w, o, R);
}
