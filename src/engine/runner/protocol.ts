/**
 * What the engine asks of the model runner and what comes back. The engine
 * (main thread) owns scheduling, sampling and the prefix cache; the runner owns
 * the model and every sequence's decoding state, addressed by a numeric id. A
 * plain draw the engine may hand over with its inputs (StepRequest.choose).
 * Everything here is plain data, so it crosses a worker boundary unchanged.
 */
import type { Vec } from "../../kernels/backend.js";
import type { StateBlock } from "../../model/state-blocks.js";
import type { RawLogprob, SamplingParams } from "../sampler.js";

/** Tokens to append to one sequence in a step. */
export interface StepRequest {
  id: number;
  tokens: number[];
  /** Positions that get logits. */
  logits: "all" | "last" | "none";
  /** Residual streams (MTP inputs) for the last this-many positions; 0 for none. */
  residualLast: number;
  /** Keep what dropping up to this many of the step's last tokens needs (drafts that may be rejected, see dropTail). */
  saveTail?: number;
  /**
   * DSpark: the main forward writes the DSpark rings for these positions (every committed
   * position needs its entry); "defer": the sequence owes them until a draft, a capture or a
   * `true` step writes them (ForwardRequest.dspark).
   */
  dspark?: boolean | "defer";
  /** DSpark: return the drafter's main input (StepOutput.mainX) for the last this-many positions. */
  mainXLast?: number;
  /** After the step, capture a prefix-cache block (with its tip) of the state since this length. */
  captureFrom?: number;
  /**
   * Prompt logprobs: after each position i of the step, the logprob of `next[i]` (null: none
   * wanted there) and the `top` most likely tokens. The runner reduces those rows' logits to
   * these (StepOutput.promptLogprobs); `logits` still says which rows come back whole.
   */
  promptLogprobs?: { next: Array<number | null>; top: number };
  /**
   * Choose the next token here from the last position's logits (StepOutput.token), which
   * then stay on the runner's side: `logits` must be "last". For a sequence that needs nothing
   * of its logits but the choice (no logprobs, constraint or logits hook), this spares the
   * main thread a vocabulary-sized array per row and step: received at 16 rows, those arrays
   * kept its garbage collector busy while the step computed (see RowChoice).
   */
  choose?: RowChoice;
  /**
   * Greedy verification: per position of the step, the ids masked before its argmax
   * (StepOutput.argmaxes); the logits then stay on the runner's side. `logits` must be "all".
   */
  argmaxes?: number[][];
}

/**
 * What the engine's choice of a token would do (Sequence.choose), as data: the masked ids'
 * logits become -Infinity, then the token is sampleTokenAt's for the engine's params and the
 * uniform it drew from the sequence's seeded rng (none when greedy), so the token is the one
 * the engine would have chosen.
 */
export interface RowChoice {
  params: SamplingParams;
  uniform?: number;
  masked: number[];
}

export interface StepOutput {
  /** The rows StepRequest.logits asked for; none when the runner chose the token (`token`). */
  logits: Vec[];
  /** The token chosen by StepRequest.choose. */
  token?: number;
  /** Each position's argmax, StepRequest.argmaxes' masks applied. */
  argmaxes?: number[];
  residual: Vec[];
  /** DSpark main inputs ([dim] per position) for the last StepRequest.mainXLast positions. */
  mainX?: Vec[];
  /** The sequence's length and state bytes after the step. */
  length: number;
  bytes: number;
  /** DSpark ring rows the sequence owes after the step (its dspark "defer" positions, at most a window; 0 once written). */
  owed: number;
  block?: StateBlock;
  /** Per position of StepRequest.promptLogprobs.next: the wanted token's logprob and the top ones, or null. */
  promptLogprobs?: Array<RawLogprob | null>;
}

/**
 * How the runner chooses each draft token when the sequence samples: the drafted chain feeds
 * each token into the next draft, so the runner draws them, from the engine's sampling
 * parameters and uniforms the engine drew from the sequence's seeded rng (one per draft), with
 * the pure functions of sampler.ts: the engine recomputes the same q_i from the returned logits.
 * Absent: greedy (argmax).
 */
export interface DraftSampling {
  params: SamplingParams;
  uniforms: number[];
}

/**
 * MTP drafts: catch the MTP state up over `entries` (oldest first), then chain the MTP block
 * `count` times from the last one, feeding its own output streams and drafted token back (spec §8).
 */
export interface MtpDraftRequest {
  kind: "mtp";
  id: number;
  /** MTP position of entries[0]. */
  mtpLength: number;
  entries: Array<{ hidden: Vec; token: number }>;
  count: number;
  sampling?: DraftSampling;
  /** Return each draft's logits (needed for q under sampling; greedy needs only the tokens). */
  wantLogits: boolean;
}

/**
 * A DSpark block (spec §8b) from the sequence's last position t = length − 1: `mainX` is that
 * position's StepOutput.mainX row, `anchor` the token chosen for t + 1.
 */
export interface DsparkDraftRequest {
  kind: "dspark";
  id: number;
  mainX: Vec;
  anchor: number;
  /**
   * Drafts the engine may verify (≤ the block size): those are drawn from q_i under sampling
   * (sampling.uniforms has this many); the rest of the block stays greedy, a cheap argmax.
   */
  count: number;
  sampling?: DraftSampling;
  wantLogits: boolean;
}

export type DraftRequest = MtpDraftRequest | DsparkDraftRequest;

export interface DraftOutput {
  /** d_1 … d_n (n = count for MTP, the block size for DSpark). */
  tokens: number[];
  /** The logits each draft was chosen from (DSpark: Markov-biased); empty unless wantLogits. */
  logits: Vec[];
  /** DSpark confidence logits (σ(conf_i) estimates P(d_i survives)); null for MTP. */
  confidence: number[] | null;
}

export interface RunnerInfo {
  /** Backend name ("native", "ref"). */
  backend: string;
  /** Bytes per state value (4 for float32, 8 for the float64 reference). */
  bytesPerValue: number;
  weightBytes: number;
  /** Token ids drafts may propose (Dsv4Model.draftVocabSize): the vocabulary size unless a draft vocabulary restricts them. */
  draftVocabIds: number;
}

/**
 * The model side of the engine. Calls are applied in the order they are made;
 * `create`, `free`, `restore` and `dropTail` return nothing and take effect
 * before the next `step` or `draft` (an error in one surfaces there).
 */
export interface Runner {
  readonly info: RunnerInfo;
  /**
   * Steps compute on another thread: while one is awaited, the caller's event loop is free
   * (HTTP, SSE writes, new requests). False: a step computes on the caller's thread.
   */
  readonly offThread: boolean;
  /** Set once the runner can compute no more (its thread exited or failed); every later call rejects with it. */
  readonly failure: Error | null;
  create(id: number): void;
  free(id: number): void;
  /** Restores a fresh sequence from prefix-cache blocks: contiguous from position 0, the last with a tip. */
  restore(id: number, chain: StateBlock[]): void;
  /** Drops the last `count` tokens of the sequence's previous step, which must have saved at least that many. */
  dropTail(id: number, count: number): void;
  step(requests: StepRequest[]): Promise<StepOutput[]>;
  /**
   * Hands a step's logits rows back once nothing reads them any more (their buffers may be
   * transferred away: the arrays then read as empty). A no-op where steps do not cross threads.
   */
  recycle(logits: readonly Vec[]): void;
  /** Drafts per request (all of one kind or mixed), batched across sequences. */
  draft(requests: DraftRequest[]): Promise<DraftOutput[]>;
  close(): Promise<void>;
}
