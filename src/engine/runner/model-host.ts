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
import type { Dsv4Model, ForwardRequest } from "../../model/transformer.js";
import type { DraftRequest, RunnerInfo, StepOutput, StepRequest } from "./protocol.js";

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

  dropTail(id: number): void {
    this.later(() => {
      const undo = this.tails.get(id);
      if (!undo) throw new Error(`runner: sequence ${id} has no saved tail to drop`);
      this.tails.delete(id);
      this.state(id).dropTail(undo);
    });
  }

  step(requests: readonly StepRequest[]): StepOutput[] {
    this.throwDeferred();
    const forward: ForwardRequest[] = requests.map((r) => {
      const seq = this.state(r.id);
      this.tails.delete(r.id);
      if (r.saveTail) this.tails.set(r.id, seq.saveTail(seq.length + r.tokens.length - 1));
      return { seq, tokens: r.tokens, logits: r.logits, residual: r.residualLast };
    });
    const out = this.model.forward(forward);
    return requests.map((r, i) => {
      const seq = forward[i]!.seq;
      return {
        logits: out[i]!.logits,
        residual: out[i]!.residual,
        length: seq.length,
        bytes: seq.bytes,
        ...(r.captureFrom !== undefined ? { block: captureBlock(seq, r.captureFrom) } : {}),
      };
    });
  }

  draft(requests: readonly DraftRequest[]): Vec[] {
    this.throwDeferred();
    const pending = requests.map((r) => {
      const seq = this.state(r.id);
      seq.mtpLength = r.mtpLength;
      return { seq, entries: r.entries.slice() };
    });
    // Catch-up passes, one position per sequence each, batched across sequences.
    for (;;) {
      const behind = pending.filter((p) => p.entries.length > 1);
      if (behind.length === 0) break;
      this.model.mtpForward(behind.map((p) => ({ seq: p.seq, hidden: p.entries[0]!.hidden, token: p.entries[0]!.token, logits: false })));
      for (const p of behind) p.entries.shift();
    }
    const outs = this.model.mtpForward(pending.map((p) => ({ seq: p.seq, hidden: p.entries[0]!.hidden, token: p.entries[0]!.token })));
    return outs.map((o) => o.logits!);
  }

  close(): void {
    this.deferred = null; // nothing is left to fail
    this.states.clear();
    this.tails.clear();
    this.model.close();
  }
}
