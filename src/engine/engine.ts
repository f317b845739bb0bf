/**
 * The engine: one loaded model shared by many callers. It owns the scheduler,
 * the prefix cache and the step loop; each step is one batched model pass
 * over every running sequence (plus one MTP pass for drafts when speculating),
 * and new requests join between steps.
 *
 * The model computes on a runner (runner/: a worker thread by default), so
 * while a step runs this thread keeps serving HTTP, streaming and accepting
 * requests. A step is schedule() → runner → postprocess().
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { totalmem } from "node:os";
import { join } from "node:path";
import { preflightCheckpoint } from "../model/checkpoint-preflight.js";
import { loadConfig, type ModelConfig } from "../model/config.js";
import { checkpointReleaseAt, chooseEncoder, type EncoderChoice } from "../text/release.js";
import { loadTokenizer, type Tokenizer } from "../text/tokenizer.js";
import { DEFAULT_READER_TIMEOUT_MS, ReaderWatch } from "./backpressure.js";
import { blockSalts } from "./cache-salt.js";
import { EngineError } from "./errors.js";
import { cacheIdentity, modelIdentity, precisionOf, shardDigestsFile } from "./identity.js";
import { createChatCompletions } from "./openai.js";
import { PrefixCache, type CacheAnchor, type InsertPlan, type PrefixCacheStats } from "./prefix-cache.js";
import { resolveRequest } from "./request.js";
import { startRunner, type Runner, type StepOutput, type StepRequest } from "./runner/index.js";
import { Scheduler, SCHEDULING_POLICIES, type PrefillWork, type SchedulerHooks } from "./scheduler.js";
import { Sequence, type SequenceEnv } from "./sequence.js";
import { SharedPrefixes } from "./shared-prefix.js";
import { ChatSessionImpl } from "./session.js";
import { draftDistributions, draftTokens, draftVocabRanges, resolveSpeculation, trimEntries, type DrafterKind, type Proposal, type Speculation } from "./drafter.js";
import { SpecPolicy, type SpecPolicyState } from "./spec-policy.js";
import { draftBytesRatio } from "../model/draft-cost.js";
import { judgeDraft, judgeGreedy } from "./speculative.js";
import { Histogram } from "./histogram.js";
import { RequestMetrics } from "./request-metrics.js";
import { stateBytes } from "../model/state-size.js";
import type {
  CacheFlush, ChatCompletions, ChatSession, ChatSessionOptions, EngineApi, EngineHealth, EngineMetrics, EngineOptions, GenerateRequest, Generation, ModelInfo, TokenizeOptions,
} from "./types.js";
import { detokenizeIds, tokenizeText, tokenizerInfo, tokenPieces } from "./tokenize.js";

const GiB = 1024 ** 3;
/** Longest stretch of postprocessing (sampling, parsing, events) between two turns of the event loop. */
const POSTPROCESS_SLICE_MS = 8;
/**
 * Steps ahead of a possible draft from which DSpark sequences write their ring rows as they
 * go: a draft needs the main input of the step before it, and a margin covers a probe that
 * comes a step early when the step times it is planned from move.
 */
const FEED_BEFORE_DRAFT = 2;

/** The monotonic counters of EngineMetrics; the gauges and histograms are read live. */
type Counters = Omit<EngineMetrics, "speculative_accepted_per_step" | "active_sequences" | "reader_blocked_sequences" | "queued_requests" | "state_bytes_in_use" | "state_reserved_bytes" | "state_budget_bytes" | "latency" | "steps" | "requests" | "prefix_cache_entries" | "prefix_cache_bytes" | "prefix_cache_disk_entries">;

/** A sequence's part of one step: what it asked the runner, and what the prefix cache planned. */
interface Planned {
  seq: Sequence;
  request: StepRequest;
  insert: InsertPlan | null;
  /** The state's length before the step: the position of its first token. */
  start: number;
  /** A decode step verifying these drafts, or a prefill step of this chunk (neither: plain decode). */
  draft?: Proposal;
  work?: PrefillWork;
}

/** A step handed to the runner: what was planned, and its outputs to come. */
interface InFlight {
  planned: Planned[];
  decode: Sequence[];
  prefill: PrefillWork[];
  t0: number;
  out: Promise<StepOutput[]>;
}

type Launched = InFlight | "nothing" | "dropped";

/**
 * Prefix-cache blocks of 64 tokens, or the smallest multiple of 64 that every compression
 * ratio divides (128 for V4-Flash's HCA layers): at such a boundary no compressor holds a
 * partial window, so a block's resume state stays small.
 */
export function defaultBlockTokens(cfg: ModelConfig): number {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  let block = 64;
  for (const l of cfg.layers) if (l.compressRatio > 0) block = (block * l.compressRatio) / gcd(block, l.compressRatio);
  return block <= 1024 ? block : 64;
}

export class Engine implements EngineApi {
  readonly model: ModelInfo;
  readonly chat: { completions: ChatCompletions };
  private readonly scheduler: Scheduler;
  /**
   * Requests resolved by promptTokens(): the server reserves a budgeted request's cost from its
   * prompt length just before generate(), and the same request object is not encoded twice.
   */
  private readonly resolvedEarlier = new WeakMap<GenerateRequest, ReturnType<Engine["resolve"]>>();
  private readonly cache: PrefixCache | null;
  private readonly sharedPrefixes: SharedPrefixes;
  private readonly env: SequenceEnv;
  private readonly specWarmup: number;
  /** The next MTP draft is more than the warm-up's steps away (set per step). */
  private mtpDraftFar = false;
  private readonly speculation: Speculation;
  /** The drafter in use (null: speculation off or none in the checkpoint). */
  private readonly drafter: DrafterKind | null;
  private readonly policy: SpecPolicy | null;
  /**
   * The decode rows of this step that write DSpark's rings and return main_x (see step()):
   * all while a draft is near and drafting pays; only the sequence a coming probe will draft
   * for while it does not (a probe drafts for one sequence, and only a sequence with the
   * step's main input can take it); none while no draft is near.
   */
  private ringFeeder: Sequence | "all" | null = "all";
  /** The sequence that took this step's probe (SpecPolicy.probe: one sequence drafts). */
  private probeSeq: Sequence | null = null;
  /** Drafts per sequence the policy chose for the step being scheduled. */
  private stepDrafts = 0;
  /** Verify steps by accepted drafts (index = accepted count). */
  private readonly acceptedPerStep: number[];
  private readonly hooks: SchedulerHooks;
  private readonly readers: ReaderWatch;
  private readonly sessions = new Set<ChatSessionImpl>();
  /** Tokens of each running sequence already added to the counters (countGenerated). */
  private readonly countedTokens = new WeakMap<Sequence, { tokens: number; reasoning: number }>();
  private readonly requestMetrics = new RequestMetrics();
  /** Per batched step, with vLLM's bounds for tokens per iteration: what --max-batch-tokens and --prefill-latency shape. */
  private readonly stepTokens = new Histogram([1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]);
  private readonly stepSeconds = new Histogram([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]);
  private nextStateId = 1;
  private looping = false;
  private disposed = false;
  private readonly counters: Counters = {
    requests_total: 0, requests_rejected_total: 0, requests_cancelled_total: 0, prompt_tokens_total: 0,
    prompt_cache_hit_tokens_total: 0, prompt_cache_miss_tokens_total: 0, generated_tokens_total: 0,
    reasoning_tokens_total: 0, speculative_drafted_total: 0, speculative_accepted_total: 0, steps_total: 0,
    preemptions_total: 0,
  };

  private constructor(
    private readonly cfg: ModelConfig,
    private readonly runner: Runner,
    readonly tokenizer: Tokenizer | null,
    identity: string,
    dir: string,
    private readonly opts: EngineOptions,
    encoder: EncoderChoice,
  ) {
    this.speculation = resolveSpeculation(cfg, opts.speculative);
    this.drafter = this.speculation.maxDrafts > 0 ? this.speculation.drafter : null;
    const contextLength = Math.min(opts.contextLength ?? cfg.maxPositions, cfg.maxPositions);
    this.model = {
      name: opts.modelName ?? "deepseek-v4-flash",
      identity,
      systemFingerprint: `fp_${identity.slice(0, 10)}_dsv4`,
      dir,
      backend: runner.info.backend,
      contextLength,
      vocabSize: cfg.vocabSize,
      // The 0731 DSpark stages are MTP-numbered layers too; only the April block is "MTP".
      hasMtp: cfg.drafter === "mtp",
      drafter: this.drafter,
      ...(this.drafter && runner.info.draftVocabIds < cfg.vocabSize ? { draftVocab: runner.info.draftVocabIds } : {}),
      release: encoder.release,
      encoding: encoder.encoding,
      layers: cfg.layers.length,
      hiddenSize: cfg.dim,
    };
    this.env = {
      tokenizer,
      eosId: tokenizer?.specialIds.eos ?? cfg.eosTokenId,
      thinkEndId: tokenizer?.specialIds.thinkEnd,
      logitsProcessor: opts.logitsProcessor,
      readerHighWater: opts.readerHighWaterEvents,
      onReaderDrain: () => this.kick(),
    };
    this.readers = new ReaderWatch(opts.readerTimeoutMs ?? DEFAULT_READER_TIMEOUT_MS, () => this.kick());
    const pc = opts.prefixCache ?? {};
    const blockTokens = pc.blockTokens ?? defaultBlockTokens(cfg);
    this.sharedPrefixes = new SharedPrefixes(pc.sharedPrefixes ?? [], tokenizer);
    const dtype = precisionOf(runner.info.bytesPerValue);
    this.cache = pc.enabled === false
      ? null
      : new PrefixCache({
          identity: cacheIdentity(identity, dtype),
          blockTokens, memoryBytes: pc.memoryBytes ?? GiB, dir: pc.dir, diskBytes: pc.diskBytes ?? 8 * GiB, cfg, dtype,
        });
    this.scheduler = new Scheduler({
      maxRunning: opts.maxConcurrentSequences ?? 16,
      maxQueued: opts.maxQueuedRequests ?? 64,
      stateBudgetBytes: opts.stateMemoryBytes ?? Math.floor(totalmem() / 2),
      prefillChunk: opts.prefillChunkTokens ?? Infinity,
      maxBatchTokens: opts.maxBatchTokens ?? 2048,
      blockTokens: this.cache ? blockTokens : 0,
      reserveTokens: opts.reserveTokens ?? 4096,
      prefillLatencyFactor: opts.prefillLatencyFactor ?? 1.5,
      policy: opts.schedulingPolicy ?? "fcfs",
    });
    this.hooks = {
      bytesFor: (tokens) => this.stateBytesFor(tokens),
      decodeWidth: (seq) => 1 + this.draftsFor(seq),
      start: (seq) => this.start(seq),
      preempt: (seq) => this.preempt(seq),
    };
    const spec = typeof opts.speculative === "object" ? opts.speculative : {};
    this.specWarmup = Math.max(0, Math.min(spec.warmupTokens ?? 8, cfg.window - 1));
    this.policy = this.drafter
      ? new SpecPolicy({
          maxDrafts: this.speculation.maxDrafts, alwaysDraft: this.speculation.mode !== "auto", forced: this.speculation.forced, blockDraft: this.drafter === "dspark",
          priorDraftSteps: this.draftPrior(),
        })
      : null;
    this.acceptedPerStep = new Array<number>(this.speculation.maxDrafts + 1).fill(0);
    this.chat = { completions: createChatCompletions(this) };
  }

  /**
   * `auto` with DSpark and no prior given: times a plain decode step and a draft on a scratch
   * sequence before serving, so the policy works from measured costs from its first step. The
   * weight-byte prior underestimates a DSpark draft, whose block rows each read their own
   * experts (flash-slice: 1.5 plain steps by bytes, 2.6-3.6 timed), so a first probe planned
   * from it overspent its budget. The draft runs twice: the first pages in what it reads.
   * Then a few positions are owed and settled, for a probe's other cost: the owed ring rows
   * of its sequence (flash-slice: ~0.5 ms a row, up to a window of 128: 60 ms, half a draft).
   */
  private async calibrateSpeculation(): Promise<void> {
    const spec = typeof this.opts.speculative === "object" ? this.opts.speculative : {};
    if (!this.policy || this.drafter !== "dspark" || this.speculation.mode !== "auto" || this.speculation.forced !== undefined) return;
    if (spec.priorDraftSteps !== undefined || (spec.overrideOnly && spec.draftOverride)) return;
    const id = this.nextStateId++;
    const tokens = Array.from({ length: Math.min(8, this.cfg.window) }, (_, i) => i % this.cfg.vocabSize);
    this.runner.create(id);
    try {
      const [pre] = await this.runner.step([{ id, tokens, logits: "last", residualLast: 0, dspark: true, mainXLast: 1 }]);
      const draft = (mainX: NonNullable<StepOutput["mainX"]>[number]) => this.runner.draft([{ kind: "dspark", id, mainX, anchor: 1, count: this.speculation.maxDrafts, wantLogits: false }]);
      await draft(pre!.mainX![0]!);
      let t0 = performance.now();
      await draft(pre!.mainX![0]!);
      this.policy.recordDraft(1, performance.now() - t0);
      await this.runner.step([{ id, tokens: [2], logits: "last", residualLast: 0 }]);
      // A busy machine only ever slows a step down: the fastest of three is the plain step.
      let plain = Infinity;
      for (let i = 0; i < 3; i++) {
        t0 = performance.now();
        await this.runner.step([{ id, tokens: [3 + i], logits: "last", residualLast: 0 }]);
        plain = Math.min(plain, performance.now() - t0);
      }
      this.policy.recordStep(1, plain);
      // Fewer rows than a window settle at a higher cost per row: a prior on the safe side.
      const owe = Math.min(32, this.cfg.window);
      await this.runner.step([{ id, tokens: Array.from({ length: owe }, (_, i) => (6 + i) % this.cfg.vocabSize), logits: "none", residualLast: 0, dspark: "defer" }]);
      t0 = performance.now();
      await this.runner.step([{ id, tokens: [7], logits: "last", residualLast: 0, dspark: true }]);
      this.policy.recordSettle(1, owe, performance.now() - t0, plain);
    } finally {
      this.runner.free(id);
    }
  }

  private draftPrior(): number | undefined {
    const given = typeof this.opts.speculative === "object" ? this.opts.speculative.priorDraftSteps : undefined;
    if (given === null) return undefined;
    return given ?? draftBytesRatio(this.cfg, this.runner.info.draftVocabIds) ?? undefined;
  }

  /** Loads a model directory (config, tokenizer when present, weights) with progress events. */
  static async load(dir: string, opts: EngineOptions = {}): Promise<Engine> {
    const progress = opts.onProgress ?? (() => undefined);
    const check = () => {
      if (opts.signal?.aborted) throw new EngineError("aborted", "model load was aborted");
    };
    progress({ phase: "config", loaded: 0, total: 1 });
    const cfg = loadConfig(dir);
    preflightCheckpoint(dir, cfg);
    const encoder = chooseEncoder(checkpointReleaseAt(dir), opts.encoding);
    const speculation = resolveSpeculation(cfg, opts.speculative); // an impossible --speculative fails before the weights load
    if (opts.schedulingPolicy !== undefined && !SCHEDULING_POLICIES.includes(opts.schedulingPolicy)) {
      throw new EngineError("invalid_request", `schedulingPolicy must be one of ${SCHEDULING_POLICIES.map((p) => JSON.stringify(p)).join(", ")}, got ${JSON.stringify(opts.schedulingPolicy)}`, { param: "schedulingPolicy" });
    }
    progress({ phase: "config", loaded: 1, total: 1 });
    check();
    const identity = await modelIdentity(dir, {
      digestFile: opts.shardDigestsFile === undefined ? shardDigestsFile(opts.prefixCache?.dir) : opts.shardDigestsFile,
      onProgress: (p) => progress({ phase: "identity", loaded: p.hashed, total: p.total, message: p.file }),
      signal: opts.signal,
    });
    check();
    let tokenizer: Tokenizer | null = null;
    if (existsSync(join(dir, "tokenizer.json"))) {
      progress({ phase: "tokenizer", loaded: 0, total: 1 });
      tokenizer = await loadTokenizer(dir);
      progress({ phase: "tokenizer", loaded: 1, total: 1 });
    }
    check();
    const runner = await startRunner(dir, {
      kind: opts.runner,
      backend: opts.backend,
      prefetch: opts.prefetch,
      mlock: opts.mlock,
      repack: opts.repack,
      ...(speculation.draftVocab !== undefined ? { draftVocab: draftVocabRanges(cfg.vocabSize, speculation.draftVocab, tokenizer ? (id) => tokenizer!.isAdded(id) : null) } : {}),
      onProgress: (p) => progress({ phase: p.phase ?? "weights", loaded: p.done, total: p.total, message: `${p.bytes} bytes` }),
    });
    if (opts.signal?.aborted) {
      await runner.close();
      check();
    }
    const engine = new Engine(cfg, runner, tokenizer, identity, dir, opts, encoder);
    try {
      await engine.calibrateSpeculation();
    } catch (err) {
      await engine.dispose();
      throw err;
    }
    progress({ phase: "prefix-cache", loaded: engine.cache?.diskEntries ?? 0, total: engine.cache?.diskEntries ?? 0 });
    progress({ phase: "ready", loaded: 1, total: 1 });
    return engine;
  }

  stateBytesFor(tokens: number): number {
    return stateBytes(this.cfg, tokens, this.runner.info.bytesPerValue);
  }

  promptTokens(request: GenerateRequest): number[] {
    const resolved = this.resolvedEarlier.get(request) ?? this.resolve(request);
    this.resolvedEarlier.set(request, resolved);
    return resolved.promptTokens;
  }

  health(): EngineHealth {
    if (this.disposed) return { ok: false, reason: "the engine has been disposed" };
    const down = this.runner.failure;
    return down ? { ok: false, reason: `the model runner is down: ${down.message}` } : { ok: true, reason: null };
  }

  tokenize(text: string, options?: TokenizeOptions): number[] {
    return tokenizeText(this.tokenizer, text, options);
  }

  detokenize(tokens: readonly number[]): string {
    return detokenizeIds(this.tokenizer, tokens);
  }

  tokenPieces(tokens: readonly number[]): string[] {
    return tokenPieces(this.tokenizer, tokens);
  }

  tokenizerInfo(): Record<string, unknown> {
    return tokenizerInfo(this.tokenizer);
  }

  private resolve(request: GenerateRequest) {
    return resolveRequest(request, {
      tokenizer: this.tokenizer,
      contextLength: this.model.contextLength,
      vocabSize: this.model.vocabSize,
      speculativeDefault: true,
      canSpeculate: this.drafter !== null,
      encoding: this.model.encoding,
      sharedPrefixes: this.sharedPrefixes,
      defaultMaxTokens: this.opts.defaultMaxTokens,
      priorityScheduling: this.opts.schedulingPolicy === "priority",
    });
  }

  generate(request: GenerateRequest): Generation {
    let seq: Sequence;
    try {
      if (this.disposed) throw new EngineError("disposed", "the engine has been disposed");
      const down = this.runner.failure;
      if (down) throw new EngineError("unavailable", `the model runner is down (${down.message}); nothing can run until the engine is restarted`);
      if (request.signal?.aborted) throw new EngineError("aborted", "the request was aborted before it started");
      const r = this.resolvedEarlier.get(request) ?? this.resolve(request);
      this.resolvedEarlier.delete(request);
      const need = this.stateBytesFor(r.promptTokens.length + r.maxTokens);
      if (need > this.scheduler.cfg.stateBudgetBytes) {
        throw new EngineError(
          "insufficient_memory",
          `a sequence of ${r.promptTokens.length + r.maxTokens} tokens needs ${need} bytes of state, more than this engine's state budget of ${this.scheduler.cfg.stateBudgetBytes} bytes; lower max_tokens or shorten the prompt`,
          { param: "max_tokens" },
        );
      }
      seq = new Sequence(request.id ?? randomUUID(), r, this.env);
      this.scheduler.enqueue(seq);
    } catch (e) {
      this.counters.requests_rejected_total++;
      throw e;
    }
    this.counters.requests_total++;
    const signal = request.signal;
    if (signal) {
      const onAbort = () => this.cancel(seq);
      signal.addEventListener("abort", onAbort, { once: true });
      void seq.done.finally(() => signal.removeEventListener("abort", onAbort)).catch(() => undefined);
    }
    seq.events.push({ type: "queued", position: this.scheduler.waiting.indexOf(seq) });
    this.kick();
    const cancel = () => this.cancel(seq);
    return {
      id: seq.id,
      [Symbol.asyncIterator]: () => seq.events[Symbol.asyncIterator](),
      result: () => seq.done,
      cancel,
      [Symbol.asyncDispose]: async () => {
        cancel();
        await seq.done.catch(() => undefined);
      },
    };
  }

  createSession(options: ChatSessionOptions = {}): ChatSession {
    const session = new ChatSessionImpl(this, options, () => this.sessions.delete(session));
    this.sessions.add(session);
    return session;
  }

  /**
   * Stops every running and queued generation with `error` (a server whose shutdown drain ran
   * out of time); each one's reader gets the error. Returns how many were stopped.
   */
  stopAll(error: EngineError): number {
    const all = [...this.scheduler.running, ...this.scheduler.waiting];
    for (const seq of all) this.cancel(seq, error);
    return all.length;
  }

  private cancel(seq: Sequence, error = new EngineError("aborted", "the request was cancelled")): void {
    if (seq.finished) return;
    this.counters.requests_cancelled_total++;
    this.release(seq);
    seq.fail(error);
  }

  /** Frees a sequence's slot, reservation and state. */
  private release(seq: Sequence): void {
    this.scheduler.remove(seq);
    this.freeState(seq);
  }

  private freeState(seq: Sequence): void {
    if (seq.state) this.runner.free(seq.state.id);
    seq.state = null;
    seq.mtpEntries = [];
    seq.dsparkMainX = null;
    this.cache?.unpin(seq.cacheAnchor);
    seq.cacheAnchor = null;
  }

  metrics(): EngineMetrics {
    return {
      ...this.counters,
      speculative_accepted_per_step: [...this.acceptedPerStep],
      active_sequences: this.scheduler.running.length,
      reader_blocked_sequences: this.scheduler.running.filter((s) => s.readerBlocked).length,
      queued_requests: this.scheduler.waiting.length,
      state_bytes_in_use: this.scheduler.running.reduce((n, s) => n + (s.state?.bytes ?? 0), 0),
      state_reserved_bytes: this.scheduler.reservedBytes,
      state_budget_bytes: this.scheduler.cfg.stateBudgetBytes,
      prefix_cache_entries: this.cache?.entries ?? 0,
      prefix_cache_bytes: this.cache?.bytes ?? 0,
      prefix_cache_disk_entries: this.cache?.diskEntries ?? 0,
      latency: this.requestMetrics.latencySnapshot(),
      steps: { tokens: this.stepTokens.snapshot(), seconds: this.stepSeconds.snapshot() },
      requests: this.requestMetrics.statsSnapshot(),
    };
  }

  /** Speculative decoding as it stands: the drafter, its mode, and what the cost model measured and chose (null when off). */
  speculationState(): ({ drafter: DrafterKind; mode: Speculation["mode"]; maxDrafts: number } & SpecPolicyState) | null {
    if (!this.drafter || !this.policy) return null;
    return { drafter: this.drafter, mode: this.speculation.mode, maxDrafts: this.speculation.maxDrafts, ...this.policy.state() };
  }

  /** The prefix cache's block size in tokens (null when the cache is off). */
  get prefixCacheBlockTokens(): number | null {
    return this.cache?.blockTokens ?? null;
  }

  /** The prefix cache's contents (null when it is off): for benchmarks and operators. */
  prefixCacheStats(): PrefixCacheStats | null {
    return this.cache?.stats() ?? null;
  }

  async flushCache(): Promise<CacheFlush> {
    const n = this.scheduler.running.length + this.scheduler.waiting.length;
    if (n > 0) return { flushed: false, reason: `${n} request${n === 1 ? " is" : "s are"} running or waiting; flush when the server is idle` };
    if (!this.cache) return { flushed: true, entries: 0 };
    // Pinned entries are only those of running sequences, and none runs; one that starts while
    // the disk's writes finish loses nothing by the flush (its state is its own).
    return { flushed: true, entries: await this.cache.dropAll() };
  }

  /** Disposes every session (which cancels its generations), fails what is left, stops the runner. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.readers.dispose();
    for (const session of [...this.sessions]) session.dispose();
    for (const seq of [...this.scheduler.running, ...this.scheduler.waiting]) {
      this.release(seq);
      seq.fail(new EngineError("disposed", "the engine was disposed"));
    }
    await this.cache?.flush();
    this.cache?.clear();
    await this.runner.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  // ───────────────────────────── the loop ─────────────────────────────

  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    let parked = false;
    try {
      let next: Launched | undefined;
      while (!this.disposed && !this.scheduler.idle) {
        const launched = next ?? (await this.launch());
        next = undefined;
        // Nothing could run: every sequence waits for its reader. Sleep; a reader or a timeout wakes us.
        if (launched === "nothing") {
          parked = true;
          this.readers.park(this.scheduler.running);
          break;
        }
        if (launched !== "dropped") next = await this.land(launched);
        // Let callers read events, cancel, and new requests arrive between steps. With the
        // model on its own thread they do that while the next step computes: land() launched it
        // before returning, so the SSE writes of this step's tokens overlap it.
        if (next === undefined) await new Promise<void>((r) => setImmediate(r));
      }
    } catch (err) {
      if (!this.disposed) {
        const e = new EngineError("internal", `engine step failed: ${(err as Error).message}`, { cause: err });
        for (const seq of [...this.scheduler.running]) {
          this.release(seq);
          seq.fail(e);
        }
      }
    } finally {
      this.looping = false;
      if (!parked && !this.disposed && !this.scheduler.idle) this.kick();
    }
  }

  /** Gives an admitted sequence its state: fresh, or the longest cached prefix of its context. */
  private start(seq: Sequence): void {
    const resumed = seq.preemptions > 0;
    seq.markStarted();
    seq.state = { id: this.nextStateId++, length: 0, bytes: 0, owed: 0 };
    this.runner.create(seq.state.id);
    if (this.cache && seq.req.useCache) {
      const hit = this.cache.lookup(seq.context, blockSalts(seq.req));
      if (hit.chain) this.runner.restore(seq.state.id, hit.chain);
      seq.state.length = hit.tokens;
      seq.prefilled = hit.tokens;
      this.moveAnchor(seq, hit.anchor);
      if (!resumed) seq.cachedTokens = hit.tokens;
    }
    if (resumed) return;
    const c = this.counters;
    c.prompt_tokens_total += seq.promptLength;
    c.prompt_cache_hit_tokens_total += seq.cachedTokens;
    c.prompt_cache_miss_tokens_total += seq.promptLength - seq.cachedTokens;
  }

  private preempt(seq: Sequence): void {
    this.counters.preemptions_total++;
    this.freeState(seq);
    seq.preempt();
  }

  /** The sequence a coming probe drafts for: the last one chosen while it can still draft, else the first that can. */
  private probeCandidate(): Sequence | null {
    const can = (s: Sequence) => !s.finished && s.pending !== null && s.req.speculative && s.remaining > 1;
    const running = this.scheduler.running;
    const last = this.ringFeeder;
    if (last !== null && last !== "all" && can(last) && running.includes(last)) return last;
    return running.find(can) ?? null;
  }

  /**
   * Drafts `seq` verifies in the step being scheduled: the policy's choice, capped so the
   * step emits no more than the sequence may still generate, verifies no position where the
   * reasoning budget forces `</think>`, and stays short of the next prefix-cache boundary.
   */
  private draftsFor(seq: Sequence): number {
    if (!this.drafter || !seq.req.speculative || seq.pending === null || this.stepDrafts === 0) return 0;
    const overrideOnly = typeof this.opts.speculative === "object" && this.opts.speculative.overrideOnly === true && !!this.opts.speculative.draftOverride;
    if (!overrideOnly && (this.drafter === "mtp" ? seq.mtpEntries.length === 0 : seq.dsparkMainX === null)) return 0;
    // A probe is one sequence's draft: the first that can take it.
    if (this.policy?.probe && this.probeSeq !== null && this.probeSeq !== seq) return 0;
    let k = Math.min(this.stepDrafts, seq.remaining - 1, this.boundaryRoom(seq));
    while (k > 0 && seq.budgetWithin(k + 1)) k--;
    if (k > 0 && this.policy?.probe) this.probeSeq = seq;
    return Math.max(0, k);
  }

  /**
   * A decoding sequence near a prefix-cache block boundary verifies only as many drafts as
   * keep the step short of it, down to none, so the step that reaches the boundary is a
   * one-token step ending there and can be captured (a verify step would capture before it
   * knows which drafts stay).
   */
  private boundaryRoom(seq: Sequence): number {
    if (!this.cache || !seq.req.useCache || !seq.state) return Infinity;
    const B = this.cache.blockTokens;
    const toBoundary = B - (seq.state.length % B);
    return toBoundary - 2;
  }

  private moveAnchor(seq: Sequence, anchor: CacheAnchor | null): void {
    if (anchor?.key === seq.cacheAnchor?.key) return;
    this.cache?.unpin(seq.cacheAnchor);
    this.cache?.pin(anchor);
    seq.cacheAnchor = anchor;
  }

  /** The cache's plan for a step that leaves `seq` at `end` tokens: the prompt's (or the answer's) blocks. */
  private planInsert(seq: Sequence, end: number, provisional: boolean): InsertPlan | null {
    if (!this.cache || !seq.req.useCache || end % this.cache.blockTokens !== 0) return null;
    // The state holds the prompt, then the generated tokens fed so far.
    const tokens = end <= seq.context.length ? seq.context : [...seq.req.promptTokens, ...seq.generated];
    return this.cache.planInsert(tokens, blockSalts(seq.req), end, seq.cacheAnchor, provisional);
  }

  /**
   * The first half of a step: schedule, draft, and hand one batched forward to the runner
   * (not awaited). "nothing": nothing could run; "dropped": every scheduled sequence was
   * cancelled while its drafts were computed.
   */
  private async launch(): Promise<Launched> {
    if (this.disposed) return "nothing";
    this.readers.cancelStuck(this.scheduler.running, (seq, e) => this.cancel(seq, e));
    const decoding = this.scheduler.running.filter((s) => s.pending !== null && !s.finished).length;
    // What a probe would settle first: the ring rows its sequence owes.
    const candidate = this.probeCandidate();
    const owed = candidate?.state?.owed ?? 0;
    this.stepDrafts = this.policy && decoding > 0 ? this.policy.choose(decoding, owed, candidate !== null) : 0;
    // DSpark's ring rows (a main_proj product per row) are owed while no draft is near, and
    // written in one batch when one is: the step before a draft gives its main input.
    const near = this.drafter === "dspark" && (!this.policy || this.policy.stepsToDraft(decoding, owed) <= FEED_BEFORE_DRAFT);
    // Ahead of a probe only its sequence settles its owed rows and feeds them: settling all 16
    // of a flash-slice batch cost a 16-row step more than twice over (481 ms against ~210),
    // which made auto at 16 streams 5-7% slower than off.
    this.ringFeeder = !near ? null : this.policy && !this.policy.drafting ? candidate : "all";
    // A prompt's MTP warm-up entries (its last positions' residual streams) cost full rows of
    // the last layer, which a prompt's other positions skip: 9 rows instead of 1 made a
    // 16-prompt flash-slice prefill ~15% slower. When the next draft is further off than the
    // warm-up, the decode steps before it record as many entries, so the prompt gives one.
    this.mtpDraftFar = this.drafter === "mtp" && !!this.policy && this.policy.stepsToDraft(Math.max(1, decoding)) > this.specWarmup;
    this.probeSeq = null;
    const plan = this.scheduler.schedule(this.hooks);
    if (plan.prefill.length === 0 && plan.decode.length === 0) return "nothing";
    this.counters.steps_total++;

    // No await when nothing drafts: the step must reach the runner before callers run (see loop).
    const drafts = this.drafter !== null && this.stepDrafts > 0 && plan.decode.length > 0 ? await this.draft(plan.decode) : new Map<Sequence, Proposal>();

    // Sequences cancelled while the drafts were computed are gone from the runner.
    const decode = plan.decode.filter((seq) => !seq.finished);
    const prefill = plan.prefill.filter((w) => !w.seq.finished);
    const planned: Planned[] = [
      ...decode.map((seq) => this.decodeRequest(seq, drafts.get(seq))),
      ...prefill.map((w) => this.prefillRequest(w)),
    ];
    if (planned.length === 0) return "dropped";
    const t0 = performance.now();
    const out = this.runner.step(planned.map((p) => p.request));
    // land() awaits it; a loop that stops first (the engine disposed) must not leave it unhandled.
    out.catch(() => undefined);
    return { planned, decode, prefill, t0, out };
  }

  /**
   * The second half: the forward's outputs recorded and postprocessed (sampling, events). With
   * the runner on its own thread, the next step is launched before this returns (its promise
   * is returned), so no caller runs between the last token's events and the next dispatch.
   */
  private async land(step: InFlight): Promise<Launched | undefined> {
    const { planned, decode, prefill, t0 } = step;
    const out = await step.out;
    const stepMs = performance.now() - t0;
    const rows = planned.reduce((n, p) => n + p.request.tokens.length, 0);
    this.stepTokens.observe(rows);
    this.stepSeconds.observe(stepMs / 1000);
    this.scheduler.cost.record(decode.length, prefill.reduce((n, w) => n + w.tokens.length, 0), stepMs);
    if (prefill.length === 0) {
      // A ring-writing step settles what its sequence owed, and so does a block capture.
      const settled = planned.reduce((n, p) => n + (p.request.dspark === true || p.request.captureFrom !== undefined ? p.seq.state!.owed : 0), 0);
      if (settled > 0) this.policy?.recordSettle(rows, settled, stepMs);
      else this.policy?.recordStep(rows, stepMs);
    }

    // Sampling a 129k vocabulary costs about a millisecond a row: with many rows, yield now and
    // then so HTTP, SSE writes and new requests are not held up behind the whole batch.
    let slice = performance.now();
    for (let i = 0; i < planned.length; i++) {
      if (performance.now() - slice > POSTPROCESS_SLICE_MS) {
        await new Promise<void>((r) => setImmediate(r));
        slice = performance.now();
      }
      this.postprocess(planned[i]!, out[i]!);
    }
    // Nothing keeps a step's logits past its postprocessing (a logits hook must copy what it keeps).
    this.runner.recycle(out.flatMap((o) => o.logits));

    const now = performance.now();
    for (const seq of [...this.scheduler.running]) {
      this.countGenerated(seq);
      if (seq.completed) this.requestMetrics.completed(seq, now);
      else this.requestMetrics.afterStep(seq, now);
      if (!seq.finished) continue;
      this.release(seq);
    }
    return this.runner.offThread && !this.disposed && !this.scheduler.idle ? this.launch() : undefined;
  }

  /**
   * Adds what `seq` generated since it was last counted to the token counters: every step, so
   * /metrics' generated-token total and rate move while a long answer is being written, and a
   * cancelled generation's tokens count too.
   */
  private countGenerated(seq: Sequence): void {
    const seen = this.countedTokens.get(seq) ?? { tokens: 0, reasoning: 0 };
    this.counters.generated_tokens_total += Math.max(0, seq.generated.length - seen.tokens);
    this.counters.reasoning_tokens_total += Math.max(0, seq.reasoningTokens - seen.reasoning);
    this.countedTokens.set(seq, { tokens: Math.max(seen.tokens, seq.generated.length), reasoning: Math.max(seen.reasoning, seq.reasoningTokens) });
  }

  /**
   * Drafts for the decoding sequences the policy gives drafts this step, in one runner call;
   * DSpark blocks are then trimmed by their confidence.
   */
  private async draft(decode: readonly Sequence[]): Promise<Map<Sequence, Proposal>> {
    const plans = decode.map((seq) => ({ seq, k: this.draftsFor(seq) })).filter((p) => p.k > 0);
    if (plans.length === 0 || !this.drafter || !this.policy) return new Map();
    const spec = typeof this.opts.speculative === "object" ? this.opts.speculative : {};
    const dspark = this.drafter === "dspark";
    const t0 = performance.now();
    const proposals = await draftTokens(this.runner, this.drafter, plans, {
      vocab: this.cfg.vocabSize, warmup: this.specWarmup, override: spec.draftOverride, skipModel: spec.overrideOnly === true && !!spec.draftOverride,
    });
    if (!(spec.overrideOnly && spec.draftOverride)) this.policy.recordDraft(dspark ? plans.length : plans.reduce((n, p) => n + p.k, 0), performance.now() - t0);
    // A DSpark draft writes whatever its sequence still owed before it reads the rings.
    if (dspark) for (const { seq } of plans) seq.state!.owed = 0;
    const draftLogits = [...proposals.values()].flatMap((p) => p.logits ?? []);
    for (const { seq, k } of plans) {
      const p = proposals.get(seq)!;
      const keep = this.policy.trim(Math.min(k, p.tokens.length), decode.length, p.confidence);
      p.tokens = p.tokens.slice(0, keep);
      if (p.q) p.q = p.q.slice(0, keep);
      if (p.confidence) p.confidence = p.confidence.slice(0, keep);
      if (keep === 0) proposals.delete(seq);
      else draftDistributions(p, seq.req.sampling);
    }
    // q holds what verification needs of them.
    this.runner.recycle(draftLogits);
    return proposals;
  }

  private decodeRequest(seq: Sequence, draft: Proposal | undefined): Planned {
    const start = seq.state!.length;
    const spec = seq.req.speculative && this.drafter !== null;
    const fed = this.ringFeeder === "all" || this.ringFeeder === seq;
    const rings = spec && this.drafter === "dspark" && (fed || draft !== undefined);
    // A speculative sequence that will not draft soon owes its ring rows (written in one batch when it does).
    const dspark: Pick<StepRequest, "dspark"> = rings ? { dspark: true } : spec && this.drafter === "dspark" ? { dspark: "defer" } : {};
    if (draft) {
      const k = draft.tokens.length;
      this.counters.speculative_drafted_total += k;
      seq.drafted += k;
      // Verifying drafts needs logits at every position, the drafter's inputs there, and a way back from them.
      const request: StepRequest = {
        id: seq.state!.id, tokens: [seq.pending!, ...draft.tokens], logits: "all", saveTail: k,
        residualLast: this.drafter === "mtp" ? k + 1 : 0, ...dspark, ...(this.drafter === "dspark" ? { mainXLast: k + 1 } : {}),
      };
      const masks = seq.verifyMasks(k);
      if (masks) request.argmaxes = masks;
      return { seq, start, draft, request, insert: null };
    }
    const request: StepRequest = {
      id: seq.state!.id, tokens: [seq.pending!], logits: "last", residualLast: spec && this.drafter === "mtp" ? 1 : 0, ...dspark,
      ...(rings ? { mainXLast: 1 } : {}),
    };
    const choice = seq.runnerChoice();
    if (choice) request.choose = choice;
    const insert = this.planInsert(seq, start + 1, true);
    if (insert?.capture) request.captureFrom = insert.capture.from;
    return { seq, start, request, insert };
  }

  private prefillRequest(w: PrefillWork): Planned {
    const seq = w.seq;
    const end = seq.state!.length + w.tokens.length;
    const spec = seq.req.speculative && this.drafter !== null;
    // MTP inputs for the context's last positions only: (residual at i, token at i+1).
    const residualLast = w.final && spec && this.drafter === "mtp" ? Math.min(w.tokens.length, this.mtpDraftFar ? 1 : this.specWarmup + 1) : 0;
    const request: StepRequest = { id: seq.state!.id, tokens: w.tokens, logits: w.final ? "last" : "none", residualLast };
    if (seq.req.promptLogprobs !== null) {
      const from = seq.state!.length;
      const next = w.tokens.map((_, i) => seq.promptLogprobAfter(from + i));
      if (next.some((t) => t !== null)) request.promptLogprobs = { next, top: seq.req.promptLogprobs };
    }
    if (w.final && !request.promptLogprobs) {
      const choice = seq.runnerChoice();
      if (choice) request.choose = choice;
    }
    if (spec && this.drafter === "dspark") {
      // Every position writes its DSpark ring entries; the last one's main input seeds the first block.
      request.dspark = true;
      if (w.final) request.mainXLast = 1;
    }
    const insert = this.planInsert(seq, end, false);
    if (insert?.capture) request.captureFrom = insert.capture.from;
    return { seq, start: seq.state!.length, work: w, request, insert };
  }

  private postprocess(p: Planned, out: StepOutput): void {
    const seq = p.seq;
    if (seq.finished || !seq.state) return;
    seq.state.length = out.length;
    seq.state.bytes = out.bytes;
    seq.state.owed = out.owed;
    if (p.insert) {
      if (p.insert.capture && out.block) this.cache!.put(p.insert.capture, out.block);
      this.moveAnchor(seq, p.insert.anchor);
    }
    if (p.work) this.afterPrefill(seq, p.work, out);
    else this.afterDecode(seq, out, p.start, p.draft);
  }

  private afterPrefill(seq: Sequence, w: PrefillWork, out: StepOutput): void {
    if (out.promptLogprobs) seq.addPromptLogprobs(seq.state!.length - w.tokens.length, out.promptLogprobs);
    seq.prefilled += w.tokens.length;
    seq.prefillProgress();
    if (!w.final) return;
    const logits = out.logits[0] ?? null;
    const token = out.token ?? seq.choose(logits!);
    if (seq.req.speculative && this.drafter === "mtp") {
      const P = seq.contextLength;
      seq.mtpEntries = out.residual.map((hidden, k) => {
        const pos = P - out.residual.length + k;
        return { pos, hidden, token: pos + 1 < P ? seq.context[pos + 1]! : token };
      });
    }
    if (seq.req.speculative && this.drafter === "dspark") seq.dsparkMainX = out.mainX?.[0] ?? null;
    seq.accept(token, logits);
  }

  /** Records the drafter inputs of the positions a step kept: position start + i, then the token emitted after it. */
  private keepDrafterInputs(seq: Sequence, out: StepOutput, start: number, emitted: readonly number[]): void {
    if (!seq.req.speculative) return;
    if (this.drafter === "mtp") {
      emitted.forEach((token, i) => seq.mtpEntries.push({ pos: start + i, hidden: out.residual[i]!, token }));
      // While auto is not drafting, keep only what the next draft would replay.
      if (seq.mtpEntries.length > 2 * (this.specWarmup + 1)) seq.mtpEntries = trimEntries(seq.mtpEntries, this.specWarmup);
    }
    if (this.drafter === "dspark") seq.dsparkMainX = out.mainX?.[emitted.length - 1] ?? null;
  }

  private afterDecode(seq: Sequence, out: StepOutput, start: number, draft: Proposal | undefined): void {
    if (!draft) {
      const logits = out.logits[0] ?? null;
      const token = out.token ?? seq.choose(logits!);
      this.keepDrafterInputs(seq, out, start, [token]);
      seq.accept(token, logits);
      return;
    }
    // Judge the drafts in order; each kept one is emitted at once (it may end the sequence), so
    // what reads the logits of a position sees exactly the tokens plain decoding would have.
    const k = draft.tokens.length;
    const emitted: number[] = [];
    let next: number | null = null;
    let finished = false;
    // Greedy with out.argmaxes: the runner took each position's masked argmax.
    const argmaxes = out.argmaxes;
    while (emitted.length < k && !finished) {
      const i = emitted.length;
      const row = argmaxes ? null : out.logits[i]!;
      if (row) seq.processLogits(row);
      const j = row ? judgeDraft(draft, i, row, seq.req.sampling, seq.rng) : judgeGreedy(draft, i, argmaxes![i]!);
      if (!j.accepted) {
        next = j.token;
        break;
      }
      emitted.push(draft.tokens[i]!);
      finished = seq.accept(draft.tokens[i]!, row);
    }
    const accepted = emitted.length;
    this.policy?.recordVerify(k, accepted, draft.confidence);
    this.acceptedPerStep[accepted] = (this.acceptedPerStep[accepted] ?? 0) + 1;
    this.counters.speculative_accepted_total += accepted;
    seq.accepted += accepted;
    if (finished) return;
    if (accepted < k) {
      // The rejected drafts' positions were computed for nothing: take them back out of the state.
      this.runner.dropTail(seq.state!.id, k - accepted);
      seq.state!.length -= k - accepted;
    }
    // The correction after a rejection, or the bonus token after k kept drafts.
    const token = next ?? (argmaxes ? argmaxes[k]! : seq.choose(out.logits[k]!));
    emitted.push(token);
    this.keepDrafterInputs(seq, out, start, emitted);
    seq.accept(token, argmaxes ? null : out.logits[accepted]!);
  }
}
