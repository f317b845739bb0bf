/**
 * Public types of the engine: what a Node application (and the HTTP server)
 * codes against. The lifecycle follows node-llama-cpp (load a model with
 * progress → Engine → generations / chat sessions → dispose), and the wire
 * shapes (usage, logprobs, completion objects) are the DeepSeek/OpenAI ones so
 * the server can forward them without translation.
 */
import type { HistogramSnapshot } from "./histogram.js";
import type { LatencySnapshot, RequestStatsSnapshot } from "./request-metrics.js";
import type { PrefetchMode } from "../model/prefetch.js";
import type { ChatMessage, ToolDefinition } from "../text/messages.js";
import type { Release } from "../text/release.js";
import type { FinishReason, OutputDelta, ParsedOutput, ParsedToolCall } from "../text/parser.js";

export type { ChatMessage, ToolDefinition, FinishReason, OutputDelta, ParsedOutput, ParsedToolCall };

// ───────────────────────────── loading ─────────────────────────────

export interface LoadProgress {
  /**
   * "identity": hashing checkpoint shards not hashed before (every byte, once; minutes for a
   * full checkpoint the first time, a stat per shard after that).
   */
  phase: "config" | "identity" | "tokenizer" | "weights" | "prefetch" | "repack" | "prefix-cache" | "ready";
  /** Units done / total in this phase (bytes for identity and weights, entries for the cache). */
  loaded: number;
  total: number;
  message?: string;
}

export interface PrefixCacheOptions {
  /** Default true. */
  enabled?: boolean;
  /** Snapshot granularity in tokens (default 64): a hit reuses a multiple of this. */
  blockTokens?: number;
  /** LRU budget for in-memory snapshots (default 1 GiB). */
  memoryBytes?: number;
  /**
   * Persist snapshots here (`--cache-dir`); reloaded on start, only for the same model identity
   * and precision. The model's shard digests are remembered here too (shard-digests.json).
   */
  dir?: string;
  /** Budget for the on-disk cache (default 8 GiB); oldest files are removed beyond it. */
  diskBytes?: number;
  /**
   * System prompts declared shareable across tenants (`--shared-prefix FILE`). When a chat
   * request's prompt starts with one rendered as its first (system) message, the cache blocks
   * that lie wholly inside it are shared by every tenant and user_id; later blocks stay
   * isolated. Only declare text that is no secret: any tenant can tell it was cached.
   */
  sharedPrefixes?: string[];
}

/**
 * Speculative decoding: "auto" (default) drafts with the checkpoint's drafter (DSpark or MTP)
 * where its cost model says it pays, "mtp" / "dspark" always draft with that one (an error
 * when the checkpoint lacks it), "off" never drafts. Output is the main model's either way.
 */
export type SpeculativeMode = "auto" | "dspark" | "mtp" | "off";

export interface SpeculativeOptions {
  /** Default "auto". */
  mode?: SpeculativeMode;
  /** Legacy switch: false is mode "off", true is mode "auto". */
  enabled?: boolean;
  /**
   * Verify exactly this many drafts per step (benchmarks and tests), instead of the cost
   * model's choice; capped by the drafter (DSpark: its block size) and the window.
   */
  drafts?: number;
  /** Most drafts one MTP chain proposes (default 4; DSpark's block size is the checkpoint's). */
  maxMtpDrafts?: number;
  /**
   * MTP positions replayed before the first draft after a prefill (default 8, at most
   * window − 1): the MTP block attends over its own sliding window, so a warmer window
   * drafts better. They are replayed in one batched MTP pass with the first draft. A prompt
   * gives them only when a draft is near; otherwise the decode steps before the next draft
   * collect them.
   */
  warmupTokens?: number;
  /**
   * Replaces the drafter's proposal with up to `k` tokens (analysis, tests, benchmarks: e.g. an
   * oracle drafter proposing the main model's own continuation cut at a chosen length, to
   * measure verification at a forced acceptance). `proposed` holds the drafter's tokens.
   * Output stays exact whatever it returns.
   */
  draftOverride?: (ctx: { generated: readonly number[]; pending: number; proposed: readonly number[]; k: number }) => readonly number[];
  /** With draftOverride: skip the model's drafter (`proposed` is empty), to time verification alone. */
  overrideOnly?: boolean;
  /**
   * Drafts propose only the `draftVocab` lowest token ids (BPE merge order, so the most
   * frequent merges first) and the tokenizer's added tokens: the draft's head and DSpark's
   * Markov bias then read that share of their rows (on V4-Flash a full draft head pass reads
   * 1.06 GB). Output does not change; acceptance falls wherever the text needs a token
   * outside. Default: the whole vocabulary.
   */
  draftVocab?: number;
  /**
   * auto's prior for a draft's cost, in one-sequence decode steps, until it has timed one.
   * Default: the weight bytes a draft reads over a step's, from the config; null: no prior
   * (auto's first decode step drafts, to measure).
   */
  priorDraftSteps?: number | null;
}

/**
 * Test hook: sees (and may overwrite in place) the logits of every position a
 * sequence samples from, before constraints, sampling and logprobs read them.
 * Meant for deterministic tests with random-weight models (e.g. forcing a
 * token script); not part of the serving API. The array is valid during the
 * call only (its buffer goes back to the runner thread after the step): copy
 * what you keep.
 */
export type LogitsProcessor = (ctx: { id: string; generated: readonly number[]; logits: Float32Array | Float64Array }) => void;

export type SchedulingPolicy = "fcfs" | "priority";

export interface EngineOptions {
  /** max_tokens of a request that sets none (default 32,768: DEFAULT_MAX_TOKENS); never more than the context leaves. */
  defaultMaxTokens?: number;
  /** Kernel backend name ("ref", "native", …); default: the best available. */
  backend?: string;
  /**
   * Touch every page of the mapped weights at load so no step stalls on the first use of an
   * expert or the drafter (model/prefetch.ts): "auto" (default) when the checkpoint fits in
   * available memory with 2 GiB to spare, "on", "off".
   */
  prefetch?: PrefetchMode;
  /**
   * Lock the mapped weights in memory after the prefetch (mlock, llama.cpp's --mlock): no step
   * then waits for the disk on an expert the kernel paged out while it was unused. Needs the
   * locked-memory limit (ulimit -l) to cover the checkpoint; loading fails naming it otherwise.
   * Default false.
   */
  mlock?: boolean;
  /**
   * Copy the routed experts at load into the layout the backend's kernels stream fastest
   * (Dsv4Model LoadOptions.repack: FP4 tiles on AVX-512, the same results bit for bit) when the
   * checkpoint fits in memory, letting their mapped pages go; false reads every weight in
   * place. Default true.
   */
  repack?: boolean;
  /** Public model name used in responses (default "deepseek-v4-flash"). */
  modelName?: string;
  /** Sequences decoded together in one step (default 16). */
  maxConcurrentSequences?: number;
  /**
   * Who runs first (vLLM's --scheduling-policy): "fcfs" (default) in arrival order; "priority"
   * by each request's `priority` (lower first, then arrival), where a waiting request also
   * preempts running ones of a lower priority when that makes room for it (they resume later,
   * mostly from the prefix cache, with the same output).
   */
  schedulingPolicy?: SchedulingPolicy;
  /** Requests waiting for a slot beyond the running ones (default 64); more → EngineError "overloaded". */
  maxQueuedRequests?: number;
  /** Budget for the state of all running sequences, in bytes (default: 50% of system memory). */
  stateMemoryBytes?: number;
  /**
   * State is reserved for the prompt plus this many tokens (default 4096, capped by
   * max_tokens) and extended in such steps as a sequence grows; a sequence that cannot
   * extend preempts the newest running sequences (recomputed later, mostly from the prefix
   * cache). Infinity reserves prompt + max_tokens up front, so nothing is ever preempted.
   */
  reserveTokens?: number;
  /** Cap on one sequence's prompt tokens per step (default: none beyond maxBatchTokens and the latency budget). */
  prefillChunkTokens?: number;
  /** Cap on the tokens of one step across all sequences (default 2048). */
  maxBatchTokens?: number;
  /**
   * While sequences are decoding, a step that also prefills a prompt may take at most this
   * many times as long as a decode-only step (default 1.5): the prompt's chunks are sized from
   * measured step times so running streams keep their pace.
   */
  prefillLatencyFactor?: number;
  /**
   * Where the model computes: "worker" (default) runs it on its own thread so the event loop
   * stays free during a step; "inline" runs it on the calling thread (debugging, profiling).
   */
  runner?: "worker" | "inline";
  /**
   * A caller that iterates a generation's events and lets this many pile up unread pauses
   * that sequence (default 256): it keeps its slot and state but is not stepped until the
   * caller has read half of them, so a slow reader slows only itself. Callers that only
   * await result() never pause.
   */
  readerHighWaterEvents?: number;
  /**
   * A paused sequence whose caller takes no event for this long is cancelled with
   * EngineError "reader_timeout" and its slot freed (default 60_000 ms; Infinity: never).
   * A reader that is slow but still reading is not cancelled.
   */
  readerTimeoutMs?: number;
  /**
   * Where the full-content digests of the checkpoint's shards are remembered, so the model
   * identity is computed from every byte without re-reading the checkpoint at each load.
   * Default: `<prefixCache.dir>/shard-digests.json`, else `<dsv4 home>/shard-digests.json`
   * ($DSV4_HOME, else ~/.cache/dsv4). null: remember nothing, hash every shard at each load.
   */
  shardDigestsFile?: string | null;
  /** Default context limit for requests (default and maximum: the model's maxPositions). */
  contextLength?: number;
  prefixCache?: PrefixCacheOptions;
  /**
   * Which prompt encoder renders chat messages: "april" or "0731" (spec api.md §0, §B.2; they
   * differ in the reasoning-effort texts). Default: the checkpoint's own, from its config
   * (`dspark_*` keys → 0731). Request `reasoning_effort` values map per the encoder in use.
   */
  encoding?: Release;
  /** A mode, or the options (see SpeculativeOptions). */
  speculative?: SpeculativeMode | SpeculativeOptions;
  /** Test hook, see LogitsProcessor. */
  logitsProcessor?: LogitsProcessor;
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
}

export interface ModelInfo {
  /** Public name (EngineOptions.modelName). */
  name: string;
  /**
   * Hex digest of config.json, the shard index and every byte of every shard (identity.ts).
   * The prefix cache is keyed by this plus the backend's precision (cacheIdentity).
   */
  identity: string;
  /** Short fingerprint for responses (`fp_<10 hex>_dsv4`). */
  systemFingerprint: string;
  dir: string;
  backend: string;
  /** Maximum sequence length accepted (prompt + completion). */
  contextLength: number;
  vocabSize: number;
  /** True when the checkpoint has an MTP block (speculative decoding available). */
  hasMtp: boolean;
  /** The drafter speculative decoding uses (EngineOptions.speculative), null when it is off or the checkpoint has none. */
  drafter: "mtp" | "dspark" | null;
  /** The token ids drafts may propose, when a draft vocabulary (SpeculativeOptions.draftVocab) restricts them. */
  draftVocab?: number;
  /** The checkpoint's release, from its config (`dspark_*` keys → "0731"). */
  release: Release;
  /** The prompt encoder in use: the release's own unless EngineOptions.encoding says otherwise. */
  encoding: Release;
  layers: number;
  hiddenSize: number;
}

// ───────────────────────────── requests ─────────────────────────────

export interface SamplingOptions {
  /** Default 1.0 (model card); 0 → greedy. */
  temperature?: number | null;
  /** Default 1.0. */
  top_p?: number | null;
  /** 0 or absent: off. */
  top_k?: number | null;
  /** 0 or absent: off. Keep tokens with p ≥ min_p · p_max. */
  min_p?: number | null;
  /** Same seed + same request → same output. */
  seed?: number | null;
  /** Reasoning tokens count against it. Default: EngineOptions.defaultMaxTokens (32,768), or what is left of the context if less. */
  max_tokens?: number | null;
  /**
   * vLLM's: end of sentence cannot be chosen before this many tokens (its logit is masked, as
   * vLLM's min_tokens does); stop strings still end the output. Default 0, at most max_tokens.
   */
  min_tokens?: number | null;
  /**
   * vLLM's and llama.cpp's: end of sentence never ends the output, so it runs to max_tokens
   * (benchmark clients' fixed output lengths). Done as min_tokens = max_tokens: the token is
   * masked rather than emitted and skipped.
   */
  ignore_eos?: boolean | null;
  /** Up to 16 strings; matched on content across token boundaries, never included in the output. */
  stop?: string | string[] | null;
  /**
   * vLLM's stop_token_ids: generating one of these ends the answer (finish_reason "stop"), its
   * text kept (special tokens show none). Masked until min_tokens, as vLLM does.
   */
  stop_token_ids?: number[] | null;
  /** vLLM's include_stop_str_in_output: the answer ends with the stop string that ended it. */
  include_stop_str_in_output?: boolean | null;
  /** Report the chosen token's logprob. */
  logprobs?: boolean | null;
  /** 0–20 alternatives per position (needs logprobs). */
  top_logprobs?: number | null;
  /**
   * vLLM's prompt_logprobs: the logprob of every prompt token after the ones before it, with
   * this many (0–20) most likely alternatives; the first token has none (null). Such a request
   * computes the head at every prompt position and takes nothing from the prefix cache.
   * Reported on the last prefill event, the finish event and the result.
   */
  prompt_logprobs?: number | null;
}

export type ThinkingSetting = boolean | { type: "enabled" | "disabled" } | null;

/** The prompt is exactly one of: chat messages, raw token ids, or a FIM prompt/suffix. */
export interface GenerateRequest extends SamplingOptions {
  messages?: ChatMessage[];
  /**
   * With messages: end the prompt with the cue that opens the assistant's answer (default
   * true). False stops after the last message (HF/vLLM's add_generation_prompt), for counting
   * or inspecting a conversation.
   */
  add_generation_prompt?: boolean;
  /**
   * Scheduling priority under EngineOptions.schedulingPolicy "priority" (vLLM's field): lower
   * runs first; default 0, may be negative. Under "fcfs" anything but 0 is an invalid_request.
   */
  priority?: number;
  tools?: ToolDefinition[] | null;
  /**
   * Enforced while decoding (spec §C.7; src/engine/constraints/tool-call.ts). "auto" (default):
   * the model decides; with `strict: true` tools a call it starts follows the tools' schemas.
   * "none": tools stay in the prompt but no tool-call block can be written.
   * "required" / {type:"function",function:{name}}: the answer starts with one DSML call at once
   * (after the reasoning, which gets at most half of what max_tokens leaves after the shortest
   * call), its parameters decoded under the tool's JSON Schema; a max_tokens below the shortest
   * valid call is an invalid_request naming max_tokens. Forced tokens are completion tokens like
   * any other. A name not in `tools` is an invalid_request.
   */
  tool_choice?: "none" | "auto" | "required" | { type: "function"; function: { name: string } } | null;
  /**
   * "json_object": the content (after any reasoning) is constrained to one JSON object and
   * generation ends with its closing brace; max_tokens permitting, it always parses. Not
   * combinable with a required/named tool_choice. Constrained requests do not speculate.
   * Logprobs stay those of the model's raw distribution (before the mask, like the other filters).
   */
  response_format?:
    | { type: "text" | "json_object" }
    /** OpenAI's structured outputs: the content is a JSON value the schema admits (constraints/json-schema.ts). */
    | { type: "json_schema"; json_schema: { name?: string; schema?: unknown; strict?: boolean | null; description?: string } }
    | null;
  /** Raw prompt ids (no template applied); output parsed as content unless prompt_tokens_mode says otherwise. */
  prompt_tokens?: number[];
  /**
   * With prompt_tokens: the ids are a rendered chat prompt of this mode (a gateway encoded it,
   * src/gateway/), so the output is parsed, budgeted and constrained (tool_choice,
   * response_format, reasoning_budget) as the chat request's would be. Default: plain content.
   */
  prompt_tokens_mode?: { thinking: boolean; starts_in_reasoning?: boolean } | null;
  /** FIM (/beta/completions): non-thinking. */
  fim?: { prompt: string; suffix?: string | null };
  /** Default enabled (spec §B.1). Ignored for prompt_tokens/fim. */
  thinking?: ThinkingSetting;
  /**
   * "minimal" | "low" | "medium" | "high" | "xhigh" | "max" | "ultra", rendered per the encoder in use
   * (spec §B.2; text/effort.ts EFFORT_TABLE); anything else is an invalid_request.
   */
  reasoning_effort?: string | null;
  /**
   * Cap on reasoning tokens: when reached the engine emits `</think>` itself and
   * lets the model answer. Null/absent: unbounded (max_tokens still applies).
   */
  reasoning_budget?: number | null;
  /** Speculative decoding for this request (default: on unless EngineOptions.speculative is "off"). */
  speculative?: boolean | null;
  /** Isolates prefix-cache entries (spec §A.2 user_id): different ids never share cache. */
  user_id?: string | null;
  /**
   * Whose request this is, for prefix-cache isolation: an opaque, stable id of the account (the
   * server derives it from the API key by hashing; never put a secret here). Requests of
   * different tenants never share cache entries, whatever their user_id, except the blocks of a
   * shared prefix (PrefixCacheOptions.sharedPrefixes). Default "": every request without a
   * tenant is one tenant (a server without API keys).
   */
  tenant?: string;
  /** Use the prefix cache (default true). */
  cache?: boolean;
  /** Cancels: the sequence is freed and the generation finishes with EngineError "aborted". */
  signal?: AbortSignal;
  /** Caller's id, echoed in results (default: a UUID). */
  id?: string;
}

// ───────────────────────────── events ─────────────────────────────

export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
}

export interface TokenLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

/** Which part of the output a token belongs to, for the split logprobs of spec §A.5. */
export type TokenPhase = "reasoning" | "content" | "tool_calls";

export interface EngineUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_cache_hit_tokens: number;
  prompt_cache_miss_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

export interface GenerationStats {
  queueMs: number;
  /** From start to the first generated token. */
  ttftMs: number;
  prefillMs: number;
  decodeMs: number;
  /** Generated tokens per second after the first. */
  decodeTokensPerSecond: number;
  /**
   * The engine's whole time on the request (queue, prefill and decode). Through the gateway: the
   * time the replica reported for it (SGLang's and dsv4's meta_info.e2e_latency), else the time
   * from dispatch to the last id. Answers carry it as `Server-Timing: engine;dur=…`.
   */
  engineMs: number;
  speculative: { enabled: boolean; drafted: number; accepted: number; acceptanceRate: number };
  /** Sequence state bytes at the end. */
  stateBytes: number;
  /** True when the reasoning budget forced `</think>`. */
  reasoningBudgetHit: boolean;
}

export type GenerationEvent =
  /** Waiting for a slot; `position` 0 = next. The server can send keep-alives on these. */
  | { type: "queued"; position: number }
  /** Prompt progress; emitted after each prefill chunk (keep-alive material for long prompts). */
  | { type: "prefill"; processed: number; total: number; cached: number; /** On the last one, with GenerateRequest.prompt_logprobs. */ prompt_logprobs?: Array<TokenLogprob | null> }
  /** One generated token (before stop-string trimming; text is its raw decoded piece). */
  | { type: "token"; id: number; text: string; phase: TokenPhase; logprob?: TokenLogprob }
  /** Parser deltas: reasoning / content / tool_call / tool_arguments. */
  | OutputDelta
  /** Emitted once, just before finish. */
  | { type: "usage"; usage: EngineUsage }
  | {
      type: "finish";
      finish_reason: FinishReason;
      message: ParsedOutput;
      usage: EngineUsage;
      /** Per-token logprobs split as in spec §A.5, when requested. */
      logprobs: { content: TokenLogprob[] | null; reasoning_content: TokenLogprob[] | null } | null;
      stats: GenerationStats;
      /** With GenerateRequest.prompt_logprobs: one per prompt token, the first null. */
      prompt_logprobs?: Array<TokenLogprob | null>;
    };

export type FinishEvent = Extract<GenerationEvent, { type: "finish" }>;

export interface GenerationResult {
  id: string;
  finish_reason: FinishReason;
  message: ParsedOutput;
  usage: EngineUsage;
  logprobs: FinishEvent["logprobs"];
  stats: GenerationStats;
  /** Generated token ids (including a forced `</think>`; excluding EOS). */
  tokens: number[];
  /** With GenerateRequest.prompt_logprobs: one per prompt token, the first null. */
  prompt_logprobs?: Array<TokenLogprob | null>;
}

/**
 * A running generation: iterate its events (single consumer), or await
 * `result()`. Errors (EngineError) are thrown from the iterator / result.
 * `result()` takes no events, so it may also be awaited while iterating
 * (the server does, to hang up on a client cancelled for not reading).
 */
export interface Generation extends AsyncIterable<GenerationEvent> {
  readonly id: string;
  result(): Promise<GenerationResult>;
  cancel(): void;
  /** Cancels the generation if it is still running and waits until it has stopped (`await using`). */
  [Symbol.asyncDispose](): Promise<void>;
}

// ───────────────────────────── metrics ─────────────────────────────

export interface EngineMetrics {
  requests_total: number;
  requests_rejected_total: number;
  requests_cancelled_total: number;
  prompt_tokens_total: number;
  prompt_cache_hit_tokens_total: number;
  prompt_cache_miss_tokens_total: number;
  generated_tokens_total: number;
  reasoning_tokens_total: number;
  speculative_drafted_total: number;
  speculative_accepted_total: number;
  /** Verify steps by accepted drafts: entry i counts the steps that kept exactly i drafts. */
  speculative_accepted_per_step: number[];
  steps_total: number;
  /** Sequences that gave up their state for memory and were resumed later (recomputed). */
  preemptions_total: number;
  active_sequences: number;
  /** Running sequences paused because their caller is not reading events (see readerHighWaterEvents). */
  reader_blocked_sequences: number;
  queued_requests: number;
  state_bytes_in_use: number;
  /** State bytes reserved for the running sequences at the lengths they may reach (what admission counts). */
  state_reserved_bytes?: number;
  /** The state budget those reservations come out of (absent where the engine holds no state). */
  state_budget_bytes?: number;
  prefix_cache_entries: number;
  prefix_cache_bytes: number;
  prefix_cache_disk_entries: number;
  /**
   * Request latency histograms (src/engine/request-metrics.ts): time to first token, time between a
   * request's token steps (a gateway: its upstream's chunks), end-to-end time of completed
   * requests, time queued. Absent for engines that do not time requests (test doubles).
   */
  latency?: LatencySnapshot;
  /** Batched model steps: tokens per step (decode rows, verified drafts, prefill tokens) and seconds per step. */
  steps?: { tokens: HistogramSnapshot; seconds: HistogramSnapshot };
  /** Completed requests: prompt and generated tokens, and how many ended for each finish reason. */
  requests?: RequestStatsSnapshot;
}

// ─────────────────────── OpenAI-shaped surface ───────────────────────

export interface ChatCompletionCreateParams extends SamplingOptions {
  model?: string;
  messages: ChatMessage[];
  tools?: ToolDefinition[] | null;
  tool_choice?: GenerateRequest["tool_choice"];
  response_format?: GenerateRequest["response_format"];
  thinking?: ThinkingSetting;
  /** As GenerateRequest.reasoning_effort, plus "none": thinking off (OpenAI's meaning). */
  reasoning_effort?: string | null;
  reasoning_budget?: number | null;
  speculative?: boolean | null;
  user_id?: string | null;
  /** GenerateRequest.tenant: prefix-cache isolation between accounts. */
  tenant?: string;
  max_completion_tokens?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  n?: number | null;
  signal?: AbortSignal;
  [extra: string]: unknown;
}

export interface ChatCompletionMessage {
  role: "assistant";
  content: string;
  reasoning_content?: string | null;
  tool_calls?: ParsedToolCall[];
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  system_fingerprint: string;
  choices: [
    {
      index: 0;
      message: ChatCompletionMessage;
      logprobs: FinishEvent["logprobs"];
      finish_reason: FinishReason;
    },
  ];
  usage: EngineUsage;
}

export interface ChatCompletionChunkDelta {
  role?: "assistant";
  content?: string | null;
  reasoning_content?: string | null;
  tool_calls?: Array<{
    index: number;
    id?: string;
    type?: "function";
    function: { name?: string; arguments: string };
  }>;
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  system_fingerprint: string;
  choices: Array<{
    index: 0;
    delta: ChatCompletionChunkDelta;
    logprobs: { content: TokenLogprob[] | null; reasoning_content?: TokenLogprob[] | null } | null;
    finish_reason: FinishReason | null;
  }>;
  usage: EngineUsage | null;
}

export interface ChatCompletions {
  create(body: ChatCompletionCreateParams & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(body: ChatCompletionCreateParams & { stream?: false | null }): Promise<ChatCompletion>;
  create(body: ChatCompletionCreateParams): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
}

// ───────────────────────────── sessions ─────────────────────────────

export interface ChatSessionOptions {
  system?: string;
  tools?: ToolDefinition[];
  /** Defaults for every prompt of the session. */
  defaults?: Omit<GenerateRequest, "messages" | "prompt_tokens" | "fim" | "signal" | "id">;
}

/** A conversation whose history is kept; the prefix cache makes each turn prefill only the new part. */
export interface ChatSession {
  readonly messages: readonly ChatMessage[];
  /** Adds a user message (or tool results) and generates the assistant turn; history is updated when it finishes. */
  prompt(input: string | ChatMessage[], options?: Omit<GenerateRequest, "messages">): Generation;
  /** Cancels the session's running generations and forgets its history. */
  dispose(): void;
  [Symbol.asyncDispose](): Promise<void>;
}

// ───────────────────────────── the engine ─────────────────────────────

export interface TokenizeOptions {
  /**
   * Add what the tokenizer config puts around a text (HF's add_special_tokens): BOS when
   * add_bos_token, EOS when add_eos_token. V4's config sets neither (default false).
   */
  addSpecialTokens?: boolean;
}

export interface EngineHealth {
  ok: boolean;
  /** Why not, when not ok. */
  reason: string | null;
}

export interface EngineApi {
  readonly model: ModelInfo;
  /**
   * Start a generation. Refusals (invalid request, context length, state memory, overloaded,
   * disposed) throw EngineError synchronously, before any work, so a server can answer with
   * a status code before opening a stream.
   */
  generate(request: GenerateRequest): Generation;
  /** OpenAI-shaped: `engine.chat.completions.create(body)`. */
  readonly chat: { completions: ChatCompletions };
  createSession(options?: ChatSessionOptions): ChatSession;
  /** Token ids of a request's prompt (what generate would prefill). */
  promptTokens(request: GenerateRequest): number[];
  /** Token ids of a text (no prompt template), special-token strings included. */
  tokenize(text: string, options?: TokenizeOptions): number[];
  /** The text of token ids, special tokens written out; an id outside the vocabulary is an invalid_request naming it. */
  detokenize(tokens: readonly number[]): string;
  /** Each id's vocabulary entry as stored (byte-level form, HF's convert_ids_to_tokens). */
  tokenPieces(tokens: readonly number[]): string[];
  /** The tokenizer's configuration (vLLM's GET /tokenizer_info): tokenizer_config.json less its token table, special tokens as strings. */
  tokenizerInfo(): Record<string, unknown>;
  /** Sequence state bytes at `tokens` positions for this model (spec §6), MTP state included. */
  stateBytesFor(tokens: number): number;
  metrics(): EngineMetrics;
  /**
   * Whether requests can be served: false once the model runner is down (its thread exited or
   * failed) or the engine was disposed (a gateway: no replica healthy), with the reason. What
   * GET /health answers, so an orchestrator's liveness probe restarts a broken server.
   */
  health(): EngineHealth;
  /**
   * Empties the prefix cache, disk tier included (SGLang's /flush_cache), only while nothing
   * runs or waits: otherwise nothing is dropped and `reason` says why (a gateway: every
   * replica's). Absent where there is no cache to flush.
   */
  flushCache?(): Promise<CacheFlush>;
  /** Cancels everything, flushes the disk cache, frees the model. */
  dispose(): Promise<void>;
}

export type CacheFlush = { flushed: true; entries: number } | { flushed: false; reason: string };
