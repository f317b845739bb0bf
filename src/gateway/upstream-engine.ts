/**
 * The engine interface (EngineApi) over token-in/token-out upstreams, so every route of
 * `dsv4 serve` runs unchanged in the gateway. A request is checked and encoded here by the
 * engine's own resolveRequest (the same encoder and validation as `dsv4 serve`), its prompt ids
 * go to a replica the router picks, and the ids that come back are fed to the engine's own
 * Sequence, which parses them (reasoning, DSML tool calls, stop strings) and counts usage
 * exactly as in `dsv4 serve`: the upstream never sees text.
 *
 * Failures: a replica that cannot be reached, answers 5xx/429, or drops the stream before the
 * first generated id is retried on another replica; nothing has reached the client then. Once
 * ids have been streamed the generation fails with an error the routes send as a clean SSE
 * error event (or a JSON error), since a stream cannot be resumed elsewhere.
 */
import { randomUUID } from "node:crypto";
import { defaultBlockTokens } from "../engine/engine.js";
import { EngineError } from "../engine/errors.js";
import { RequestMetrics } from "../engine/request-metrics.js";
import { createChatCompletions } from "../engine/openai.js";
import { resolveRequest, type ResolvedRequest } from "../engine/request.js";
import { Sequence, type SequenceEnv } from "../engine/sequence.js";
import { ChatSessionImpl } from "../engine/session.js";
import type {
  CacheFlush, ChatCompletions, ChatSession, ChatSessionOptions, EngineApi, EngineHealth, EngineMetrics, GenerateRequest, Generation, GenerationResult, ModelInfo, TokenizeOptions,
} from "../engine/types.js";
import { detokenizeIds, tokenizeText, tokenizerInfo, tokenPieces } from "../engine/tokenize.js";
import { loadConfig } from "../model/config.js";
import { checkpointReleaseAt, chooseEncoder, type Release } from "../text/release.js";
import { loadTokenizer, type Tokenizer } from "../text/tokenizer.js";
import { protocolFor, type Protocol, type TokenCall, type UpstreamFinish, type UpstreamKind } from "./protocols.js";
import { checkReplica, pollReplicas, Replica } from "./replicas.js";
import { Router, type Route } from "./router.js";
import { sseData } from "./sse-reader.js";
import { Cancel } from "./cancel.js";
import { UpstreamClient, type UpstreamResponse } from "./upstream-http.js";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface UpstreamEngineOptions {
  /** Base URLs of the replicas (http://host:port). */
  upstreams: string[];
  /** Default "dsv4". */
  kind?: UpstreamKind;
  /** A DeepSeek-V4 checkpoint directory: its tokenizer.json and config.json (weights are not read). */
  modelDir: string;
  /** Public model name (default deepseek-v4-flash). */
  modelName?: string;
  /** The `model` field vLLM expects (default: the first of its /v1/models). */
  upstreamModel?: string;
  /** Prompt encoder override (april | 0731); default the checkpoint's. */
  encoding?: Release;
  /** Context limit (default: the checkpoint's, or the smallest a dsv4 replica reports). */
  contextLength?: number;
  /** The upstream's prefix-cache unit in tokens (default: dsv4's block for this config). */
  blockTokens?: number;
  /** Health and metrics poll cadence (default 1000 ms). */
  healthIntervalMs?: number;
  /** Imbalance bound (router.ts). */
  imbalanceFactor?: number;
  imbalanceSlack?: number;
  /** Random source for power-of-two choices (tests). */
  random?: () => number;
}

/**
 * How long a finished generation's answer may take to end before its connection is cut: the
 * closing chunks follow the last id at once, but an upstream that generates on (a stop string
 * matched here) must be stopped.
 */
const RELEASE_GRACE_MS = 200;

/** An upstream answered with a client error: the request itself is at fault, no retry. */
class UpstreamRefusal extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null) {
    super(message);
  }
}

/** The replica failed (unreachable, 5xx, broken stream): retry elsewhere if nothing was sent. */
class ReplicaFailure extends Error {
  constructor(message: string, readonly down: boolean) {
    super(message);
  }
}

type Counters = Pick<EngineMetrics,
  "requests_total" | "requests_rejected_total" | "requests_cancelled_total" | "prompt_tokens_total" | "prompt_cache_hit_tokens_total" |
  "prompt_cache_miss_tokens_total" | "generated_tokens_total" | "reasoning_tokens_total">;

export class UpstreamEngine implements EngineApi {
  readonly chat: { completions: ChatCompletions };
  readonly router: Router;
  readonly protocol: Protocol;
  private readonly env: SequenceEnv;
  private readonly running = new Set<{ seq: Sequence; abort: Cancel }>();
  /** Latency as this gateway's clients see it (time to the upstream's first token, between its chunks, end to end), sizes, finish reasons. */
  private readonly requestMetrics = new RequestMetrics();
  private readonly counters: Counters = {
    requests_total: 0, requests_rejected_total: 0, requests_cancelled_total: 0, prompt_tokens_total: 0,
    prompt_cache_hit_tokens_total: 0, prompt_cache_miss_tokens_total: 0, generated_tokens_total: 0, reasoning_tokens_total: 0,
  };
  private stopPolling: () => void = () => undefined;
  private readonly http = new UpstreamClient();
  /**
   * Requests resolved by promptTokens(): the server reserves a request's budget from its prompt
   * length just before generate(), and the same request object is not encoded twice.
   */
  private readonly resolvedEarlier = new WeakMap<GenerateRequest, ResolvedRequest>();
  private disposed = false;

  private constructor(
    readonly model: ModelInfo,
    private readonly tokenizer: Tokenizer,
    readonly replicas: readonly Replica[],
    readonly kind: UpstreamKind,
    private upstreamModel: string,
    blockTokens: number,
    opts: UpstreamEngineOptions,
  ) {
    this.protocol = protocolFor(kind);
    this.router = new Router(replicas, { blockTokens, imbalanceFactor: opts.imbalanceFactor, imbalanceSlack: opts.imbalanceSlack, random: opts.random });
    this.env = { tokenizer, eosId: tokenizer.specialIds.eos, thinkEndId: tokenizer.specialIds.thinkEnd };
    this.chat = { completions: createChatCompletions(this) };
  }

  /** Reads the tokenizer and config, checks every replica once, and starts polling them. */
  static async load(opts: UpstreamEngineOptions): Promise<UpstreamEngine> {
    if (opts.upstreams.length === 0) throw new Error("the gateway needs at least one upstream URL");
    const kind = opts.kind ?? "dsv4";
    const cfg = loadConfig(opts.modelDir);
    const tokenizer = await loadTokenizer(opts.modelDir);
    const encoder = chooseEncoder(checkpointReleaseAt(opts.modelDir), opts.encoding);
    const replicas = opts.upstreams.map((u) => new Replica(u.replace(/\/+$/, "")));
    const protocol = protocolFor(kind);
    await Promise.all(replicas.map((r) => checkReplica(r, { protocol, timeoutMs: 2000 })));
    const contextLength = Math.min(opts.contextLength ?? cfg.maxPositions, cfg.maxPositions, kind === "dsv4" ? await dsv4Context(replicas) : Infinity);
    const digest = createHash("sha256").update(readFileSync(join(opts.modelDir, "config.json"))).update(readFileSync(join(opts.modelDir, "tokenizer.json"))).digest("hex");
    const model: ModelInfo = {
      name: opts.modelName ?? "deepseek-v4-flash",
      identity: `gateway-${digest}`,
      systemFingerprint: `fp_${digest.slice(0, 10)}_dsv4`,
      dir: opts.modelDir,
      backend: `gateway:${kind}`,
      contextLength,
      vocabSize: cfg.vocabSize,
      hasMtp: false,
      drafter: null,
      release: encoder.release,
      encoding: encoder.encoding,
      layers: cfg.layers.length,
      hiddenSize: cfg.dim,
    };
    const upstreamModel = opts.upstreamModel ?? (kind === "vllm" ? await vllmModel(replicas) : model.name);
    const engine = new UpstreamEngine(model, tokenizer, replicas, kind, upstreamModel, opts.blockTokens ?? defaultBlockTokens(cfg), opts);
    engine.stopPolling = pollReplicas(replicas, { protocol, intervalMs: opts.healthIntervalMs ?? 1000, timeoutMs: 2000 });
    return engine;
  }

  private resolve(request: GenerateRequest): ResolvedRequest {
    return resolveRequest(request, {
      tokenizer: this.tokenizer,
      contextLength: this.model.contextLength,
      vocabSize: this.model.vocabSize,
      speculativeDefault: false,
      canSpeculate: false,
      encoding: this.model.encoding,
      // The replicas schedule: dsv4 and vLLM ones take the priority (and refuse it unless they
      // run priority scheduling); SGLang's polarity is a server flag the gateway cannot see.
      priorityScheduling: this.kind !== "sglang",
      noPriorityReason: "SGLang upstreams order priorities by a server flag (--schedule-low-priority-values-first) the gateway cannot see, so it does not forward them",
    });
  }

  promptTokens(request: GenerateRequest): number[] {
    const resolved = this.resolve(request);
    this.resolvedEarlier.set(request, resolved);
    return resolved.promptTokens;
  }

  /**
   * Every replica's prefix cache flushed, as SGLang's router broadcasts /flush_cache to its
   * workers (vLLM's replicas: POST /reset_prefix_cache, which vLLM serves in its dev mode).
   * Flushed only when every replica says so; otherwise the reason names each one that did not.
   */
  async flushCache(): Promise<CacheFlush> {
    const path = this.kind === "vllm" ? "/reset_prefix_cache" : "/flush_cache";
    const answers = await Promise.all(
      this.replicas.map(async (r): Promise<{ entries: number } | { error: string }> => {
        try {
          const res = await fetch(`${r.url}${path}`, { method: "POST", signal: AbortSignal.timeout(10_000) });
          const text = await res.text();
          if (!res.ok) return { error: `${r.url}: ${res.status} ${errorBody(text).message}` };
          let entries: unknown;
          try {
            entries = (JSON.parse(text) as { entries?: unknown }).entries;
          } catch {
            // SGLang answers in plain text; only dsv4 reports the entries it dropped.
          }
          return { entries: typeof entries === "number" ? entries : 0 };
        } catch (e) {
          return { error: `${r.url}: ${causeOf(e)}` };
        }
      }),
    );
    const failed = answers.flatMap((a) => ("error" in a ? [a.error] : []));
    if (failed.length > 0) return { flushed: false, reason: `${answers.length - failed.length} of ${answers.length} replicas flushed; not ${failed.join("; ")}` };
    return { flushed: true, entries: answers.reduce((n, a) => n + ("entries" in a ? a.entries : 0), 0) };
  }

  /** Healthy while some replica is: a request can then be routed. */
  health(): EngineHealth {
    if (this.replicas.some((r) => r.healthy)) return { ok: true, reason: null };
    return { ok: false, reason: `no upstream replica is healthy (${this.replicas.map((r) => `${r.url}: ${r.lastError ?? "down"}`).join("; ")})` };
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

  generate(request: GenerateRequest): Generation {
    let r: ResolvedRequest;
    try {
      if (this.disposed) throw new EngineError("disposed", "the gateway is shutting down");
      if (request.signal?.aborted) throw new EngineError("aborted", "the request was aborted before it started");
      r = this.resolvedEarlier.get(request) ?? this.resolve(request);
      this.resolvedEarlier.delete(request);
      if (r.promptLogprobs !== null) {
        // Replicas answer with token ids and their own sampled tokens' logprobs only.
        throw new EngineError("invalid_request", "prompt_logprobs: prompt logprobs (echo with logprobs on /v1/completions) are not available through dsv4 gateway; ask a replica directly", { param: "prompt_logprobs" });
      }
      if (this.kind !== "dsv4" && (r.constraint !== null || r.reasoningBudget !== null)) {
        const param = r.reasoningBudget !== null ? "reasoning_budget" : request.response_format?.type === "json_object" ? "response_format" : "tool_choice";
        throw new EngineError("invalid_request", `${param}: enforcing it needs constrained decoding, which the gateway only gets from dsv4 upstreams (this one is ${this.kind})`, { param });
      }
    } catch (e) {
      this.counters.requests_rejected_total++;
      throw e;
    }
    this.counters.requests_total++;
    const seq = new Sequence(request.id ?? randomUUID(), r, this.env);
    const entry = { seq, abort: new Cancel() };
    this.running.add(entry);
    const cancel = (error = new EngineError("aborted", "the request was cancelled")) => {
      if (seq.finished) return;
      this.counters.requests_cancelled_total++;
      entry.abort.abort();
      seq.fail(error);
    };
    const signal = request.signal;
    const onAbort = () => cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    void seq.done.then((res) => {
      this.requestMetrics.completed(seq);
      this.count(res);
    }, () => undefined).finally(() => {
      signal?.removeEventListener("abort", onAbort);
      this.running.delete(entry);
    });
    const served: { upstream: string | null } = { upstream: null };
    void this.dispatch(seq, r, request, entry.abort, served);
    const generation: Generation & { readonly upstream: string | null } = {
      id: seq.id,
      /** The replica serving (or last tried for) this generation, for the ledger's row. */
      get upstream() {
        return served.upstream;
      },
      [Symbol.asyncIterator]: () => seq.events[Symbol.asyncIterator](),
      result: () => seq.done,
      cancel: () => cancel(),
      [Symbol.asyncDispose]: async () => {
        cancel();
        await seq.done.catch(() => undefined);
      },
    };
    return generation;
  }

  private count(res: GenerationResult): void {
    const c = this.counters;
    const u = res.usage;
    c.prompt_tokens_total += u.prompt_tokens;
    c.prompt_cache_hit_tokens_total += u.prompt_cache_hit_tokens;
    c.prompt_cache_miss_tokens_total += u.prompt_cache_miss_tokens;
    c.generated_tokens_total += u.completion_tokens;
    c.reasoning_tokens_total += u.completion_tokens_details.reasoning_tokens;
  }

  private call(seq: Sequence, r: ResolvedRequest, request: GenerateRequest): TokenCall {
    return {
      id: seq.id,
      promptIds: r.promptTokens,
      maxTokens: r.maxTokens,
      temperature: r.sampling.temperature,
      topP: r.sampling.topP,
      topK: r.sampling.topK,
      minP: r.sampling.minP,
      seed: r.seed,
      cacheSalt: r.cacheSalt,
      minTokens: r.minTokens,
      priority: r.priority,
      chat: {
        thinking: r.thinkingMode === "thinking",
        startsInReasoning: r.startsInReasoning,
        tools: request.tools ?? null,
        toolChoice: request.tool_choice ?? null,
        responseFormat: request.response_format ?? null,
        reasoningBudget: r.reasoningBudget,
      },
    };
  }

  /** Routes and streams one generation, retrying on other replicas until an id was accepted. */
  private async dispatch(seq: Sequence, r: ResolvedRequest, request: GenerateRequest, signal: Cancel, served: { upstream: string | null }): Promise<void> {
    const call = this.call(seq, r, request);
    const tried = new Set<Replica>();
    const failures: string[] = [];
    for (;;) {
      if (seq.finished) return;
      const route = this.router.route(r.promptTokens, r.cacheSalt, tried);
      if (!route) {
        const why = failures.length > 0 ? failures.join("; ") : this.replicas.map((x) => `${x.url}: ${x.lastError ?? "down"}`).join("; ");
        seq.fail(new EngineError("overloaded", `no upstream replica could take the request (${why}); retry later`));
        return;
      }
      tried.add(route.replica);
      served.upstream = route.replica.url;
      try {
        await this.stream(route, call, seq, signal);
        return;
      } catch (err) {
        if (seq.finished || signal.aborted) return;
        if (err instanceof UpstreamRefusal) {
          seq.fail(new EngineError(err.status === 429 ? "overloaded" : "invalid_request", err.message, { param: err.param }));
          return;
        }
        const message = err instanceof ReplicaFailure ? err.message : `${(err as Error).message}`;
        const down = !(err instanceof ReplicaFailure) || err.down;
        if (down) route.replica.markDown(message);
        failures.push(`${route.replica.url}: ${message}`);
        if (seq.generated.length > 0) {
          seq.fail(new EngineError("overloaded", `upstream replica ${route.replica.url} failed after ${seq.generated.length} generated tokens (${message}); a started stream cannot move to another replica, retry the request`));
          return;
        }
      }
    }
  }

  private async stream(route: Route, call: TokenCall, seq: Sequence, signal: Cancel): Promise<void> {
    const replica = route.replica;
    const attempt = new Cancel();
    const unlisten = signal.onAbort(() => attempt.abort());
    replica.inFlight++;
    replica.dispatched++;
    let res: UpstreamResponse | undefined;
    // Set on every clean end: the connection is then kept (released), else cut.
    let clean = false;
    try {
      try {
        res = await this.http.postJson(`${replica.url}${this.protocol.path}`, JSON.stringify(this.protocol.body(call, true, this.upstreamModel)), { accept: "text/event-stream" }, attempt);
      } catch (err) {
        throw new ReplicaFailure(`cannot reach it (${causeOf(err)})`, true);
      }
      if (!res.ok) await refuse(res);
      seq.markStarted();
      seq.events.push({ type: "queued", position: 0 });
      const state = { seen: 0 };
      let finish: UpstreamFinish | null = null;
      let held: number[] = [];
      try {
        for await (const data of sseData(res.body!)) {
          if (data === "[DONE]") break;
          let json: unknown;
          try {
            json = JSON.parse(data);
          } catch {
            throw new ReplicaFailure(`sent a chunk that is not JSON: ${data.slice(0, 80)}`, false);
          }
          const chunk = this.protocol.chunk(json, state);
          if (chunk.cachedTokens !== undefined) seq.cachedTokens = Math.min(chunk.cachedTokens, seq.promptLength);
          if (chunk.engineMs !== undefined) seq.reportedEngineMs = chunk.engineMs;
          if (chunk.finish) finish = chunk.finish;
          // vLLM reports usage after the last ids: hold them until the counts are in, so the finish carries them.
          if (finish && chunk.cachedTokens === undefined) {
            held.push(...chunk.ids);
            continue;
          }
          for (const id of [...held, ...chunk.ids]) {
            if (seq.accept(id, null)) {
              clean = true;
              return;
            }
          }
          held = [];
          this.requestMetrics.afterStep(seq);
        }
      } catch (err) {
        if (err instanceof ReplicaFailure || signal.aborted) throw err;
        throw new ReplicaFailure(`the stream broke (${causeOf(err)})`, true);
      }
      clean = true;
      for (const id of held) if (seq.accept(id, null)) return;
      if (!finish) throw new ReplicaFailure("the stream ended without a finish reason", true);
      if (finish.reason === "abort") throw new ReplicaFailure(`it aborted the request: ${finish.message}`, false);
      seq.finish(finish.reason);
    } catch (err) {
      clean = false;
      throw err;
    } finally {
      replica.inFlight--;
      unlisten();
      if (clean && res && !signal.aborted) res.release(RELEASE_GRACE_MS);
      else attempt.abort();
    }
  }

  createSession(options: ChatSessionOptions = {}): ChatSession {
    return new ChatSessionImpl(this, options);
  }

  stateBytesFor(): number {
    return 0;
  }

  metrics(): EngineMetrics {
    return {
      ...this.counters,
      speculative_drafted_total: 0,
      speculative_accepted_total: 0,
      speculative_accepted_per_step: [],
      steps_total: 0,
      preemptions_total: 0,
      active_sequences: this.running.size,
      reader_blocked_sequences: 0,
      queued_requests: 0,
      state_bytes_in_use: 0,
      prefix_cache_entries: 0,
      prefix_cache_bytes: 0,
      prefix_cache_disk_entries: 0,
      latency: this.requestMetrics.latencySnapshot(),
      requests: this.requestMetrics.statsSnapshot(),
    };
  }

  /**
   * Ends every generation in flight with `error` and cancels its upstream request (the
   * shutdown drain's end, src/cli/shutdown.ts); returns how many there were.
   */
  stopAll(error: EngineError): number {
    let stopped = 0;
    for (const { seq, abort } of [...this.running]) {
      if (seq.finished) continue;
      this.counters.requests_cancelled_total++;
      abort.abort();
      seq.fail(error);
      stopped++;
    }
    return stopped;
  }

  /** Stops polling and cancels what still runs (the server drains its requests before this). */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.stopPolling();
    for (const { seq, abort } of [...this.running]) {
      abort.abort();
      seq.fail(new EngineError("disposed", "the gateway is shutting down"));
    }
    await this.http.close();
  }
}

function causeOf(err: unknown): string {
  const e = err as Error & { cause?: Error & { code?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** An upstream error body's message and param: the error envelope's, else the text itself (SGLang answers some errors in plain text). */
function errorBody(text: string): { message: string; param: string | null } {
  let message = text.slice(0, 500);
  let param: string | null = null;
  try {
    const json = JSON.parse(text);
    const e = json.error ?? json;
    if (typeof e.message === "string") message = e.message;
    if (typeof e.param === "string") param = e.param;
  } catch {
    // Not JSON: keep the text.
  }
  return { message, param };
}

/** A non-2xx answer: a client error is the request's fault (no retry), anything else the replica's. */
async function refuse(res: UpstreamResponse): Promise<never> {
  const { message, param } = errorBody(await res.text().catch(() => ""));
  if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw new UpstreamRefusal(res.status, message, param);
  throw new ReplicaFailure(`answered ${res.status}: ${message}`, false);
}

/** The smallest context length the reachable dsv4 replicas report in /health. */
async function dsv4Context(replicas: readonly Replica[]): Promise<number> {
  let least = Infinity;
  for (const r of replicas) {
    try {
      const res = await fetch(`${r.url}/health`, { signal: AbortSignal.timeout(2000) });
      const json = (await res.json()) as { context_length?: unknown };
      if (typeof json.context_length === "number") least = Math.min(least, json.context_length);
    } catch {
      // Down now; the health poll brings it back later.
    }
  }
  return least;
}

/** vLLM's served model name, from the first replica that answers /v1/models. */
async function vllmModel(replicas: readonly Replica[]): Promise<string> {
  for (const r of replicas) {
    try {
      const res = await fetch(`${r.url}/v1/models`, { signal: AbortSignal.timeout(2000) });
      const json = (await res.json()) as { data?: Array<{ id?: unknown }> };
      const id = json.data?.[0]?.id;
      if (typeof id === "string") return id;
    } catch {
      // Try the next one.
    }
  }
  throw new Error(`no vLLM upstream answered /v1/models (${replicas.map((r) => r.url).join(", ")}); pass --upstream-model NAME`);
}
