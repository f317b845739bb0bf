import { Checkpoint } from "../formats/safetensors.js";
import type { Backend, Vec } from "../kernels/backend.js";
import { attentionForward, type AttentionTrace } from "./attention.js";
import { loadConfig, type ModelConfig } from "./config.js";
import { hcHead, hcPost, hcPre, selectMix } from "./mhc.js";
import { moeForward, type MoeTrace } from "./moe.js";
import { RopeTable } from "./rope.js";
import { selectRows } from "./rows.js";
import { SequenceState, type LayerState } from "./state.js";
import { loadWeights, type BlockWeights, type HcWeights, type LoadProgress, type ModelWeights } from "./weights.js";

/** Observation hooks for localising a mismatch (router and indexer choices). */
export type ForwardTrace = AttentionTrace & MoeTrace;

/** Tokens to append to one sequence in a forward step. */
export interface ForwardRequest {
  seq: SequenceState;
  tokens: readonly number[];
  /** Per-request override of ForwardOptions.logits (e.g. draft verification next to a prefill). */
  logits?: "all" | "last" | "none";
  /** Per-request override of ForwardOptions.residual; a number keeps that many last positions. */
  residual?: "all" | "last" | "none" | number;
}

export interface ForwardOptions {
  /** Which positions of each request get logits (default: the last). */
  logits?: "all" | "last" | "none";
  /** Which positions return their final residual streams [hc·dim] (for MTP drafting). */
  residual?: "all" | "last" | "none";
  trace?: ForwardTrace;
}

export interface ForwardOutput {
  /** Logits [vocab] per selected position, in position order. */
  logits: Vec[];
  /** Final residual streams [hc, dim] per selected position, before the head's collapse. */
  residual: Vec[];
}

export interface MtpRequest {
  seq: SequenceState;
  /** Residual streams [hc, dim] of the main model (or of a previous MTP step) at the position. */
  hidden: Vec;
  /** The token at the next position. */
  token: number;
  /** Skip the head when only the state needs to advance (catching up positions). Default true. */
  logits?: boolean;
}

interface BlockRow {
  state: LayerState;
  pos: number;
  token: number;
}

export interface LoadOptions {
  backend: Backend;
  onProgress?: (p: LoadProgress) => void;
}

/**
 * DeepSeek-V4 forward pass over a batch of sequences (spec §2): any number of sequences,
 * each with any number of new tokens, in one layer-major pass. Results equal token-by-token
 * decoding because each row attends and updates its own state in position order.
 */
export class Dsv4Model {
  private readonly ropes: RopeTable[];
  private readonly mtpRopes: RopeTable[];

  constructor(readonly cfg: ModelConfig, readonly weights: ModelWeights, readonly backend: Backend, readonly weightBytes: number, private readonly ckpt?: Checkpoint) {
    this.ropes = cfg.layers.map((l) => RopeTable.forLayer(cfg, l));
    this.mtpRopes = cfg.mtpLayers.map((l) => RopeTable.forLayer(cfg, l));
  }

  static load(dir: string, opts: LoadOptions): Dsv4Model {
    const cfg = loadConfig(dir);
    const ckpt = Checkpoint.open(dir);
    try {
      const { weights, loader } = loadWeights(ckpt, cfg, opts.backend, opts.onProgress);
      return new Dsv4Model(cfg, weights, opts.backend, loader.bytes, ckpt);
    } catch (err) {
      ckpt.close();
      throw err;
    }
  }

  newSequence(): SequenceState {
    return new SequenceState(this.backend, this.cfg);
  }

  private checkTokens(tokens: readonly number[], start: number): void {
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= this.cfg.vocabSize) {
        throw new RangeError(`token id ${t} is not in the vocabulary [0, ${this.cfg.vocabSize})`);
      }
    }
    if (start + tokens.length > this.cfg.maxPositions) {
      throw new RangeError(`sequence would reach ${start + tokens.length} tokens; the model's maximum is ${this.cfg.maxPositions} (max_position_embeddings)`);
    }
  }

  forward(requests: readonly ForwardRequest[], opts: ForwardOptions = {}): ForwardOutput[] {
    for (const r of requests) this.checkTokens(r.tokens, r.seq.length);
    const cfg = this.cfg;
    const D = cfg.dim;
    const hc = cfg.hcMult;
    const rows: Array<{ seq: SequenceState; pos: number; token: number }> = [];
    for (const r of requests) r.tokens.forEach((token, i) => rows.push({ seq: r.seq, pos: r.seq.length + i, token }));
    const R = rows.length;

    // Which rows leave the model: logits and residual streams, by batch row.
    const want = (mode: ForwardOptions["logits"] | number, i: number, n: number) =>
      mode === "all" || (mode === "last" && i === n - 1) || (typeof mode === "number" && i >= n - mode);
    const logitRows: number[] = [];
    const residualRows: number[] = [];
    let at = 0;
    for (const r of requests) {
      for (let i = 0; i < r.tokens.length; i++) {
        if (want(r.logits ?? opts.logits ?? "last", i, r.tokens.length)) logitRows.push(at + i);
        if (want(r.residual ?? opts.residual ?? "none", i, r.tokens.length)) residualRows.push(at + i);
      }
      at += r.tokens.length;
    }
    // The last layer's output matters only for those rows (llama.cpp does the same): the other
    // rows still update its attention state but skip its queries, output projection and
    // FFN. A trace asks for every row, so it keeps them all.
    const outRows = [...new Set([...logitRows, ...residualRows])].sort((a, b) => a - b);
    const prune = !opts.trace && outRows.length < R;
    const kept = prune ? outRows : rows.map((_, r) => r);
    const slot = new Map(kept.map((row, k) => [row, k])); // batch row -> row of the final X

    let X = this.backend.alloc(R * hc * D);
    const e = this.backend.alloc(D);
    rows.forEach((row, r) => {
      this.backend.matrixRow(this.weights.embed, row.token, e, 0);
      for (let j = 0; j < hc; j++) X.set(e, (r * hc + j) * D);
    });
    const last = this.weights.blocks.length - 1;
    this.weights.blocks.forEach((bw, L) => {
      const blockRows = rows.map((row) => ({ state: row.seq.layers[L]!, pos: row.pos, token: row.token }));
      X = this.block(bw, this.ropes[L]!, X, blockRows, opts.trace, prune && L === last ? outRows : undefined);
    });

    const logits = this.head(X, logitRows.map((row) => slot.get(row)!), this.weights.hcHead, this.weights.norm);
    const outputs: ForwardOutput[] = [];
    at = 0;
    for (const r of requests) {
      const n = r.tokens.length;
      outputs.push({
        logits: logitRows.flatMap((row, k) => (row >= at && row < at + n ? [logits[k]!] : [])),
        residual: residualRows
          .filter((row) => row >= at && row < at + n)
          .map((row) => X.slice(slot.get(row)! * hc * D, (slot.get(row)! + 1) * hc * D) as Vec),
      });
      at += n;
      r.seq.length += n;
    }
    return outputs;
  }

  /**
   * One MTP step per request (spec §8): combine the given residual streams with the next
   * token's embedding, run the MTP block on the sequence's own MTP state, and return its
   * logits (predicting the token after `token`) and output streams for chained drafting.
   */
  mtpForward(requests: readonly MtpRequest[], opts: { trace?: ForwardTrace } = {}): Array<{ logits: Vec | null; residual: Vec }> {
    if (this.weights.mtp.length === 0) throw new Error("this checkpoint has no MTP block (num_nextn_predict_layers = 0)");
    for (const r of requests) this.checkTokens([r.token], r.seq.mtpLength);
    const cfg = this.cfg;
    const D = cfg.dim;
    const hc = cfg.hcMult;
    const R = requests.length;
    const bw = this.weights.mtp[0]!;
    const m = bw.mtp!;
    const emb = this.backend.alloc(R * D);
    requests.forEach((r, i) => this.backend.matrixRow(this.weights.embed, r.token, emb, i * D));
    const e = this.backend.linear(this.backend.rmsNorm(emb, R, D, m.enorm, cfg.normEps), R, m.eProj, true);
    const hidden = this.backend.alloc(R * hc * D);
    requests.forEach((r, i) => hidden.set(r.hidden, i * hc * D));
    const h = this.backend.linear(this.backend.rmsNorm(hidden, R * hc, D, m.hnorm, cfg.normEps), R * hc, m.hProj, true);
    for (let i = 0; i < R; i++) {
      for (let j = 0; j < hc; j++) {
        const o = (i * hc + j) * D;
        for (let k = 0; k < D; k++) h[o + k] = h[o + k]! + e[i * D + k]!;
      }
    }
    const X = this.block(bw, this.mtpRopes[0]!, h, requests.map((r) => ({ state: r.seq.mtp[0]!, pos: r.seq.mtpLength, token: r.token })), opts.trace);
    const headRows = requests.flatMap((r, i) => (r.logits === false ? [] : [i]));
    const logits = this.head(X, headRows, m.hcHead, m.norm);
    for (const r of requests) r.seq.mtpLength += 1;
    return requests.map((_, i) => {
      const k = headRows.indexOf(i);
      return { logits: k >= 0 ? logits[k]! : null, residual: X.slice(i * hc * D, (i + 1) * hc * D) as Vec };
    });
  }

  /**
   * One block over the batch. With `outRows` (ascending batch indices) only those rows come
   * out: all rows update the attention state, the rest of the block runs for those rows.
   */
  private block(bw: BlockWeights, rope: RopeTable, X: Vec, rows: BlockRow[], trace?: ForwardTrace, outRows?: readonly number[]): Vec {
    const cfg = this.cfg;
    const b = this.backend;
    const attnIn = hcPre(b, cfg, X, rows.length, bw.hcAttn);
    const a = b.rmsNorm(attnIn.collapsed, rows.length, cfg.dim, bw.attnNorm, cfg.normEps);
    const att = attentionForward(b, cfg, bw.layer, bw.attn, rope, a, rows, trace, outRows);
    let mix = attnIn.mix;
    if (outRows) {
      X = selectRows(b, X, outRows, cfg.hcMult * cfg.dim);
      mix = selectMix(mix, outRows, cfg.hcMult);
      rows = outRows.map((r) => rows[r]!);
    }
    const R = rows.length;
    if (R === 0) return X;
    X = hcPost(b, cfg, att, X, R, mix);
    const ffnIn = hcPre(b, cfg, X, R, bw.hcFfn);
    const f = b.rmsNorm(ffnIn.collapsed, R, cfg.dim, bw.ffnNorm, cfg.normEps);
    const moe = moeForward(b, cfg, bw.layer, bw.moe, f, rows.map((r) => r.token), trace);
    return hcPost(b, cfg, moe, X, R, ffnIn.mix);
  }

  /** Collapse the streams, normalise and project to the vocabulary for the given rows. */
  private head(X: Vec, rowIndices: number[], hc: HcWeights, norm: Vec): Vec[] {
    if (rowIndices.length === 0) return [];
    const cfg = this.cfg;
    const sel = selectRows(this.backend, X, rowIndices, cfg.hcMult * cfg.dim);
    const y = this.backend.rmsNorm(hcHead(this.backend, cfg, sel, rowIndices.length, hc), rowIndices.length, cfg.dim, norm, cfg.normEps);
    const logits = this.backend.linear(y, rowIndices.length, this.weights.head, false);
    const V = cfg.vocabSize;
    return rowIndices.map((_, i) => logits.subarray(i * V, (i + 1) * V) as Vec);
  }

  close(): void {
    this.ckpt?.close();
  }
}
