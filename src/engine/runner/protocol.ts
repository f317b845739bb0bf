/**
 * What the engine asks of the model runner and what comes back. The engine
 * (main thread) owns scheduling, sampling and the prefix cache; the runner owns
 * the model and every sequence's decoding state, addressed by a numeric id.
 * Everything here is plain data, so it crosses a worker boundary unchanged.
 */
import type { Vec } from "../../kernels/backend.js";
import type { StateBlock } from "../../model/state-blocks.js";

/** Tokens to append to one sequence in a step. */
export interface StepRequest {
  id: number;
  tokens: number[];
  /** Positions that get logits. */
  logits: "all" | "last" | "none";
  /** Residual streams (MTP inputs) for the last this-many positions; 0 for none. */
  residualLast: number;
  /** Keep what dropping the step's last token needs (a draft that may be rejected, see dropTail). */
  saveTail?: boolean;
  /** After the step, capture a prefix-cache block (with its tip) of the state since this length. */
  captureFrom?: number;
}

export interface StepOutput {
  logits: Vec[];
  residual: Vec[];
  /** The sequence's length and state bytes after the step. */
  length: number;
  bytes: number;
  block?: StateBlock;
}

/** One MTP draft: catch the MTP state up over `entries` (oldest first), then draft after the last. */
export interface DraftRequest {
  id: number;
  /** MTP position of entries[0]. */
  mtpLength: number;
  entries: Array<{ hidden: Vec; token: number }>;
}

export interface RunnerInfo {
  /** Backend name ("native", "ref"). */
  backend: string;
  /** Bytes per state value (4 for float32, 8 for the float64 reference). */
  bytesPerValue: number;
  weightBytes: number;
}

/**
 * The model side of the engine. Calls are applied in the order they are made;
 * `create`, `free`, `restore` and `dropTail` return nothing and take effect
 * before the next `step` or `draft` (an error in one surfaces there).
 */
export interface Runner {
  readonly info: RunnerInfo;
  create(id: number): void;
  free(id: number): void;
  /** Restores a fresh sequence from prefix-cache blocks: contiguous from position 0, the last with a tip. */
  restore(id: number, chain: StateBlock[]): void;
  /** Drops the last token of the sequence's previous step, which must have had `saveTail`. */
  dropTail(id: number): void;
  step(requests: StepRequest[]): Promise<StepOutput[]>;
  /** MTP logits per request, predicting the token after the last entry's token. */
  draft(requests: DraftRequest[]): Promise<Vec[]>;
  close(): Promise<void>;
}
