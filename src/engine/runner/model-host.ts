/**
 * The model and the decoding state of every sequence, driven synchronously:
 * the worker thread runs one of these, and so does the inline runner. It
 * carries out the runner protocol (protocol.ts) and nothing else. As the
 * protocol says, an error in a call without a reply (create, free, restore,
 * dropTail) is kept and fails the next step or draft.
 */
import type { Vec } from "../../kernels/backend.js";
import type { SequenceState, TailUndo } from "../../model/state.js";
import { captureBlock, restoreBlocks, type StateBlock } from "../../model/state-blocks.js";
import type { Dsv4Model, ForwardOutput, ForwardRequest } from "../../model/transformer.js";
import { argmax, drawAt, isGreedy, samplingProbs, sampleTokenAt, tokenLogprobs, type RawLogprob } from "../sampler.js";
import type { DraftOutput, DraftRequest, DraftSampling, DsparkDraftRequest, MtpDraftRequest, RowChoice, RunnerInfo, StepOutput, StepRequest } from "./protocol.js";

/**
 * The token a draft position gets: argmax under greedy, else a draw from q_i with the engine's
 * pre-drawn uniform. Positions past the uniforms sent are never verified: argmax.
 */
function chooser(sampling: DraftSampling | undefined): ((i: number, logits: Vec) => number) | undefined {
  if (!sampling) return undefined;
  return (i, logits) => {
    const u = sampling.uniforms[i];
    return u === undefined ? argmax(logits) : drawAt(samplingProbs(logits, sampling.params), u);
  };
}

/**
 * A step's prompt logprobs from the logits of all its positions, and the rows it asked for
 * whole (the last one copied out, so that only it travels to the main thread).
 */
function promptLogprobs(all: Vec[], r: StepRequest): { logits: Vec[]; logprobs: Array<RawLogprob | null> } {
  const { next, top } = r.promptLogprobs!;
  const logprobs = all.map((row, i) => (next[i] === null || next[i] === undefined ? null : tokenLogprobs(row, next[i]!, top)));
  const logits = r.logits === "all" ? all : r.logits === "last" && all.length > 0 ? [all[all.length - 1]!.slice() as Vec] : [];
  return { logits, logprobs };
}

/** `row` with the ids' logits at -Infinity (Sequence.processLogits' masks). */
function masked(row: Vec, ids: readonly number[]): Vec {
  for (const id of ids) row[id] = -Infinity;
  return row;
}

/** StepRequest.choose carried out on the last row of a step's logits. */
function chooseToken(rows: Vec[], c: RowChoice): number {
  const logits = rows[rows.length - 1];
  if (!logits) throw new Error("runner: a step that chooses its token must return the last position's logits");
  return sampleTokenAt(masked(logits, c.masked), c.params, c.uniform ?? 0);
}

/**
 * The masks of a step's positions that need only their greedy token (ForwardRequest.greedy):
 * a greedy choice on the last position, or greedy verification's argmaxes, when nothing else
 * reads the logits. Undefined otherwise.
 */
function greedyPositions(r: StepRequest): number[][] | undefined {
  if (r.promptLogprobs) return undefined;
  if (r.argmaxes && !r.choose) return r.argmaxes;
  if (r.choose && !r.argmaxes && r.logits === "last" && isGreedy(r.choose.params)) return [r.choose.masked];
  return undefined;
}

/** StepRequest.argmaxes carried out on every row of a step's logits. */
function maskedArgmaxes(rows: Vec[], masks: number[][]): number[] {
  if (rows.length !== masks.length) throw new Error(`runner: ${masks.length} argmax masks for a step of ${rows.length} logits rows`);
  return rows.map((row, i) => argmax(masked(row, masks[i]!)));
}

export class ModelHost {
  private readonly states = new Map<number, SequenceState>();
  private readonly tails = new Map<number, TailUndo>();
  private deferred: Error | null = null;
  readonly info: RunnerInfo;

  constructor(private readonly model: Dsv4Model) {
    this.info = {
      backend: model.backend.name,
      bytesPerValue: model.backend.alloc(1).BYTES_PER_ELEMENT,
      weightBytes: model.weightBytes,
      draftVocabIds: model.draftVocabSize,
    };
  }

  private state(id: number): SequenceState {
    const s = this.states.get(id);
    if (!s) throw new Error(`runner: no sequence ${id}`);
    return s;
  }

  private later(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.deferred ??= err as Error;
    }
  }

  private throwDeferred(): void {
    const err = this.deferred;
    this.deferred = null;
    if (err) throw err;
  }

  create(id: number): void {
    this.later(() => this.states.set(id, this.model.newSequence()));
  }

  free(id: number): void {
    this.states.delete(id);
    this.tails.delete(id);
  }

  restore(id: number, chain: StateBlock[]): void {
    this.later(() => restoreBlocks(this.state(id), chain));
  }

  dropTail(id: number, count: number): void {
    this.later(() => {
      const undo = this.tails.get(id);
      if (!undo) throw new Error(`runner: sequence ${id} has no saved tail to drop`);
      this.tails.delete(id);
      this.state(id).dropTail(undo, count);
    });
  }

  step(requests: readonly StepRequest[]): StepOutput[] {
    this.throwDeferred();
    const forward: ForwardRequest[] = requests.map((r) => {
      const seq = this.state(r.id);
      this.tails.delete(r.id);
      const f: ForwardRequest = { seq, tokens: r.tokens, logits: r.promptLogprobs ? "all" : r.logits, residual: r.residualLast };
      const greedy = greedyPositions(r);
      if (greedy) f.greedy = greedy;
      if (r.dspark) f.dspark = r.dspark;
      if (r.mainXLast) f.mainXLast = r.mainXLast;
      return f;
    });
    const saving = requests.flatMap((r, i) => (r.saveTail ? [forward[i]!.seq] : []));
    // Owed DSpark rows are written before a tail is saved: one written inside the step could
    // share a ring slot with a dropped position and be undone with it.
    this.model.settleDspark(saving);
    requests.forEach((r, i) => {
      if (r.saveTail) this.tails.set(r.id, forward[i]!.seq.beginTail(r.tokens.length, r.saveTail));
    });
    let out: ForwardOutput[];
    try {
      out = this.model.forward(forward);
    } finally {
      for (const seq of saving) seq.endTail();
    }
    // A captured block carries the DSpark rings: nothing may be owed in them.
    this.model.settleDspark(requests.flatMap((r, i) => (r.captureFrom !== undefined ? [forward[i]!.seq] : [])));
    return requests.map((r, i) => {
      const seq = forward[i]!.seq;
      const reduced = r.promptLogprobs ? promptLogprobs(out[i]!.logits, r) : null;
      const rows = reduced ? reduced.logits : out[i]!.logits;
      const greedy = forward[i]!.greedy ? out[i]!.greedy : null;
      const chosen = r.choose ? (greedy ? greedy[greedy.length - 1]! : chooseToken(rows, r.choose)) : undefined;
      const argmaxes = r.argmaxes ? (greedy ?? maskedArgmaxes(rows, r.argmaxes)) : undefined;
      return {
        logits: chosen !== undefined || argmaxes ? [] : rows,
        ...(chosen !== undefined ? { token: chosen } : {}),
        ...(argmaxes ? { argmaxes } : {}),
        ...(reduced ? { promptLogprobs: reduced.logprobs } : {}),
        residual: out[i]!.residual,
        ...(r.mainXLast ? { mainX: out[i]!.mainX } : {}),
        length: seq.length,
        bytes: seq.bytes,
        owed: seq.dsparkOwed?.count ?? 0,
        ...(r.captureFrom !== undefined ? { block: captureBlock(seq, r.captureFrom) } : {}),
      };
    });
  }

  draft(requests: readonly DraftRequest[]): DraftOutput[] {
    this.throwDeferred();
    const out = new Array<DraftOutput>(requests.length);
    const mtp = requests.flatMap((r, i) => (r.kind === "mtp" ? [{ r, i }] : []));
    const dspark = requests.flatMap((r, i) => (r.kind === "dspark" ? [{ r, i }] : []));
    if (mtp.length > 0) this.draftMtp(mtp.map((m) => m.r)).forEach((o, k) => (out[mtp[k]!.i] = o));
    if (dspark.length > 0) this.draftDspark(dspark.map((m) => m.r)).forEach((o, k) => (out[dspark[k]!.i] = o));
    return out;
  }

  /**
   * MTP chains, batched across sequences: one pass catches up on the real entries and drafts
   * the first token (the entries are consecutive positions of each sequence, as a prompt's
   * tokens are), then each further draft comes from the MTP block's own output streams and the
   * token drafted before it (spec §8). The chain's positions are scratch: their MTP ring slots
   * are put back after, so the MTP state only ever holds real positions.
   */
  private draftMtp(requests: readonly MtpDraftRequest[]): DraftOutput[] {
    const chains = requests.map((r) => {
      const seq = this.state(r.id);
      seq.mtpLength = r.mtpLength;
      const out: DraftOutput = { tokens: [], logits: [], confidence: null };
      return { r, seq, choose: chooser(r.sampling), out, hidden: null as Vec | null };
    });
    const first = chains.flatMap((c) => c.r.entries.map((e, j) => ({ seq: c.seq, hidden: e.hidden, token: e.token, logits: j === c.r.entries.length - 1 })));
    // One row with logits per chain, in chain order: the last entry's.
    let outs = this.model.mtpForward(first).filter((o) => o.logits !== null);
    const restores = chains.map((c) => c.seq.scratchMtp(c.r.mtpLength + c.r.entries.length, Math.max(0, c.r.count - 1)));
    try {
      let active = chains;
      for (let step = 0; active.length > 0; step++) {
        active.forEach((c, k) => {
          const { logits, residual } = outs[k]!;
          const d = c.choose ? c.choose(step, logits!) : argmax(logits!);
          c.out.tokens.push(d);
          if (c.r.wantLogits) c.out.logits.push(logits!);
          c.hidden = residual;
        });
        active = active.filter((c) => c.out.tokens.length < c.r.count);
        if (active.length > 0) outs = this.model.mtpForward(active.map((c) => ({ seq: c.seq, hidden: c.hidden!, token: c.out.tokens.at(-1)! })));
      }
    } finally {
      for (const restore of restores) restore();
    }
    return chains.map((c) => c.out);
  }

  /** DSpark blocks, batched across sequences (spec §8b); the model checks that the checkpoint has the stages. */
  private draftDspark(requests: readonly DsparkDraftRequest[]): DraftOutput[] {
    const outs = this.model.dsparkDraft(requests.map((r) => ({ seq: this.state(r.id), mainX: r.mainX, anchor: r.anchor, choose: chooser(r.sampling) })));
    // Only the drafts the engine may verify travel back.
    return outs.map((o, i) => {
      const n = requests[i]!.count;
      return { tokens: o.tokens.slice(0, n), logits: requests[i]!.wantLogits ? o.logits.slice(0, n) : [], confidence: o.confidence.slice(0, n) };
    });
  }

  close(): void {
    this.deferred = null; // nothing is left to fail
    this.states.clear();
    this.tails.clear();
    this.model.close();
  }
}
