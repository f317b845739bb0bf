import type { Backend, ExpertPicks, Vec } from "../kernels/backend.js";
import type { LayerSchedule, ModelConfig } from "./config.js";
import { selectRows } from "./rows.js";
import { topkIndices } from "./topk.js";
import type { ExpertWeights, MoeWeights } from "./weights.js";

export interface MoeTrace {
  router?(layer: number, row: number, experts: Int32Array, weights: Float64Array): void;
}

/**
 * From how many picked experts a backend's routedExperts runs them (each whole on one thread):
 * with fewer experts than threads, splitting every product over the threads keeps them busy.
 */
const MIN_EXPERTS_AS_ONE_OP = 2;

/** PyTorch's softplus (threshold 20: linear above it). */
const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));

/** Routing of one row (spec §7): chosen experts and their final weights. */
export function route(cfg: ModelConfig, layer: LayerSchedule, w: MoeWeights, logits: Vec, offset: number, token: number): { experts: Int32Array; weights: Float64Array } {
  const E = cfg.numRoutedExperts;
  const k = cfg.expertsPerToken;
  const scores = new Float64Array(E);
  if (cfg.scoringFunc === "softmax") {
    let mx = -Infinity;
    for (let e = 0; e < E; e++) mx = Math.max(mx, logits[offset + e]!);
    let sum = 0;
    for (let e = 0; e < E; e++) sum += scores[e] = Math.exp(logits[offset + e]! - mx);
    for (let e = 0; e < E; e++) scores[e] = scores[e]! / sum;
  } else {
    for (let e = 0; e < E; e++) {
      const l = logits[offset + e]!;
      scores[e] = cfg.scoringFunc === "sigmoid" ? 1 / (1 + Math.exp(-l)) : Math.sqrt(softplus(l));
    }
  }
  let experts: Int32Array;
  if (w.tid2eid) {
    if (token < 0 || token >= cfg.vocabSize) throw new RangeError(`token id ${token} is outside the vocabulary [0, ${cfg.vocabSize})`);
    experts = w.tid2eid.slice(token * k, (token + 1) * k);
  } else {
    // The bias steers selection only; the weights come from the unbiased scores.
    const biased = w.bias ? scores.map((s, e) => s + w.bias![e]!) : scores;
    experts = topkIndices(biased, E, k);
  }
  const weights = new Float64Array(k);
  let sum = 0;
  for (let i = 0; i < k; i++) sum += weights[i] = scores[experts[i]!]!;
  for (let i = 0; i < k; i++) {
    if (cfg.scoringFunc !== "softmax") weights[i] = weights[i]! / sum;
    weights[i] = weights[i]! * cfg.routedScale;
  }
  return { experts, weights };
}

function allRows(n: number): Int32Array {
  const rows = new Int32Array(n);
  for (let i = 0; i < n; i++) rows[i] = i;
  return rows;
}

/** SwiGLU expert on a batch of rows; `rowWeights` scales the activation before w2 (routed experts). */
function expertForward(backend: Backend, cfg: ModelConfig, w: Pick<ExpertWeights, "w1" | "w3" | "w2">, x: Vec, rows: number, rowWeights: Float64Array | null): Vec {
  const g = backend.linear(x, rows, w.w1, true);
  const u = backend.linear(x, rows, w.w3, true);
  backend.swiglu(g, u, rows, cfg.moeInterDim, cfg.swigluLimit, rowWeights);
  return backend.linear(g, rows, w.w2, true);
}

/** The MoE of one layer for a batch: rows are grouped per expert so each expert's weights are read once. */
export function moeForward(
  backend: Backend, cfg: ModelConfig, layer: LayerSchedule, w: MoeWeights, x: Vec, tokens: ArrayLike<number>, trace?: MoeTrace,
): Vec {
  const R = tokens.length;
  const D = cfg.dim;
  const E = cfg.numRoutedExperts;
  const logits = backend.linear(x, R, w.gate, false);
  const byExpert: Array<Array<{ row: number; weight: number }>> = Array.from({ length: E }, () => []);
  for (let r = 0; r < R; r++) {
    const { experts, weights } = route(cfg, layer, w, logits, r * E, tokens[r]!);
    trace?.router?.(layer.id, r, experts, weights);
    experts.forEach((e, i) => byExpert[e]!.push({ row: r, weight: weights[i]! }));
  }
  const y = backend.alloc(R * D);
  // Ascending expert id, as the reference accumulates.
  const picked: ExpertPicks[] = [];
  for (let e = 0; e < E; e++) {
    const picks = byExpert[e]!;
    if (picks.length === 0) continue;
    const { w1, w3, w2 } = w.expert(e);
    picked.push({ w1, w3, w2, rows: Int32Array.from(picks, (p) => p.row), weights: Float64Array.from(picks, (p) => p.weight) });
  }
  if (backend.routedExperts && picked.length >= MIN_EXPERTS_AS_ONE_OP) {
    backend.routedExperts(x, D, picked, cfg.moeInterDim, cfg.swigluLimit, y);
  } else {
    for (const p of picked) {
      const out = expertForward(backend, cfg, p, selectRows(backend, x, p.rows, D), p.rows.length, p.weights);
      backend.addRows(y, out, p.rows, D);
    }
  }
  const shared = expertForward(backend, cfg, w.shared, x, R, null);
  backend.addRows(y, shared, allRows(R), D);
  return y;
}
