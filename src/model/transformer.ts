import { Checkpoint } from "../formats/safetensors.js";
import type { Backend, Vec } from "../kernels/backend.js";
import { attentionForward, type AttentionTrace } from "./attention.js";
import { dsparkAttention, writeDsparkRing, type DsparkBlockGroup } from "./dspark-attention.js";
import { loadConfig, type ModelConfig } from "./config.js";
import { hcHead, hcPost, hcPre, selectMix } from "./mhc.js";
import { moeForward, type MoeTrace } from "./moe.js";
import { RopeTable } from "./rope.js";
import { selectRows } from "./rows.js";
import { SequenceState, type LayerState } from "./state.js";
import { lockCheckpoint, shouldRepack, prefetchCheckpoint, type PrefetchMode } from "./prefetch.js";
import { drafterLayout, loadDraftVocabParts, loadRoutedExperts, loadWeights, type BlockWeights, type DraftVocabPart, type HcWeights, type LoadProgress, type ModelWeights } from "./weights.js";

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
  /**
   * Write these positions into the DSpark stages' rings (spec §8b; only the last
   * min(n, window) can matter, so only those are written), after the positions the sequence
   * owes. A DSpark checkpoint needs it on every committed position a later draft may see.
   * "defer": owe them instead (their taps are kept; dspark-owed.ts), for a sequence that may
   * not draft soon; a later `true` step, settleDspark or a draft writes them, exactly.
   */
  dspark?: boolean | "defer";
  /** Return main_x [dim] (the draft's main input) for the last this-many positions. */
  mainXLast?: number;
  /** Return the taps [targets·dim] for the last this-many positions (goldens, tests). */
  tapsLast?: number;
  /**
   * Greedy positions: one list of masked ids for each position this request gets logits for
   * (`logits`), in order. Those positions return their greedy token (ForwardOutput.greedy: the
   * first index of the largest logit outside the masked ids, what argmax over the logits
   * gives) instead of their logits, which a backend with greedyRows finds without computing
   * every logit exactly.
   */
  greedy?: ReadonlyArray<readonly number[]>;
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
  /** DSpark main_x [dim] of the last `mainXLast` positions, in position order. */
  mainX: Vec[];
  /** DSpark taps [targets·dim] of the last `tapsLast` positions, in position order. */
  taps: Vec[];
  /** The greedy token of each logits position when the request asked for `greedy` (its logits are then not returned). */
  greedy: number[];
}

/** One sequence to draft for: the main model has committed position t = seq.length − 1. */
export interface DsparkDraftRequest {
  seq: SequenceState;
  /** main_x [dim] of position t (ForwardRequest.mainXLast). */
  mainX: Vec;
  /** The token chosen for position t + 1 (the block's first id). */
  anchor: number;
  /** Picks d_{i+1} from draft i's final (Markov-biased) logits; called once per i, in order. Default argmax. */
  choose?: (i: number, logits: Vec) => number;
}

export interface DsparkDraft {
  /** d_1 .. d_B: proposals for positions t+2 .. t+B+1. */
  tokens: number[];
  /** B rows of logits, Markov bias included (what `choose` saw). */
  logits: Vec[];
  /** B confidence logits: σ(c_i) estimates that d_{i+1} survives verification. */
  confidence: number[];
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
  /** Touch the mapped weights at load (prefetch.ts); default "auto". */
  prefetch?: PrefetchMode;
  /** Keep the mapped weights in memory, never paged out (prefetch.ts lockCheckpoint); default false. */
  mlock?: boolean;
  /**
   * Let the backend copy every routed expert at load into the layout its kernels stream
   * fastest (StoredMatrix.repack: the native backend's FP4 tiles on AVX-512, the same
   * products bit for bit), and the dense matrices whose mapped rows do not start on a cache
   * line into aligned memory (Backend.alignRows), letting the mapped pages go. Default true,
   * and only done when the checkpoint fits in available memory with 2 GiB to spare (a larger
   * one stays mapped and paged, each expert created on its first use); false keeps every
   * weight read in place from the checkpoint's mapping (llama.cpp's --no-repack).
   */
  repack?: boolean;
}

/**
 * DeepSeek-V4 forward pass over a batch of sequences (spec §2): any number of sequences,
 * each with any number of new tokens, in one layer-major pass. Results equal token-by-token
 * decoding because each row attends and updates its own state in position order.
 */
export class Dsv4Model {
  private readonly ropes: RopeTable[];
  private readonly mtpRopes: RopeTable[];
  /** The draft vocabulary (setDraftVocab), null: drafts range over the whole vocabulary. */
  private draftVocab: DraftVocabPart[] | null = null;

  constructor(readonly cfg: ModelConfig, readonly weights: ModelWeights, readonly backend: Backend, readonly weightBytes: number, private readonly ckpt?: Checkpoint) {
    this.ropes = cfg.layers.map((l) => RopeTable.forLayer(cfg, l));
    this.mtpRopes = cfg.mtpLayers.map((l) => RopeTable.forLayer(cfg, l));
  }

  static load(dir: string, opts: LoadOptions): Dsv4Model {
    const cfg = loadConfig(dir);
    const ckpt = Checkpoint.open(dir);
    try {
      // All experts repacked at once after the prefetch (and after the lock, so that each
      // expert's mapped pages are unlocked and let go, not locked twice): no step then pays
      // for an expert's copy (that took a 1-stream flash-slice step from 37 to 88 ms while
      // new experts came in).
      // (A backend that would not repack them keeps loading each expert on its first use.)
      const own = shouldRepack(opts.repack, ckpt.totalBytes());
      const repack = own && opts.backend.repacksFp4?.() === true;
      const { weights, loader } = loadWeights(ckpt, cfg, opts.backend, opts.onProgress, { repack });
      prefetchCheckpoint(ckpt, opts.backend, opts.prefetch ?? "auto", opts.onProgress);
      if (opts.mlock) lockCheckpoint(ckpt, opts.backend);
      // Dense matrices whose mapped rows do not start on a cache line are copied where they do
      // (Backend.alignRows), like the experts after the lock.
      if (own && opts.backend.alignRows) for (const h of loader.dense) opts.backend.alignRows(h);
      if (repack) loadRoutedExperts(cfg, weights, opts.onProgress);
      return new Dsv4Model(cfg, weights, opts.backend, loader.bytes, ckpt);
    } catch (err) {
      ckpt.close();
      throw err;
    }
  }

  /**
   * Drafts (DSpark blocks, MTP chains) propose only tokens with ids in these ranges: the
   * draft's head and its Markov bias read just those rows (mapped views of the same tensors),
   * and draft logits are -Infinity elsewhere, so a greedy or sampled draft never leaves them.
   * The main model's logits, and so the tokens speculation emits, do not change: a draft
   * vocabulary trades acceptance (a token outside it is never proposed) for draft cost, as
   * frequency-ranked draft vocabularies do (FR-Spec). Ranges: sorted, disjoint, half-open;
   * null, or ranges covering the vocabulary, drafts over all of it.
   */
  setDraftVocab(ranges: ReadonlyArray<readonly [number, number]> | null): void {
    const V = this.cfg.vocabSize;
    if (ranges !== null) {
      let prevEnd = 0;
      ranges.forEach(([start, end], i) => {
        if (!Number.isInteger(start) || !Number.isInteger(end) || start < prevEnd || end <= start || end > V) {
          throw new RangeError(`draft vocabulary: range ${i} [${start}, ${end}) is not a non-empty id range after the previous one and within [0, ${V})`);
        }
        prevEnd = end;
      });
    }
    const size = (ranges ?? []).reduce((n, [a, b]) => n + b - a, 0);
    if (ranges === null || size === V) {
      this.draftVocab = null;
      return;
    }
    if (this.cfg.drafter === "none" || !this.ckpt) throw new Error(`a draft vocabulary needs a drafter and the model's checkpoint (drafter: ${drafterLayout(this.cfg)})`);
    if (size === 0) throw new RangeError("draft vocabulary: no token ids");
    this.draftVocab = loadDraftVocabParts(this.ckpt, this.cfg, this.backend, ranges, this.cfg.drafter === "dspark");
  }

  /** Token ids drafts may propose (setDraftVocab): the vocabulary size when unrestricted. */
  get draftVocabSize(): number {
    return this.draftVocab ? this.draftVocab.reduce((n, p) => n + p.end - p.start, 0) : this.cfg.vocabSize;
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
    // Per logits row: the masked ids of a greedy position, else undefined.
    const greedyMasks: Array<readonly number[] | undefined> = [];
    const residualRows: number[] = [];
    // DSpark: rows whose taps are needed (ring writes, main_x or taps out), ascending.
    const tapRows: number[] = [];
    const ringRows: number[] = [];
    const owedRows: number[] = [];
    // Rows whose main_x is needed: ring writes and main_x out (owed rows wait for their settling).
    const mxRows: number[] = [];
    let at = 0;
    for (const r of requests) {
      const n = r.tokens.length;
      const ring = r.dspark === true ? Math.min(n, cfg.window) : 0;
      const owe = r.dspark === "defer" ? Math.min(n, cfg.window) : 0;
      if (owe > 0 && r.seq.inTail) throw new Error('dspark "defer" on a step whose tail may be dropped: owed rows would outlive dropped positions; write the rings (dspark: true) on verify steps');
      const taps = Math.max(ring, owe, r.mainXLast ?? 0, r.tapsLast ?? 0);
      if (taps > 0 && !this.weights.dspark) throw new Error(`this checkpoint has no DSpark drafter (drafter: ${drafterLayout(cfg)}); dspark, mainXLast and tapsLast need a 0731 checkpoint`);
      const firstLogit = logitRows.length;
      for (let i = 0; i < n; i++) {
        if (want(r.logits ?? opts.logits ?? "last", i, n)) {
          greedyMasks.push(r.greedy?.[logitRows.length - firstLogit]);
          logitRows.push(at + i);
        }
        if (want(r.residual ?? opts.residual ?? "none", i, n)) residualRows.push(at + i);
        if (i >= n - taps) tapRows.push(at + i);
        if (i >= n - ring) ringRows.push(at + i);
        if (i >= n - owe) owedRows.push(at + i);
        if (i >= n - Math.max(ring, r.mainXLast ?? 0)) mxRows.push(at + i);
      }
      if (r.greedy && r.greedy.length !== logitRows.length - firstLogit) {
        throw new Error(`forward: ${r.greedy.length} greedy masks for a request with ${logitRows.length - firstLogit} logits positions`);
      }
      at += n;
    }
    // Owed positions come before this step's: settle them first, so ring slots are written in position order.
    this.settleDspark(requests.filter((r) => r.dspark === true).map((r) => r.seq));
    // The last layer's output matters only for those rows (llama.cpp does the same): the other
    // rows still update its attention state but skip its queries, output projection and
    // FFN. A trace asks for every row, so it keeps them all.
    const last = this.weights.blocks.length - 1;
    const tapLayers = cfg.dspark?.targetLayerIds ?? [];
    const lastTapped = tapRows.length > 0 && tapLayers.includes(last);
    const outRows = [...new Set([...logitRows, ...residualRows, ...(lastTapped ? tapRows : [])])].sort((a, b) => a - b);
    const prune = !opts.trace && outRows.length < R;
    const kept = prune ? outRows : rows.map((_, r) => r);
    const slot = new Map(kept.map((row, k) => [row, k])); // batch row -> row of the final X

    let X = this.backend.alloc(R * hc * D);
    const e = this.backend.alloc(D);
    rows.forEach((row, r) => {
      this.backend.matrixRow(this.weights.embed, row.token, e, 0);
      for (let j = 0; j < hc; j++) X.set(e, (r * hc + j) * D);
    });
    const taps = this.backend.alloc(tapRows.length * tapLayers.length * D);
    this.weights.blocks.forEach((bw, L) => {
      const blockRows = rows.map((row) => ({ state: row.seq.layers[L]!, pos: row.pos, token: row.token }));
      const pruned = prune && L === last;
      X = this.block(bw, this.ropes[L]!, X, blockRows, opts.trace, pruned ? outRows : undefined);
      const j = tapLayers.indexOf(L);
      if (j >= 0) this.tapStreams(X, tapRows.map((row) => (pruned ? slot.get(row)! : row)), taps, j, tapLayers.length);
    });
    const width = tapLayers.length * D;
    for (const row of owedRows) rows[row]!.seq.dsparkOwed!.add(rows[row]!.pos, taps, tapRows.indexOf(row) * width);
    const mxTaps = mxRows.length === tapRows.length ? taps : selectRows(this.backend, taps, mxRows.map((row) => tapRows.indexOf(row)), width);
    const mainX = mxRows.length > 0 ? this.mainX(mxTaps, mxRows.length) : this.backend.alloc(0);
    if (ringRows.length > 0) {
      const ringX = selectRows(this.backend, mainX, ringRows.map((row) => mxRows.indexOf(row)), D);
      this.weights.mtp.forEach((bw, k) => {
        writeDsparkRing(this.backend, cfg, bw.attn, this.mtpRopes[k]!, ringX, ringRows.map((row) => ({ state: rows[row]!.seq.mtp[k]!, pos: rows[row]!.pos })));
      });
    }

    const heads = this.mainHead(X, logitRows.map((row) => slot.get(row)!), greedyMasks);
    const outputs: ForwardOutput[] = [];
    at = 0;
    for (const r of requests) {
      const n = r.tokens.length;
      const tapsOf = (count: number | undefined, width: number, src: Vec, srcRows: readonly number[]) => {
        const from = at + n - Math.min(count ?? 0, n);
        return srcRows.flatMap((row, k) => (row >= from && row < at + n ? [src.slice(k * width, (k + 1) * width) as Vec] : []));
      };
      const mine = (row: number) => row >= at && row < at + n;
      outputs.push({
        logits: logitRows.flatMap((row, k) => (mine(row) && heads.logits[k] ? [heads.logits[k]!] : [])),
        greedy: logitRows.flatMap((row, k) => (mine(row) && heads.tokens[k] !== null ? [heads.tokens[k]!] : [])),
        residual: residualRows
          .filter((row) => row >= at && row < at + n)
          .map((row) => X.slice(slot.get(row)! * hc * D, (slot.get(row)! + 1) * hc * D) as Vec),
        mainX: tapsOf(r.mainXLast, D, mainX, mxRows),
        taps: tapsOf(r.tapsLast, width, taps, tapRows),
      });
      at += n;
      r.seq.length += n;
    }
    return outputs;
  }

  /**
   * MTP steps, one per request (spec §8): combine the given residual streams with the next
   * token's embedding, run the MTP block on the sequence's own MTP state, and return its
   * logits (predicting the token after `token`) and output streams for chained drafting. A
   * sequence may have several requests in one call: they take its next positions in call order
   * (a catch-up over several entries is one batched pass, as a prompt's tokens are). Requests
   * with `logits: false` only advance the state: they skip the head and the block's output
   * rows, and return no streams.
   */
  mtpForward(requests: readonly MtpRequest[], opts: { trace?: ForwardTrace } = {}): Array<{ logits: Vec | null; residual: Vec | null }> {
    if (this.cfg.drafter !== "mtp") throw new Error(`this checkpoint has no April MTP block (drafter: ${drafterLayout(this.cfg)})`);
    const offset = new Map<SequenceState, number>();
    const positions = requests.map((r) => {
      const k = offset.get(r.seq) ?? 0;
      offset.set(r.seq, k + 1);
      return r.seq.mtpLength + k;
    });
    requests.forEach((r, i) => this.checkTokens([r.token], positions[i]!));
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
    const outRows = requests.flatMap((r, i) => (r.logits === false ? [] : [i]));
    const prune = !opts.trace && outRows.length < R;
    const rows = requests.map((r, i) => ({ state: r.seq.mtp[0]!, pos: positions[i]!, token: r.token }));
    const X = this.block(bw, this.mtpRopes[0]!, h, rows, opts.trace, prune ? outRows : undefined);
    // Request i's row of X: its place among the output rows when pruned.
    const logits = this.head(X, prune ? outRows.map((_, k) => k) : outRows, m.hcHead, m.norm, this.draftVocab);
    for (const [seq, n] of offset) seq.mtpLength += n;
    return requests.map((_, i) => {
      const k = outRows.indexOf(i);
      if (k < 0) return { logits: null, residual: null };
      const row = prune ? k : i;
      return { logits: logits[k]!, residual: X.slice(row * hc * D, (row + 1) * hc * D) as Vec };
    });
  }

  /**
   * One block over the batch. With `outRows` (ascending batch indices) only those rows come
   * out: all rows update the attention state, the rest of the block runs for those rows.
   */
  private block(bw: BlockWeights, rope: RopeTable, X: Vec, rows: BlockRow[], trace?: ForwardTrace, outRows?: readonly number[]): Vec {
    const attend = (a: Vec) => attentionForward(this.backend, this.cfg, bw.layer, bw.attn, rope, a, rows, trace, outRows);
    return this.blockWith(bw, X, rows.map((r) => r.token), attend, trace, outRows);
  }

  /** A block (spec §2) around the given attention: mHC, attention, mHC, MoE, mHC. */
  private blockWith(bw: BlockWeights, X: Vec, tokens: number[], attend: (a: Vec) => Vec, trace?: ForwardTrace, outRows?: readonly number[]): Vec {
    const cfg = this.cfg;
    const b = this.backend;
    const attnIn = hcPre(b, cfg, X, tokens.length, bw.hcAttn);
    const a = b.rmsNorm(attnIn.collapsed, tokens.length, cfg.dim, bw.attnNorm, cfg.normEps);
    const att = attend(a);
    let mix = attnIn.mix;
    if (outRows) {
      X = selectRows(b, X, outRows, cfg.hcMult * cfg.dim);
      mix = selectMix(mix, outRows, cfg.hcMult);
      tokens = outRows.map((r) => tokens[r]!);
    }
    const R = tokens.length;
    if (R === 0) return X;
    X = hcPost(b, cfg, att, X, R, mix);
    const ffnIn = hcPre(b, cfg, X, R, bw.hcFfn);
    const f = b.rmsNorm(ffnIn.collapsed, R, cfg.dim, bw.ffnNorm, cfg.normEps);
    const moe = moeForward(b, cfg, bw.layer, bw.moe, f, tokens, trace);
    return hcPost(b, cfg, moe, X, R, ffnIn.mix);
  }

  /** Column block j of the taps: the mean over the hc streams of the given rows of X. */
  private tapStreams(X: Vec, xRows: readonly number[], taps: Vec, j: number, targets: number): void {
    const D = this.cfg.dim;
    const hc = this.cfg.hcMult;
    xRows.forEach((xr, k) => {
      const o = (k * targets + j) * D;
      for (let d = 0; d < D; d++) {
        let sum = 0;
        for (let s = 0; s < hc; s++) sum += X[(xr * hc + s) * D + d]!;
        taps[o + d] = sum / hc;
      }
    });
  }

  /**
   * Writes the DSpark ring rows these sequences owe (ForwardRequest.dspark "defer"), all in
   * one batched main_proj: afterwards their rings are as if every position had been written
   * when it was decoded. Before a snapshot, a block capture or a step whose tail may be dropped.
   */
  settleDspark(seqs: readonly SequenceState[]): void {
    const owing = seqs.filter((s) => s.dsparkOwed && s.dsparkOwed.count > 0);
    if (owing.length === 0) return;
    const debts = owing.map((seq) => ({ seq, ...seq.dsparkOwed!.take() }));
    const width = debts[0]!.seq.dsparkOwed!.width;
    const count = debts.reduce((n, d) => n + d.positions.length, 0);
    const taps = this.backend.alloc(count * width);
    const targets: Array<{ seq: SequenceState; pos: number }> = [];
    for (const d of debts) {
      taps.set(d.taps, targets.length * width);
      for (const pos of d.positions) targets.push({ seq: d.seq, pos });
    }
    const mainX = this.mainX(taps, count);
    this.weights.mtp.forEach((bw, k) => {
      writeDsparkRing(this.backend, this.cfg, bw.attn, this.mtpRopes[k]!, mainX, targets.map((t) => ({ state: t.seq.mtp[k]!, pos: t.pos })));
    });
  }

  /** main_x = RMSNorm(main_proj(taps); main_norm) for `rows` rows of taps (spec §8b). */
  private mainX(taps: Vec, rows: number): Vec {
    const dw = this.weights.dspark!;
    return this.backend.rmsNorm(this.backend.linear(taps, rows, dw.mainProj, true), rows, this.cfg.dim, dw.mainNorm, this.cfg.normEps);
  }

  /**
   * One DSpark block draft per request (spec §8b), batched: the block [anchor, noise × (B−1)]
   * at positions t+1 … t+B runs through the S stages (each attending its ring and the whole
   * block), the last stage's HCHead, norm and the shared head; then, sequentially, each row's
   * logits get the Markov bias of the previous token and `choose` picks the next token.
   * Nothing in the sequence's state changes.
   */
  dsparkDraft(requests: readonly DsparkDraftRequest[], opts: { trace?: ForwardTrace } = {}): DsparkDraft[] {
    const cfg = this.cfg;
    const ds = cfg.dspark;
    const dw = this.weights.dspark;
    if (!ds || !dw) throw new Error(`this checkpoint has no DSpark drafter (drafter: ${drafterLayout(cfg)})`);
    if (requests.length === 0) return [];
    const b = this.backend;
    const D = cfg.dim;
    const hc = cfg.hcMult;
    const B = ds.blockSize;
    const N = requests.length;
    const Rk = ds.markovRank;
    const V = cfg.vocabSize;
    for (const r of requests) {
      if (r.seq.length < 1) throw new RangeError("dsparkDraft: the sequence has no committed position to draft from");
      this.checkTokens([r.anchor], 0);
      if (r.mainX.length !== D) throw new RangeError(`dsparkDraft: mainX has ${r.mainX.length} values, expected ${D}`);
    }
    // A draft reads the rings: what they owe is written first.
    this.settleDspark(requests.map((r) => r.seq));
    const groups = (k: number): DsparkBlockGroup[] => requests.map((r) => ({ state: r.seq.mtp[k]!, t: r.seq.length - 1 }));
    const ids = requests.flatMap((r) => [r.anchor, ...Array<number>(B - 1).fill(ds.noiseTokenId)]);
    let X = b.alloc(N * B * hc * D);
    const e = b.alloc(D);
    ids.forEach((id, row) => {
      b.matrixRow(this.weights.embed, id, e, 0);
      for (let j = 0; j < hc; j++) X.set(e, (row * hc + j) * D);
    });
    this.weights.mtp.forEach((bw, k) => {
      const attend = (a: Vec) => dsparkAttention(b, cfg, bw.attn, this.mtpRopes[k]!, a, groups(k), B);
      X = this.blockWith(bw, X, ids, attend, opts.trace);
    });
    const H = hcHead(b, cfg, X, N * B, dw.hcHead);
    const y = b.rmsNorm(H, N * B, D, dw.norm, cfg.normEps);
    // With a draft vocabulary the logits and the Markov bias live in its parts until a row
    // is chosen from; `logits` then holds full rows, -Infinity outside it.
    const vocab = this.draftVocab;
    const partLogits = vocab?.map((p) => b.linear(y, N * B, p.head, false));
    const logits = vocab ? b.alloc(N * B * V).fill(-Infinity) : b.linear(y, N * B, this.weights.head, false);

    // The Markov chain: draft i's bias depends on the token chosen at i − 1.
    const prev = requests.map((r) => r.anchor);
    const markovE = b.alloc(N * B * Rk);
    const emb = b.alloc(N * Rk);
    const tokens: number[][] = requests.map(() => []);
    // Row i of each request's block: the rows the bias is added to (in the backend, not a
    // per-element JS loop over the vocabulary).
    const biasRows = (i: number) => Int32Array.from(requests, (_, n) => n * B + i);
    for (let i = 0; i < B; i++) {
      prev.forEach((d, n) => b.matrixRow(dw.markovW1, d, emb, n * Rk));
      if (vocab) vocab.forEach((p, j) => b.addRows(partLogits![j]!, b.linear(emb, N, p.markovW2!, false), biasRows(i), p.end - p.start));
      else b.addRows(logits, b.linear(emb, N, dw.markovW2, false), biasRows(i), V);
      for (let n = 0; n < N; n++) {
        if (vocab) this.spreadRow(vocab, partLogits!, n * B + i, logits);
        const row = logits.subarray((n * B + i) * V, (n * B + i + 1) * V) as Vec;
        markovE.set(emb.subarray(n * Rk, (n + 1) * Rk), (n * B + i) * Rk);
        const choose = requests[n]!.choose;
        const d = choose ? choose(i, row) : argmax(row);
        if (!Number.isInteger(d) || d < 0 || d >= V) throw new RangeError(`dsparkDraft: choose(${i}) returned ${d}, not a token id in [0, ${V})`);
        tokens[n]!.push(d);
        prev[n] = d;
      }
    }
    const confIn = b.alloc(N * B * (D + Rk));
    for (let row = 0; row < N * B; row++) {
      confIn.set(H.subarray(row * D, (row + 1) * D), row * (D + Rk));
      confIn.set(markovE.subarray(row * Rk, (row + 1) * Rk), row * (D + Rk) + D);
    }
    const conf = b.linear(confIn, N * B, dw.confidence, false);
    return requests.map((_, n) => ({
      tokens: tokens[n]!,
      logits: Array.from({ length: B }, (_, i) => logits.subarray((n * B + i) * V, (n * B + i + 1) * V) as Vec),
      confidence: Array.from(conf.subarray(n * B, (n + 1) * B)),
    }));
  }

  /**
   * Collapse the streams, normalise and project to the vocabulary for the given rows (with
   * `vocab`, only onto its ids: -Infinity elsewhere).
   */
  private head(X: Vec, rowIndices: number[], hc: HcWeights, norm: Vec, vocab: DraftVocabPart[] | null = null): Vec[] {
    if (rowIndices.length === 0) return [];
    return this.project(this.headInput(X, rowIndices, hc, norm), rowIndices.length, vocab);
  }

  /**
   * The main head for a forward's logits rows: logits where `masks[i]` is undefined, else the
   * greedy token with those ids masked (through the backend's greedyRows where it has it; the
   * rows it leaves undecided, and every row without it, from their exact logits).
   */
  private mainHead(X: Vec, rowIndices: number[], masks: ReadonlyArray<readonly number[] | undefined>): { logits: Array<Vec | null>; tokens: Array<number | null> } {
    const n = rowIndices.length;
    const logits: Array<Vec | null> = new Array(n).fill(null);
    const tokens: Array<number | null> = new Array(n).fill(null);
    if (n === 0) return { logits, tokens };
    const D = this.cfg.dim;
    const y = this.headInput(X, rowIndices, this.weights.hcHead, this.weights.norm);
    const subset = (idx: number[]) => (idx.length === n ? y : selectRows(this.backend, y, idx, D));
    const greedyIdx = masks.flatMap((m, i) => (m ? [i] : []));
    const exactIdx = masks.flatMap((m, i) => (m ? [] : [i]));
    if (greedyIdx.length > 0 && this.backend.greedyRows) {
      const found = this.backend.greedyRows(subset(greedyIdx), greedyIdx.length, this.weights.head, greedyIdx.map((i) => masks[i]!));
      greedyIdx.forEach((i, k) => (found[k]! >= 0 ? (tokens[i] = found[k]!) : exactIdx.push(i)));
    } else {
      exactIdx.push(...greedyIdx);
    }
    exactIdx.sort((a, b) => a - b);
    if (exactIdx.length > 0) {
      const rows = this.project(subset(exactIdx), exactIdx.length, null);
      exactIdx.forEach((i, k) => {
        const m = masks[i];
        if (m) tokens[i] = greedyToken(rows[k]!, m);
        else logits[i] = rows[k]!;
      });
    }
    return { logits, tokens };
  }

  /** The head's input for the given rows of X: the streams collapsed (HCHead) and normalised. */
  private headInput(X: Vec, rowIndices: number[], hc: HcWeights, norm: Vec): Vec {
    const cfg = this.cfg;
    const rows = rowIndices.length;
    const sel = selectRows(this.backend, X, rowIndices, cfg.hcMult * cfg.dim);
    return this.backend.rmsNorm(hcHead(this.backend, cfg, sel, rows, hc), rows, cfg.dim, norm, cfg.normEps);
  }

  /** Logits rows of the head's input y (with `vocab`, only onto its ids: -Infinity elsewhere). */
  private project(y: Vec, rows: number, vocab: DraftVocabPart[] | null): Vec[] {
    const cfg = this.cfg;
    const V = cfg.vocabSize;
    let logits: Vec;
    if (vocab) {
      const parts = vocab.map((p) => this.backend.linear(y, rows, p.head, false));
      logits = this.backend.alloc(rows * V).fill(-Infinity);
      for (let r = 0; r < rows; r++) this.spreadRow(vocab, parts, r, logits);
    } else {
      logits = this.backend.linear(y, rows, this.weights.head, false);
    }
    return Array.from({ length: rows }, (_, i) => logits.subarray(i * V, (i + 1) * V) as Vec);
  }

  /** Row `row` of each draft vocabulary part's logits into its ids' places in row `row` of `out` (full-vocabulary rows). */
  private spreadRow(vocab: readonly DraftVocabPart[], parts: readonly Vec[], row: number, out: Vec): void {
    const V = this.cfg.vocabSize;
    vocab.forEach((p, j) => {
      const n = p.end - p.start;
      out.set(parts[j]!.subarray(row * n, (row + 1) * n), row * V + p.start);
    });
  }

  close(): void {
    this.ckpt?.close();
  }
}

/**
 * The first index of the largest logit outside `masked` (0 when none is above -Infinity): the
 * engine's argmax (softmax.ts) over the row with the masked ids at -Infinity.
 */
function greedyToken(row: ArrayLike<number>, masked: readonly number[]): number {
  const skip = new Set(masked);
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (v > bestV && !skip.has(i)) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let v = 1; v < row.length; v++) if (row[v]! > row[best]!) best = v;
  return best;
}
