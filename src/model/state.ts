import type { Backend, Vec } from "../kernels/backend.js";
import type { LayerSchedule, ModelConfig } from "./config.js";

/** Rows of a fixed width that grow with the sequence (compressed KV rows, indexer keys). */
export class GrowableRows {
  data: Vec;
  count = 0;
  constructor(private readonly backend: Backend, readonly width: number, capacity = 16) {
    this.data = backend.alloc(capacity * width);
  }

  /** Space for one more row; returns its offset. The caller fills it. */
  append(): number {
    if ((this.count + 1) * this.width > this.data.length) {
      const bigger = this.backend.alloc(Math.max(2 * this.data.length, (this.count + 1) * this.width));
      bigger.set(this.data.subarray(0, this.count * this.width));
      this.data = bigger;
    }
    return this.count++ * this.width;
  }

  get bytes(): number {
    return this.count * this.width * this.data.BYTES_PER_ELEMENT;
  }
}

/**
 * A compressor's partial window (spec §5.5, §5.7): per slot the projected values (`kv`)
 * and gate scores (`score`, ape added). Overlapping (CSA) compressors keep 2·ratio slots
 * of double width, the first `ratio` holding the previous window.
 */
export class CompressorState {
  readonly slots: number;
  readonly width: number;
  kv: Vec;
  score: Vec;
  readonly rows: GrowableRows;

  constructor(backend: Backend, readonly ratio: number, readonly headDim: number, readonly overlap: boolean) {
    const c = overlap ? 2 : 1;
    this.slots = c * ratio;
    this.width = c * headDim;
    this.kv = backend.alloc(this.slots * this.width);
    // Empty slots must carry zero weight in the softmax: the reference starts scores at -inf.
    this.score = backend.alloc(this.slots * this.width).fill(-Infinity);
    this.rows = new GrowableRows(backend, headDim);
  }
}

export class LayerState {
  /** Raw KV ring of the sliding window, slot = position mod window. */
  window: Vec;
  readonly compressor: CompressorState | null;
  readonly indexer: CompressorState | null;

  constructor(backend: Backend, cfg: ModelConfig, layer: LayerSchedule) {
    this.window = backend.alloc(cfg.window * cfg.headDim);
    this.compressor = layer.compressRatio > 0 ? new CompressorState(backend, layer.compressRatio, cfg.headDim, layer.kind === "csa") : null;
    this.indexer = layer.kind === "csa" ? new CompressorState(backend, layer.compressRatio, cfg.indexHeadDim, true) : null;
  }

  get bytes(): number {
    let n = this.window.byteLength;
    for (const c of [this.compressor, this.indexer]) if (c) n += c.kv.byteLength + c.score.byteLength + c.rows.bytes;
    return n;
  }
}

interface LayerSnapshot {
  window: Vec;
  compressor: { kv: Vec; score: Vec; rows: Vec; count: number } | null;
  indexer: { kv: Vec; score: Vec; rows: Vec; count: number } | null;
}

/** A frozen copy of a sequence's decoding state; restoring it gives identical continuations. */
export interface SequenceSnapshot {
  length: number;
  mtpLength: number;
  layers: LayerSnapshot[];
  mtp: LayerSnapshot[];
}

/**
 * What appending one token at `position` can destroy that dropping it must put back:
 * when the token completes a compressor window, that compressor emits a row and (when
 * overlapping) shifts the window into its "previous" half, overwriting it.
 */
export interface TailUndo {
  position: number;
  completed: Array<{ c: CompressorState; kv: Vec | null; score: Vec | null }>;
}

/** Everything one sequence carries between forward steps (spec §6). */
export class SequenceState {
  /** Tokens processed by the main model (= position of the next token). */
  length = 0;
  /** Tokens processed by the MTP block. */
  mtpLength = 0;
  readonly layers: LayerState[];
  readonly mtp: LayerState[];

  constructor(backend: Backend, readonly cfg: ModelConfig) {
    this.layers = cfg.layers.map((l) => new LayerState(backend, cfg, l));
    this.mtp = cfg.mtpLayers.map((l) => new LayerState(backend, cfg, l));
  }

  /** Bytes held now; grows with the compressed rows. */
  get bytes(): number {
    return [...this.layers, ...this.mtp].reduce((n, l) => n + l.bytes, 0);
  }

  snapshot(): SequenceSnapshot {
    const snapC = (c: CompressorState | null) =>
      c ? { kv: c.kv.slice() as Vec, score: c.score.slice() as Vec, rows: c.rows.data.slice(0, c.rows.count * c.rows.width) as Vec, count: c.rows.count } : null;
    const snapL = (l: LayerState): LayerSnapshot => ({ window: l.window.slice() as Vec, compressor: snapC(l.compressor), indexer: snapC(l.indexer) });
    return { length: this.length, mtpLength: this.mtpLength, layers: this.layers.map(snapL), mtp: this.mtp.map(snapL) };
  }

  restore(snap: SequenceSnapshot): void {
    const restoreC = (c: CompressorState | null, s: LayerSnapshot["compressor"]) => {
      if (!c || !s) return;
      c.kv.set(s.kv);
      c.score.set(s.score);
      c.rows.count = 0;
      for (let i = 0; i < s.count; i++) c.rows.append();
      c.rows.data.set(s.rows);
    };
    const restoreL = (l: LayerState, s: LayerSnapshot) => {
      l.window.set(s.window);
      restoreC(l.compressor, s.compressor);
      restoreC(l.indexer, s.indexer);
    };
    this.layers.forEach((l, i) => restoreL(l, snap.layers[i]!));
    this.mtp.forEach((l, i) => restoreL(l, snap.mtp[i]!));
    this.length = snap.length;
    this.mtpLength = snap.mtpLength;
  }

  /**
   * Prepare to drop the token that will be processed at `position` (speculative decoding:
   * a rejected draft). Cheap: saves only the overlapping compressors' previous half-windows
   * that this token would shift out. The window ring needs nothing: the slot it overwrites
   * held position `position - window`, which no later query at or after `position` can see.
   */
  saveTail(position: number): TailUndo {
    const completed: TailUndo["completed"] = [];
    for (const l of this.layers) {
      for (const c of [l.compressor, l.indexer]) {
        if (!c || (position + 1) % c.ratio !== 0) continue;
        const half = c.ratio * c.width;
        completed.push({ c, kv: c.overlap ? (c.kv.slice(0, half) as Vec) : null, score: c.overlap ? (c.score.slice(0, half) as Vec) : null });
      }
    }
    return { position, completed };
  }

  /**
   * Drop the last processed token (which must be `undo.position`), leaving the state as if
   * it had never been processed. Partial-window slots it wrote are left as they are: the
   * next token at that position overwrites them before any window completes.
   */
  dropTail(undo: TailUndo): void {
    if (this.length !== undo.position + 1) {
      throw new Error(`dropTail: the sequence is at length ${this.length}, the saved tail is position ${undo.position}`);
    }
    for (const { c, kv, score } of undo.completed) {
      c.rows.count -= 1;
      if (kv) c.kv.set(kv, 0);
      if (score) c.score.set(score, 0);
    }
    this.length = undo.position;
  }
}
