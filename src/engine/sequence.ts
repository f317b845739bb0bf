/**
 * One request in flight: its prompt, its decoding state, and everything that
 * turns chosen tokens into events (logprobs, parser deltas, stop detection,
 * the reasoning budget, usage). The scheduler decides when it runs; the step
 * functions decide which tokens it gets; this class only records outcomes.
 */
import type { Vec } from "../kernels/backend.js";
import { OutputParser, type FinishCause, type ParsedOutput } from "../text/parser.js";
import type { Tokenizer, TokenStreamDecoder } from "../text/tokenizer.js";
import { createConstraint, sampleAllowed, type DecodeView, type TokenConstraint } from "./constraints/index.js";
import { EngineError } from "./errors.js";
import { EventQueue } from "./event-queue.js";
import type { CacheAnchor } from "./prefix-cache.js";
import type { ResolvedRequest } from "./request.js";
import { Rng } from "./rng.js";
import type { RowChoice } from "./runner/protocol.js";
import { isGreedy, sampleToken, tokenLogprobs, type RawLogprob } from "./sampler.js";
import type { EngineUsage, GenerationEvent, GenerationResult, GenerationStats, LogitsProcessor, TokenLogprob, TokenPhase } from "./types.js";

export interface SequenceEnv {
  tokenizer: Tokenizer | null;
  eosId: number;
  thinkEndId: number | undefined;
  /** Test hook (EngineOptions.logitsProcessor). */
  logitsProcessor?: LogitsProcessor;
  /** Unread events at which a reading caller pauses its sequence (EngineOptions.readerHighWaterEvents). */
  readerHighWater?: number;
  /** A paused sequence's reader caught up: the engine resumes stepping it. */
  onReaderDrain?: () => void;
}

/** A sequence's decoding state as the engine sees it: the runner holds the state itself under `id`. */
export interface StateHandle {
  readonly id: number;
  /** Tokens in the state (= position of the next token). */
  length: number;
  /** State bytes after the last step. */
  bytes: number;
  /** DSpark ring rows the state owes after the last step: what the next ring-writing step settles. */
  owed: number;
}

/** A main-model position the MTP block has yet to see: its residual streams and the token after it. */
export interface MtpEntry {
  pos: number;
  hidden: Vec;
  token: number;
}

export class Sequence {
  readonly events: EventQueue<GenerationEvent>;
  state: StateHandle | null = null;
  status: "waiting" | "running" | "finished" = "waiting";
  /**
   * The tokens to prefill before decoding: the prompt, or after a preemption the prompt and
   * every token generated so far (recomputed, mostly restored from the prefix cache).
   */
  context: number[];
  /** Context tokens already in the state (restored or prefilled). */
  prefilled = 0;
  /** Times this sequence was preempted and resumed. */
  preemptions = 0;
  cachedTokens = 0;
  cacheAnchor: CacheAnchor | null = null;
  /** Bytes of state budget held while running, and the length they cover. */
  reservedBytes = 0;
  reservedTokens = 0;
  readonly generated: number[] = [];
  /** The last chosen token, not yet fed to the model. */
  pending: number | null = null;
  /** MTP inputs not yet processed, oldest first; the last one is the next draft's input. */
  mtpEntries: MtpEntry[] = [];
  /** DSpark's main input at the last position in the state (the next block drafts from it), or null. */
  dsparkMainX: Vec | null = null;
  drafted = 0;
  accepted = 0;
  reasoningTokens = 0;
  budgetHit = false;
  readonly rng: Rng;

  private readonly parser: OutputParser | null;
  private readonly constraint: TokenConstraint | null;
  private readonly pieces: TokenStreamDecoder | null;
  private readonly lp: { content: TokenLogprob[]; reasoning: TokenLogprob[] };
  /** Per prompt token (index 0 null) when prompt logprobs were asked for, else null. */
  private readonly promptLp: Array<TokenLogprob | null> | null;
  private promptLpReported = false;
  private readonly createdAt = performance.now();
  private startedAt = 0;
  private firstTokenAt = 0;
  private prefillMs = 0;
  /** The finish reason once it completed (stop, length, tool_calls, …); null while running or when it failed. */
  finishReason: string | null = null;
  private settle!: { resolve: (r: GenerationResult) => void; reject: (e: unknown) => void };
  readonly done: Promise<GenerationResult>;

  constructor(readonly id: string, readonly req: ResolvedRequest, private readonly env: SequenceEnv) {
    this.rng = new Rng(req.seed);
    this.context = req.promptTokens;
    this.events = new EventQueue({ highWater: env.readerHighWater, onDrain: env.onReaderDrain });
    const tok = env.tokenizer;
    this.parser = tok
      ? new OutputParser({ tokenizer: tok, thinking_mode: req.thinkingMode, startInContent: !req.startsInReasoning, stop: req.stop, stopsArmed: req.stopsAfter === 0, includeStopInOutput: req.includeStop })
      : null;
    this.pieces = tok ? tok.createStreamDecoder() : null;
    this.constraint = tok && req.constraint ? createConstraint(req.constraint, tok) : null;
    this.lp = { content: [], reasoning: [] };
    this.promptLp = req.promptLogprobs === null ? null : new Array<TokenLogprob | null>(req.promptTokens.length).fill(null);
    this.done = new Promise<GenerationResult>((resolve, reject) => (this.settle = { resolve, reject }));
    // Callers that only iterate events must not get an unhandled rejection from this promise.
    this.done.catch(() => undefined);
  }

  get promptLength(): number {
    return this.req.promptTokens.length;
  }

  get contextLength(): number {
    return this.context.length;
  }

  get prefilling(): boolean {
    return this.prefilled < this.contextLength;
  }

  /** Gives up the state: the sequence waits again and will recompute its context, generated tokens included. */
  preempt(): void {
    this.status = "waiting";
    this.state = null;
    this.context = [...this.req.promptTokens, ...this.generated];
    this.prefilled = 0;
    this.pending = null;
    this.mtpEntries = [];
    this.dsparkMainX = null;
    this.cacheAnchor = null;
    this.preemptions++;
  }

  get finished(): boolean {
    return this.status === "finished";
  }

  /** Tokens the sequence may still generate. */
  get remaining(): number {
    return this.req.maxTokens - this.generated.length;
  }

  /** In reasoning with the budget about to run out within `n` tokens: speculation must not skip the forced close. */
  budgetWithin(n: number): boolean {
    const b = this.req.reasoningBudget;
    return b !== null && this.inReasoning && this.reasoningTokens + n >= b;
  }

  /** Its caller iterates events but has stopped reading them: the scheduler skips it (backpressure.ts). */
  get readerBlocked(): boolean {
    return this.events.blocked;
  }

  /** performance.now() since when the blocked reader has taken nothing; null when not blocked. */
  get readerBlockedSince(): number | null {
    return this.events.blockedSince;
  }

  get inReasoning(): boolean {
    return this.parser ? this.parser.phase === "reasoning" : false;
  }

  markStarted(): void {
    this.status = "running";
    if (this.startedAt === 0) this.startedAt = performance.now();
  }

  /**
   * The prompt token whose logprob the position `pos` of a prefill step should give, or null:
   * none asked for, past the prompt, or already had (before a preemption).
   */
  promptLogprobAfter(pos: number): number | null {
    const next = pos + 1;
    return this.promptLp !== null && next < this.promptLength && this.promptLp[next] === null ? this.req.promptTokens[next]! : null;
  }

  /**
   * The prompt logprobs a prefill step computed, after positions [from, from + raw.length):
   * each entry is that of the prompt token after its position.
   */
  addPromptLogprobs(from: number, raw: ReadonlyArray<RawLogprob | null>): void {
    raw.forEach((r, i) => {
      const next = from + i + 1;
      if (r === null || this.promptLp === null || this.promptLp[next] !== null) return;
      const token = this.req.promptTokens[next]!;
      this.promptLp[next] = { ...this.describe(token), logprob: r.logprob, top_logprobs: r.top.map((t) => ({ ...this.describe(t.id), logprob: t.logprob })) };
    });
  }

  prefillProgress(): void {
    // Prompt logprobs come once, with the prefill event that completes the prompt, even when a
    // preemption made the sequence compute part of it again.
    const logprobsDone = this.promptLp !== null && !this.promptLpReported && this.prefilled >= this.promptLength;
    if (this.preemptions > 0 && !logprobsDone) return; // a resumed sequence recomputes; the caller saw its progress
    if (logprobsDone) this.promptLpReported = true;
    this.events.push({ type: "prefill", processed: this.prefilled, total: this.promptLength, cached: this.cachedTokens, ...(logprobsDone ? { prompt_logprobs: this.promptLp! } : {}) });
    if (!this.prefilling) this.prefillMs = performance.now() - this.startedAt;
  }

  /** The forced `</think>` when the reasoning budget is spent, else undefined. */
  forcedToken(): number | undefined {
    const b = this.req.reasoningBudget;
    if (b === null || !this.inReasoning || this.env.thinkEndId === undefined) return undefined;
    // The closing token counts as reasoning: a budget of N yields N reasoning tokens in all.
    return this.reasoningTokens + 1 >= b ? this.env.thinkEndId : undefined;
  }

  /**
   * What reshapes a position's logits before anything reads them (sampling, draft judging,
   * logprobs), once per position: the test hook, then min_tokens / ignore_eos masking the end
   * of sentence. Verification calls it as plain decoding does, so drafts stay lossless.
   */
  processLogits(logits: Vec): void {
    this.env.logitsProcessor?.({ id: this.id, generated: this.generated, logits });
    for (const id of this.maskedIds()) logits[id] = -Infinity;
  }

  /** Whether choosing a token reads more of the logits than a draw: a logits hook, a constraint, logprobs. */
  private get readsLogits(): boolean {
    return this.env.logitsProcessor !== undefined || this.constraint !== null || this.req.logprobs;
  }

  /** The ids processLogits masks at this position (after the hook), or `ahead` tokens later. */
  private maskedIds(ahead = 0): number[] {
    const n = this.generated.length + ahead;
    const ids = n < this.req.minTokens ? [this.env.eosId] : [];
    if (n < this.req.stopsAfter) ids.push(...this.req.stopTokenIds);
    return ids;
  }

  /**
   * For a greedy verification of `k` drafts (StepRequest.argmaxes): each of the k + 1
   * positions' masked ids, as processLogits would mask them with the drafts before it kept, when
   * judging and choosing there need nothing but the argmax (greedy, no logits hook, constraint,
   * logprobs or reasoning budget). Null: the step returns logits.
   */
  verifyMasks(k: number): number[][] | null {
    if (!isGreedy(this.req.sampling) || this.readsLogits || this.req.reasoningBudget !== null) return null;
    return Array.from({ length: k + 1 }, (_, i) => this.maskedIds(i));
  }

  /**
   * The next token's choice as data for the runner (StepRequest.choose), when choose() would
   * need nothing of the logits but a plain draw: no logits hook, constraint, logprobs or
   * forced token. The uniform is drawn here, as choose() would have drawn it, and the token
   * comes back with the step (StepOutput.token). Null: the step returns logits for choose().
   */
  runnerChoice(): RowChoice | null {
    if (this.readsLogits || this.forcedToken() !== undefined) return null;
    const params = this.req.sampling;
    return isGreedy(params) ? { params, masked: this.maskedIds() } : { params, uniform: this.rng.next(), masked: this.maskedIds() };
  }

  private view(): DecodeView {
    return { phase: this.parser ? this.parser.phase : "content", remaining: this.remaining };
  }

  /** Next token from the logits at the last position (constraints and budget forcing included). */
  choose(logits: Vec): number {
    this.processLogits(logits);
    const c = this.constraint;
    const view = c ? this.view() : null;
    const required = c?.forced(view!);
    if (required !== undefined) return required;
    const forced = this.forcedToken();
    if (forced !== undefined) {
      this.budgetHit = true;
      return forced;
    }
    if (!c) return sampleToken(logits, this.req.sampling, this.rng);
    const token = sampleAllowed(logits, this.req.sampling, this.rng, (id) => c.allows(id, view!));
    // No allowed token at all cannot happen with the engine's constraints; ending beats looping.
    return token < 0 ? this.env.eosId : c.redirect(token, view!);
  }

  /**
   * Records a generated token. `logits` are those it was chosen from (for logprobs).
   * Returns true when the sequence has finished.
   */
  accept(token: number, logits: Vec | null): boolean {
    if (this.finished) return true;
    if (this.firstTokenAt === 0) this.firstTokenAt = performance.now();
    if (token === this.env.eosId) {
      this.finish("stop");
      return true;
    }
    this.constraint?.accept(token, this.view());
    this.generated.push(token);
    this.pending = token;
    const phase: TokenPhase = this.parser ? (this.parser.phase === "reasoning" ? "reasoning" : this.parser.phase === "tool_calls" ? "tool_calls" : "content") : "content";
    if (phase === "reasoning") this.reasoningTokens++;
    let logprob: TokenLogprob | undefined;
    if (this.req.logprobs && logits) {
      const raw = tokenLogprobs(logits, token, this.req.topLogprobs);
      logprob = { ...this.describe(token), logprob: raw.logprob, top_logprobs: raw.top.map((t) => ({ ...this.describe(t.id), logprob: t.logprob })) };
      (phase === "reasoning" ? this.lp.reasoning : this.lp.content).push(logprob);
    }
    const text = this.pieces ? this.pieces.push(token) : "";
    this.events.push(logprob ? { type: "token", id: token, text, phase, logprob } : { type: "token", id: token, text, phase });
    if (this.parser) {
      // vLLM's min_tokens: a stop string may end only in the text of the tokens after them.
      if (this.generated.length === this.req.stopsAfter + 1) this.parser.armStops();
      for (const d of this.parser.pushToken(token)) this.events.push(d);
      if (this.parser.done) {
        this.finish("stop");
        return true;
      }
    }
    if (this.req.stopTokenIds.includes(token)) {
      this.finish("stop");
      return true;
    }
    if (this.constraint?.complete) {
      this.finish("stop");
      return true;
    }
    if (this.generated.length >= this.req.maxTokens) {
      this.finish("length");
      return true;
    }
    return false;
  }

  private describe(id: number): { token: string; bytes: number[] | null } {
    const tok = this.env.tokenizer;
    if (!tok) return { token: `<${id}>`, bytes: null };
    return { token: tok.decode([id]), bytes: [...tok.tokenBytes(id)] };
  }

  usage(): EngineUsage {
    const P = this.promptLength;
    const C = this.generated.length;
    return {
      prompt_tokens: P,
      completion_tokens: C,
      total_tokens: P + C,
      prompt_cache_hit_tokens: this.cachedTokens,
      prompt_cache_miss_tokens: P - this.cachedTokens,
      prompt_tokens_details: { cached_tokens: this.cachedTokens },
      completion_tokens_details: { reasoning_tokens: this.reasoningTokens },
    };
  }

  /** When it was submitted, started running and got its first token (performance.now(); 0: not yet). */
  timing(): { createdAt: number; startedAt: number; firstTokenAt: number } {
    return { createdAt: this.createdAt, startedAt: this.startedAt, firstTokenAt: this.firstTokenAt };
  }

  /** True once it finished with a result (not failed or cancelled). */
  get completed(): boolean {
    return this.finishReason !== null;
  }

  /** The engine time an upstream replica reported for this sequence (the gateway's). */
  reportedEngineMs: number | null = null;

  private stats(): GenerationStats {
    const now = performance.now();
    const start = this.startedAt || now;
    const first = this.firstTokenAt || now;
    const decodeMs = now - first;
    const rate = this.drafted > 0 ? this.accepted / this.drafted : 0;
    return {
      queueMs: start - this.createdAt,
      ttftMs: first - this.createdAt,
      prefillMs: this.prefillMs,
      decodeMs,
      decodeTokensPerSecond: decodeMs > 0 && this.generated.length > 1 ? ((this.generated.length - 1) * 1000) / decodeMs : 0,
      engineMs: this.reportedEngineMs ?? now - this.createdAt,
      speculative: { enabled: this.req.speculative, drafted: this.drafted, accepted: this.accepted, acceptanceRate: rate },
      stateBytes: this.state?.bytes ?? 0,
      reasoningBudgetHit: this.budgetHit,
    };
  }

  finish(cause: FinishCause): void {
    if (this.finished) return;
    this.status = "finished";
    let message: ParsedOutput;
    if (this.parser) {
      const { deltas, result } = this.parser.finish(cause);
      for (const d of deltas) this.events.push(d);
      message = result;
    } else {
      message = { content: "", reasoning_content: null, tool_calls: [], finish_reason: cause, warnings: [] };
    }
    const usage = this.usage();
    const logprobs = this.req.logprobs
      ? { content: this.lp.content.length ? this.lp.content : null, reasoning_content: this.lp.reasoning.length ? this.lp.reasoning : null }
      : null;
    const stats = this.stats();
    this.finishReason = message.finish_reason;
    this.events.push({ type: "usage", usage });
    const prompt = this.promptLp === null ? {} : { prompt_logprobs: this.promptLp };
    this.events.push({ type: "finish", finish_reason: message.finish_reason, message, usage, logprobs, stats, ...prompt });
    this.events.end();
    this.settle.resolve({ id: this.id, finish_reason: message.finish_reason, message, usage, logprobs, stats, tokens: [...this.generated], ...prompt });
  }

  fail(error: EngineError): void {
    if (this.finished) return;
    this.status = "finished";
    this.events.end(error);
    this.settle.reject(error);
  }
}
