import type { Backend, Vec } from "../kernels/backend.js";
import type { LayerSchedule, ModelConfig } from "./config.js";
import { DsparkOwed } from "./dspark-owed.js";

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

  /** While a droppable tail is being decoded: what each of its positions overwrites (see TailUndo). */
  journal: CompressorJournal | null = null;

  /**
   * Called by compressorStep before token `pos` writes `slot`: inside a droppable tail, keeps
   * the slot's old values, the emitted-row count and, when the token completes an overlapping
   * window, the previous half-window it is about to shift away.
   */
  beforeStep(pos: number, slot: number): void {
    const j = this.journal;
    if (!j || pos < j.from) return;
    const w = this.width;
    const half = this.overlap && (pos + 1) % this.ratio === 0 ? this.ratio * w : 0;
    j.entries.push({
      c: this, pos, slot, count: this.rows.count,
      kv: this.kv.slice(slot * w, (slot + 1) * w) as Vec, score: this.score.slice(slot * w, (slot + 1) * w) as Vec,
      halfKv: half ? (this.kv.slice(0, half) as Vec) : null, halfScore: half ? (this.score.slice(0, half) as Vec) : null,
    });
  }
}

/** What one compressor step of a droppable position overwrote. */
interface CompressorUndo {
  c: CompressorState;
  pos: number;
  slot: number;
  count: number;
  kv: Vec;
  score: Vec;
  halfKv: Vec | null;
  halfScore: Vec | null;
}

interface CompressorJournal {
  /** First position whose writes are recorded. */
  from: number;
  entries: CompressorUndo[];
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
 * What decoding positions [from, end) overwrites that dropping some of them must put back
 * (speculative decoding: rejected drafts). Window rings: the slots those positions take held
 * positions `window` earlier, still visible to the positions that replace a dropped tail, so
 * they are copied before the step. Compressors (main and indexer, every ratio): a journal
 * written by the step itself, since several windows may complete inside one tail and a later
 * one may overwrite what an earlier kept position wrote; it is undone in reverse order.
 */
export interface TailUndo {
  from: number;
  end: number;
  windows: Array<{ ring: Vec; pos: number; row: Vec }>;
  compressors: CompressorUndo[];
}

/** Everything one sequence carries between forward steps (spec §6). */
export class SequenceState {
  /** Tokens processed by the main model (= position of the next token). */
  length = 0;
  /** Tokens processed by the MTP block. */
  mtpLength = 0;
  readonly layers: LayerState[];
  readonly mtp: LayerState[];
  /** Between beginTail and endTail: positions decoded now may be dropped. */
  inTail = false;
  /** DSpark checkpoints: positions whose stage ring rows are owed (ForwardRequest.dspark "defer"). */
  readonly dsparkOwed: DsparkOwed | null;

  constructor(backend: Backend, readonly cfg: ModelConfig) {
    this.layers = cfg.layers.map((l) => new LayerState(backend, cfg, l));
    this.mtp = cfg.mtpLayers.map((l) => new LayerState(backend, cfg, l));
    this.dsparkOwed = cfg.dspark ? new DsparkOwed(backend, cfg.window, cfg.dspark.targetLayerIds.length * cfg.dim) : null;
  }

  /** Bytes held now; grows with the compressed rows. */
  get bytes(): number {
    return [...this.layers, ...this.mtp].reduce((n, l) => n + l.bytes, 0) + (this.dsparkOwed?.bytes ?? 0);
  }

  /**
   * Refuses `what` while DSpark ring rows are owed: a snapshot, a captured block or a saved
   * tail holds the rings as they are (an owed row written inside a tail step could share a slot
   * with a dropped position and be undone with it).
   */
  assertSettled(what: string): void {
    if (this.dsparkOwed && this.dsparkOwed.count > 0) throw new Error(`${what}: the sequence owes DSpark ring rows; settle them first (Dsv4Model.settleDspark)`);
  }

  snapshot(): SequenceSnapshot {
    this.assertSettled("snapshot");
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
    this.dsparkOwed?.clear();
  }

  /** The sliding-window layer states: the main layers' and the extra (MTP or DSpark) stages'. */
  private get allLayers(): LayerState[] {
    return [...this.layers, ...this.mtp];
  }

  /**
   * Before a step appending `tokens` tokens: keep what dropping up to its last `droppable`
   * tokens needs. Call endTail() after the step's forward. The step may not be longer than
   * the window (a kept position would share a ring slot with a dropped one).
   */
  beginTail(tokens: number, droppable: number): TailUndo {
    const end = this.length + tokens;
    const from = end - Math.min(droppable, tokens);
    this.assertSettled("beginTail");
    if (tokens > this.cfg.window) {
      throw new Error(`saveTail: a step of ${tokens} tokens is longer than the ${this.cfg.window}-token window; verify fewer drafts`);
    }
    const windows: TailUndo["windows"] = [];
    for (const l of this.allLayers) {
      const width = l.window.length / this.cfg.window;
      for (let pos = from; pos < end; pos++) {
        const at = (pos % this.cfg.window) * width;
        windows.push({ ring: l.window, pos, row: l.window.slice(at, at + width) as Vec });
      }
    }
    const undo: TailUndo = { from, end, windows, compressors: [] };
    this.inTail = true;
    const journal: CompressorJournal = { from, entries: undo.compressors };
    for (const l of this.allLayers) for (const c of [l.compressor, l.indexer]) if (c) c.journal = journal;
    return undo;
  }

  /**
   * MTP positions [from, from + count) are about to be written as scratch (a chained draft):
   * returns what puts their ring slots back and the MTP length at `from`.
   */
  scratchMtp(from: number, count: number): () => void {
    const saved = this.mtp.map((l) => {
      const width = l.window.length / this.cfg.window;
      const rows: Array<{ at: number; row: Vec }> = [];
      for (let pos = from; pos < from + Math.min(count, this.cfg.window); pos++) {
        const at = (pos % this.cfg.window) * width;
        rows.push({ at, row: l.window.slice(at, at + width) as Vec });
      }
      return { l, rows };
    });
    return () => {
      for (const { l, rows } of saved) for (const { at, row } of rows) l.window.set(row, at);
      this.mtpLength = from;
    };
  }

  /** The step is done: stop recording (the undo keeps what was recorded). */
  endTail(): void {
    this.inTail = false;
    for (const l of this.allLayers) for (const c of [l.compressor, l.indexer]) if (c) c.journal = null;
  }

  /**
   * Drops the last `count` tokens of the step `undo` was made for, leaving every state as if
   * only the tokens before them had been decoded. Partial-window slots a dropped token wrote
   * for the first time are left as they are: the token that next takes its position
   * overwrites them before that window completes.
   */
  dropTail(undo: TailUndo, count: number): void {
    if (this.length !== undo.end) {
      throw new Error(`dropTail: the sequence is at length ${this.length}, the saved tail ends at ${undo.end}`);
    }
    if (!Number.isInteger(count) || count < 0 || count > undo.end - undo.from) {
      throw new Error(`dropTail: cannot drop ${count} tokens; the step saved ${undo.end - undo.from}`);
    }
    const keep = undo.end - count;
    for (let i = undo.compressors.length - 1; i >= 0; i--) {
      const e = undo.compressors[i]!;
      if (e.pos < keep) continue; // entries are layer-major: kept positions interleave with dropped ones
      const w = e.c.width;
      if (e.halfKv) e.c.kv.set(e.halfKv, 0);
      if (e.halfScore) e.c.score.set(e.halfScore, 0);
      e.c.rows.count = e.count;
      e.c.kv.set(e.kv, e.slot * w);
      e.c.score.set(e.score, e.slot * w);
    }
    for (let i = undo.windows.length - 1; i >= 0; i--) {
      const e = undo.windows[i]!;
      if (e.pos >= keep) e.ring.set(e.row, (e.pos % this.cfg.window) * e.row.length);
    }
    this.length = keep;
  }
}
