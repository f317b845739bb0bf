/**
 * The engine: one loaded model shared by many callers. It owns the scheduler,
 * the prefix cache and the step loop; each step is one batched model pass
 * over every running sequence (plus one MTP pass for drafts when speculating),
 * and new requests join between steps.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { totalmem } from "node:os";
import { join } from "node:path";
import { createBackend } from "../kernels/index.js";
import type { ForwardOutput, ForwardRequest } from "../model/transformer.js";
import { Dsv4Model } from "../model/transformer.js";
import type { TailUndo } from "../model/state.js";
import { loadTokenizer, type Tokenizer } from "../text/tokenizer.js";
import { DEFAULT_READER_TIMEOUT_MS, ReaderWatch } from "./backpressure.js";
import { EngineError } from "./errors.js";
import { modelIdentity } from "./identity.js";
import { createChatCompletions } from "./openai.js";
import { PrefixCache } from "./prefix-cache.js";
import { resolveRequest } from "./request.js";
import { Scheduler } from "./scheduler.js";
import { Sequence, type SequenceEnv } from "./sequence.js";
import { ChatSessionImpl } from "./session.js";
import { draftTokens, verifyDraft, type Draft } from "./speculative.js";
import { stateBytes } from "../model/state-size.js";
import type {
  ChatCompletions, ChatSession, ChatSessionOptions, EngineApi, EngineMetrics, EngineOptions, GenerateRequest, Generation, ModelInfo,
} from "./types.js";

const GiB = 1024 ** 3;

/** The monotonic counters of EngineMetrics; the gauges are read live. */
type Counters = Omit<EngineMetrics, "active_sequences" | "reader_blocked_sequences" | "queued_requests" | "state_bytes_in_use" | "prefix_cache_entries" | "prefix_cache_bytes" | "prefix_cache_disk_entries">;

export class Engine implements EngineApi {
  readonly model: ModelInfo;
  readonly chat: { completions: ChatCompletions };
  private readonly scheduler: Scheduler;
  private readonly cache: PrefixCache | null;
  private readonly env: SequenceEnv;
  private readonly bytesPerValue: number;
  private readonly specWarmup: number;
  private readonly specDefault: boolean;
  private readonly readers: ReaderWatch;
  private looping = false;
  private disposed = false;
  private readonly counters: Counters = {
    requests_total: 0, requests_rejected_total: 0, requests_cancelled_total: 0, prompt_tokens_total: 0,
    prompt_cache_hit_tokens_total: 0, prompt_cache_miss_tokens_total: 0, generated_tokens_total: 0,
    reasoning_tokens_total: 0, speculative_drafted_total: 0, speculative_accepted_total: 0, steps_total: 0,
  };

  private constructor(
    private readonly core: Dsv4Model,
    readonly tokenizer: Tokenizer | null,
    identity: string,
    dir: string,
    backendName: string,
    private readonly opts: EngineOptions,
  ) {
    const cfg = core.cfg;
    this.bytesPerValue = core.backend.alloc(1).BYTES_PER_ELEMENT;
    const hasMtp = cfg.mtpLayers.length > 0;
    const contextLength = Math.min(opts.contextLength ?? cfg.maxPositions, cfg.maxPositions);
    this.model = {
      name: opts.modelName ?? "deepseek-v4-flash",
      identity,
      systemFingerprint: `fp_${identity.slice(0, 10)}_dsv4`,
      dir,
      backend: backendName,
      contextLength,
      vocabSize: cfg.vocabSize,
      hasMtp,
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
    const blockTokens = pc.blockTokens ?? 64;
    this.cache = pc.enabled === false
      ? null
      : new PrefixCache({ identity, blockTokens, memoryBytes: pc.memoryBytes ?? GiB, dir: pc.dir, diskBytes: pc.diskBytes ?? 8 * GiB });
    this.scheduler = new Scheduler({
      maxRunning: opts.maxConcurrentSequences ?? 16,
      maxQueued: opts.maxQueuedRequests ?? 64,
      stateBudgetBytes: opts.stateMemoryBytes ?? Math.floor(totalmem() / 2),
      prefillChunk: opts.prefillChunkTokens ?? 256,
      maxBatchTokens: opts.maxBatchTokens ?? 2048,
      blockTokens,
    });
    this.specDefault = opts.speculative?.enabled ?? hasMtp;
    this.specWarmup = Math.max(0, Math.min(opts.speculative?.warmupTokens ?? 8, cfg.window - 1));
    this.chat = { completions: createChatCompletions(this) };
  }

  /** Loads a model directory (config, tokenizer when present, weights) with progress events. */
  static async load(dir: string, opts: EngineOptions = {}): Promise<Engine> {
    const progress = opts.onProgress ?? (() => undefined);
    const check = () => {
      if (opts.signal?.aborted) throw new EngineError("aborted", "model load was aborted");
    };
    progress({ phase: "config", loaded: 0, total: 1 });
    const identity = modelIdentity(dir);
    progress({ phase: "config", loaded: 1, total: 1 });
    check();
    let tokenizer: Tokenizer | null = null;
    if (existsSync(join(dir, "tokenizer.json"))) {
      progress({ phase: "tokenizer", loaded: 0, total: 1 });
      tokenizer = await loadTokenizer(dir);
      progress({ phase: "tokenizer", loaded: 1, total: 1 });
    }
    check();
    const backend = createBackend(opts.backend);
    const backendName = opts.backend ?? process.env.DSV4_BACKEND ?? backend.constructor.name.replace(/Backend$/, "").toLowerCase();
    const core = Dsv4Model.load(dir, {
      backend,
      onProgress: (p) => progress({ phase: "weights", loaded: p.done, total: p.total, message: `${p.bytes} bytes` }),
    });
    const engine = new Engine(core, tokenizer, identity, dir, backendName, opts);
    progress({ phase: "prefix-cache", loaded: engine.cache?.diskEntries ?? 0, total: engine.cache?.diskEntries ?? 0 });
    progress({ phase: "ready", loaded: 1, total: 1 });
    return engine;
  }

  stateBytesFor(tokens: number): number {
    return stateBytes(this.core.cfg, tokens, this.bytesPerValue);
  }

  promptTokens(request: GenerateRequest): number[] {
    return this.resolve(request).promptTokens;
  }

  private resolve(request: GenerateRequest) {
    return resolveRequest(request, {
      tokenizer: this.tokenizer,
      contextLength: this.model.contextLength,
      vocabSize: this.model.vocabSize,
      speculativeDefault: this.specDefault,
      hasMtp: this.model.hasMtp,
    });
  }

  generate(request: GenerateRequest): Generation {
    let seq: Sequence;
    try {
      if (this.disposed) throw new EngineError("disposed", "the engine has been disposed");
      if (request.signal?.aborted) throw new EngineError("aborted", "the request was aborted before it started");
      const r = this.resolve(request);
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
    return {
      id: seq.id,
      [Symbol.asyncIterator]: () => seq.events[Symbol.asyncIterator](),
      result: () => seq.done,
      cancel: () => this.cancel(seq),
    };
  }

  createSession(options: ChatSessionOptions = {}): ChatSession {
    return new ChatSessionImpl(this, options);
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
    seq.state = null;
    seq.mtpEntries = [];
  }

  metrics(): EngineMetrics {
    return {
      ...this.counters,
      active_sequences: this.scheduler.running.length,
      reader_blocked_sequences: this.scheduler.running.filter((s) => s.readerBlocked).length,
      queued_requests: this.scheduler.waiting.length,
      state_bytes_in_use: this.scheduler.running.reduce((n, s) => n + (s.state?.bytes ?? 0), 0),
      prefix_cache_entries: this.cache?.entries ?? 0,
      prefix_cache_bytes: this.cache?.bytes ?? 0,
      prefix_cache_disk_entries: this.cache?.diskEntries ?? 0,
    };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.readers.dispose();
    for (const seq of [...this.scheduler.running, ...this.scheduler.waiting]) {
      this.release(seq);
      seq.fail(new EngineError("disposed", "the engine was disposed"));
    }
    await this.cache?.flush();
    this.cache?.clear();
    this.core.close();
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
      while (!this.disposed && !this.scheduler.idle) {
        // Nothing could run: every sequence waits for its reader. Sleep; a reader or a timeout wakes us.
        if (!this.step()) {
          parked = true;
          this.readers.park(this.scheduler.running);
          break;
        }
        // Let callers read events, cancel, and new requests arrive between steps.
        await new Promise<void>((r) => setImmediate(r));
      }
    } catch (err) {
      const e = new EngineError("internal", `engine step failed: ${(err as Error).message}`, { cause: err });
      for (const seq of [...this.scheduler.running]) {
        this.release(seq);
        seq.fail(e);
      }
    } finally {
      this.looping = false;
      if (!parked && !this.disposed && !this.scheduler.idle) this.kick();
    }
  }

  private start(seq: Sequence): void {
    seq.markStarted();
    seq.state = this.core.newSequence();
    if (this.cache && seq.req.useCache) {
      const hit = this.cache.restore(seq.state, seq.req.promptTokens, seq.req.cacheSalt);
      seq.prefilled = hit.tokens;
      seq.cachedTokens = hit.tokens;
      seq.cacheAnchor = hit.anchor;
    }
    const c = this.counters;
    c.prompt_tokens_total += seq.promptLength;
    c.prompt_cache_hit_tokens_total += seq.cachedTokens;
    c.prompt_cache_miss_tokens_total += seq.promptLength - seq.cachedTokens;
  }

  private canDraft(seq: Sequence): boolean {
    return seq.req.speculative && seq.pending !== null && seq.mtpEntries.length > 0 && seq.remaining >= 2 && !seq.budgetWithin(2);
  }

  /** One scheduling step: admit, plan, draft, one batched forward, record outcomes. False when nothing could run. */
  private step(): boolean {
    const s = this.scheduler;
    this.readers.cancelStuck(s.running, (seq, e) => this.cancel(seq, e));
    s.admit((seq) => {
      seq.reservedTokens = this.reservationTokens(seq, seq.promptLength);
      return this.stateBytesFor(seq.reservedTokens);
    }, (seq) => this.start(seq));
    const plan = s.plan((seq) => (this.canDraft(seq) ? 2 : 1));
    if (plan.prefill.length === 0 && plan.decode.length === 0) return false;
    this.counters.steps_total++;

    const drafting = plan.decode.filter((seq) => this.canDraft(seq));
    const drafts: Map<Sequence, Draft> = drafting.length > 0 ? draftTokens(this.core, drafting, this.specWarmup, this.opts.speculative?.draftOverride) : new Map();
    this.counters.speculative_drafted_total += drafts.size;

    const undo = new Map<Sequence, TailUndo>();
    const decodeReqs: ForwardRequest[] = plan.decode.map((seq) => {
      const st = seq.state!;
      const d = drafts.get(seq);
      if (!d) return { seq: st, tokens: [seq.pending!] };
      undo.set(seq, st.saveTail(st.length + 1));
      // Verifying a draft needs logits (and streams) at both of its positions.
      return { seq: st, tokens: [seq.pending!, d.token], logits: "all", residual: "all" };
    });
    const prefillReqs: ForwardRequest[] = plan.prefill.map((w) => ({ seq: w.seq.state!, tokens: w.tokens }));
    const positions = new Map<Sequence, number>();
    for (const seq of plan.decode) positions.set(seq, seq.state!.length);
    for (const w of plan.prefill) positions.set(w.seq, w.seq.state!.length);

    const wantResidual = [...plan.decode, ...plan.prefill.map((w) => w.seq)].some((seq) => seq.req.speculative);
    // One pass over every sequence; prompts being prefilled need logits only at their last token.
    const out = this.core.forward([...decodeReqs, ...prefillReqs], { logits: "last", residual: wantResidual ? "all" : "none" });
    const decodeOut: ForwardOutput[] = out.slice(0, decodeReqs.length);
    const prefillOut: ForwardOutput[] = out.slice(decodeReqs.length);

    plan.decode.forEach((seq, i) => this.afterDecode(seq, decodeOut[i]!, positions.get(seq)!, drafts.get(seq), undo.get(seq)));
    plan.prefill.forEach((w, i) => this.afterPrefill(w.seq, w.tokens.length, w.final, prefillOut[i]!, positions.get(w.seq)!));

    for (const seq of [...s.running]) {
      if (!seq.finished) this.extendReservation(seq);
      if (!seq.finished) continue;
      this.counters.generated_tokens_total += seq.generated.length;
      this.counters.reasoning_tokens_total += seq.reasoningTokens;
      this.counters.speculative_accepted_total += seq.accepted;
      this.release(seq);
    }
    return true;
  }

  private reservationTokens(seq: Sequence, from: number): number {
    const step = this.opts.reserveTokens ?? 4096;
    return Math.min(seq.promptLength + seq.req.maxTokens, from + step);
  }

  /** Keeps a growing sequence's reservation ahead of it (two tokens: a verified draft step). */
  private extendReservation(seq: Sequence): void {
    const len = seq.state!.length + 2;
    if (len <= seq.reservedTokens) return;
    const tokens = this.reservationTokens(seq, len);
    if (this.scheduler.grow(seq, this.stateBytesFor(tokens) - seq.reservedBytes)) {
      seq.reservedTokens = tokens;
    } else {
      seq.finish("insufficient_system_resource");
    }
  }

  private afterPrefill(seq: Sequence, n: number, final: boolean, out: ForwardOutput, start: number): void {
    if (seq.finished) return;
    seq.prefilled += n;
    if (this.cache && seq.req.useCache) seq.cacheAnchor = this.cache.insert(seq.state!, seq.req.promptTokens, seq.req.cacheSalt, seq.cacheAnchor);
    seq.prefillProgress();
    if (!final) return;
    const logits = out.logits[0]!;
    const token = seq.choose(logits);
    if (seq.req.speculative) {
      // MTP inputs for the prompt's last positions: (residual at i, token at i+1).
      const P = seq.promptLength;
      const first = Math.max(start, P - 1 - this.specWarmup);
      seq.mtpEntries = [];
      for (let pos = first; pos < P; pos++) {
        seq.mtpEntries.push({ pos, hidden: out.residual[pos - start]!, token: pos + 1 < P ? seq.req.promptTokens[pos + 1]! : token });
      }
    }
    seq.accept(token, logits);
  }

  private afterDecode(seq: Sequence, out: ForwardOutput, pos: number, draft: Draft | undefined, undo: TailUndo | undefined): void {
    if (seq.finished) return;
    if (!draft) {
      const logits = out.logits[0]!;
      const token = seq.choose(logits);
      if (seq.req.speculative) seq.mtpEntries.push({ pos, hidden: out.residual[0]!, token });
      seq.accept(token, logits);
      return;
    }
    seq.processLogits(out.logits[0]!);
    const v = verifyDraft(seq, draft, out.logits[0]!);
    if (!v.accepted) {
      // The draft's position was computed for nothing: take it back out of the state.
      seq.state!.dropTail(undo!);
      seq.mtpEntries.push({ pos, hidden: out.residual[0]!, token: v.token });
      seq.accept(v.token, out.logits[0]!);
      return;
    }
    seq.accepted++;
    seq.mtpEntries.push({ pos, hidden: out.residual[0]!, token: draft.token });
    if (seq.accept(draft.token, out.logits[0]!)) return;
    const next = seq.choose(out.logits[1]!);
    seq.mtpEntries.push({ pos: pos + 1, hidden: out.residual[1]!, token: next });
    seq.accept(next, out.logits[1]!);
  }
}
