/**
 * The wire protocols of token-in/token-out upstreams: how a gateway request becomes an HTTP
 * body, and how the upstream's answers (one JSON body, or SSE `data:` chunks) become generated
 * ids, a finish reason and prompt/cached token counts. One adapter per engine:
 *
 * - sglang: `POST /generate` with `input_ids` and `sampling_params` (SGLang v0.5.x, the
 *   DeepSeek-V4 images); answers `output_ids` + `meta_info` {finish_reason {type}, prompt_tokens,
 *   completion_tokens, cached_tokens}. Streamed `output_ids` are cumulative by default and only
 *   the new ones with `--stream-output`; both are read (see sglangChunk).
 * - dsv4: the same `/generate` (src/server/routes/generate.ts) plus a `dsv4` object that makes
 *   the replica enforce tool_choice / response_format / reasoning_budget while decoding.
 * - vllm: `POST /v1/completions` with a token-id `prompt` and `return_token_ids: true`
 *   (vLLM ≥ 0.10.2; the 0.20 line serving DeepSeek-V4); ids come back in `choices[0].token_ids`,
 *   usage (with `prompt_tokens_details.cached_tokens`, which vLLM fills with
 *   `--enable-prompt-tokens-details`) in the body or, streamed, in the last chunk
 *   (`stream_options.include_usage`).
 */
import type { ToolDefinition } from "../text/messages.js";

export type UpstreamKind = "dsv4" | "vllm" | "sglang";
export const UPSTREAM_KINDS: readonly UpstreamKind[] = ["dsv4", "vllm", "sglang"];

/** What the gateway asks of an upstream: a rendered prompt and the engine's sampling. */
export interface TokenCall {
  id: string;
  promptIds: number[];
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  seed: number;
  /** Prefix-cache isolation (tenant + user_id); "" when none. */
  cacheSalt: string;
  /** End of sentence masked until this many tokens (min_tokens; ignore_eos is max_tokens); sent when not 0. */
  minTokens: number;
  /** Scheduling priority, lower first (vLLM's polarity); sent only when not 0, to dsv4 and vLLM upstreams. */
  priority: number;
  /** Only dsv4 upstreams honour these (others get an error before dispatch, upstream-engine.ts). */
  chat: {
    thinking: boolean;
    startsInReasoning: boolean;
    tools: ToolDefinition[] | null;
    toolChoice: unknown;
    responseFormat: unknown;
    reasoningBudget: number | null;
  };
}

export type UpstreamFinish = { reason: "stop" | "length" } | { reason: "abort"; message: string };

/** One decoded answer or chunk. */
export interface TokenChunk {
  /** Newly generated ids. */
  ids: number[];
  finish: UpstreamFinish | null;
  /** Counts, when this answer carries them. */
  promptTokens?: number;
  cachedTokens?: number;
  /** The upstream's own time on the request (SGLang's meta_info.e2e_latency, on the last chunk). */
  engineMs?: number;
}

/** Per-stream memory of an adapter (SGLang's cumulative ids). */
export interface StreamState {
  seen: number;
}

export interface Protocol {
  kind: UpstreamKind;
  path: string;
  body(call: TokenCall, stream: boolean, model: string): unknown;
  /** A non-streamed answer. */
  answer(json: unknown): TokenChunk;
  /** One streamed `data:` payload (already JSON-parsed; `[DONE]` never reaches here). */
  chunk(json: unknown, state: StreamState): TokenChunk;
  /** Requests running + waiting, from the upstream's Prometheus text; null when absent. */
  load(metrics: string): number | null;
}

export class ProtocolError extends Error {
  constructor(kind: UpstreamKind, what: string) {
    super(`${kind} upstream: ${what}`);
    this.name = "ProtocolError";
  }
}

const isObject = (v: unknown): v is Record<string, any> => typeof v === "object" && v !== null && !Array.isArray(v);

function idList(kind: UpstreamKind, v: unknown, field: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) throw new ProtocolError(kind, `${field} is not a list of token ids`);
  return v as number[];
}

/** Sum of the samples of these metric names (any labels) in Prometheus text. */
export function metricSum(text: string, names: readonly string[]): number | null {
  let found = false;
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || !names.includes(m[1]!)) continue;
    const v = Number(m[3]);
    if (!Number.isFinite(v)) continue;
    found = true;
    sum += v;
  }
  return found ? sum : null;
}

function sglangFinish(kind: UpstreamKind, reason: unknown): UpstreamFinish | null {
  if (reason === null || reason === undefined) return null;
  if (!isObject(reason) || typeof reason.type !== "string") throw new ProtocolError(kind, "meta_info.finish_reason is not an object with a type");
  if (reason.type === "length") return { reason: "length" };
  if (reason.type === "stop") return { reason: "stop" };
  return { reason: "abort", message: typeof reason.message === "string" ? reason.message : `finish_reason ${reason.type}` };
}

function sglangCounts(meta: Record<string, any>): Pick<TokenChunk, "promptTokens" | "cachedTokens" | "engineMs"> {
  const out: Pick<TokenChunk, "promptTokens" | "cachedTokens" | "engineMs"> = {};
  if (Number.isInteger(meta.prompt_tokens)) out.promptTokens = meta.prompt_tokens;
  if (Number.isInteger(meta.cached_tokens)) out.cachedTokens = meta.cached_tokens;
  if (typeof meta.e2e_latency === "number" && meta.e2e_latency >= 0) out.engineMs = meta.e2e_latency * 1000;
  return out;
}

function generateProtocol(kind: "dsv4" | "sglang"): Protocol {
  const meta = (json: unknown): Record<string, any> => {
    if (!isObject(json)) throw new ProtocolError(kind, "the answer is not a JSON object");
    if (isObject(json.error)) throw new ProtocolError(kind, String(json.error.message ?? "error"));
    if (!isObject(json.meta_info)) throw new ProtocolError(kind, "the answer has no meta_info");
    return json.meta_info;
  };
  return {
    kind,
    path: "/generate",
    body(call, stream) {
      const body: Record<string, unknown> = {
        rid: call.id,
        input_ids: call.promptIds,
        sampling_params: {
          max_new_tokens: call.maxTokens,
          temperature: call.temperature,
          top_p: call.topP,
          top_k: call.topK > 0 ? call.topK : -1,
          min_p: call.minP,
          sampling_seed: call.seed,
          ...(call.minTokens > 0 && { min_new_tokens: call.minTokens }),
          // The gateway parses the output itself: special tokens and DSML must come back.
          skip_special_tokens: false,
          no_stop_trim: true,
        },
        stream,
      };
      if (kind === "dsv4") {
        body.dsv4 = {
          cache_salt: call.cacheSalt,
          prompt_tokens_mode: { thinking: call.chat.thinking, starts_in_reasoning: call.chat.startsInReasoning },
          tools: call.chat.tools,
          tool_choice: call.chat.toolChoice,
          response_format: call.chat.responseFormat,
          reasoning_budget: call.chat.reasoningBudget,
          ...(call.priority !== 0 && { priority: call.priority }),
        };
      }
      return body;
    },
    answer(json) {
      const m = meta(json);
      return { ids: idList(kind, (json as any).output_ids, "output_ids"), finish: sglangFinish(kind, m.finish_reason) ?? { reason: "stop" }, ...sglangCounts(m) };
    },
    chunk(json, state) {
      const m = meta(json);
      const ids = idList(kind, (json as any).output_ids, "output_ids");
      // Cumulative ids (SGLang's default) hold every id so far: as many as completion_tokens.
      const cumulative = Number.isInteger(m.completion_tokens) && ids.length === m.completion_tokens && ids.length > 0 && state.seen > 0;
      const fresh = cumulative ? ids.slice(state.seen) : ids;
      state.seen += fresh.length;
      return { ids: fresh, finish: sglangFinish(kind, m.finish_reason), ...sglangCounts(m) };
    },
    load(metrics) {
      return kind === "dsv4"
        ? metricSum(metrics, ["dsv4_active_sequences", "dsv4_queue_depth"])
        : metricSum(metrics, ["sglang:num_running_reqs", "sglang:num_queue_reqs"]);
    },
  };
}

function vllmFinish(reason: unknown): UpstreamFinish | null {
  if (reason === null || reason === undefined) return null;
  if (reason === "length") return { reason: "length" };
  if (reason === "stop") return { reason: "stop" };
  return { reason: "abort", message: `finish_reason ${String(reason)}` };
}

function vllmUsage(usage: unknown): Pick<TokenChunk, "promptTokens" | "cachedTokens"> {
  if (!isObject(usage)) return {};
  const out: Pick<TokenChunk, "promptTokens" | "cachedTokens"> = {};
  if (Number.isInteger(usage.prompt_tokens)) out.promptTokens = usage.prompt_tokens;
  const cached = usage.prompt_tokens_details?.cached_tokens;
  out.cachedTokens = Number.isInteger(cached) ? cached : 0;
  return out;
}

const vllm: Protocol = {
  kind: "vllm",
  path: "/v1/completions",
  body(call, stream, model) {
    return {
      model,
      prompt: call.promptIds,
      max_tokens: call.maxTokens,
      temperature: call.temperature,
      top_p: call.topP,
      top_k: call.topK > 0 ? call.topK : -1,
      min_p: call.minP,
      seed: call.seed,
      ...(call.minTokens > 0 && { min_tokens: call.minTokens }),
      return_token_ids: true,
      skip_special_tokens: false,
      spaces_between_special_tokens: false,
      stream,
      ...(stream && { stream_options: { include_usage: true } }),
      ...(call.cacheSalt !== "" && { cache_salt: call.cacheSalt }),
      ...(call.priority !== 0 && { priority: call.priority }),
    };
  },
  answer(json) {
    if (!isObject(json) || !Array.isArray(json.choices) || !isObject(json.choices[0])) throw new ProtocolError("vllm", "the answer has no choices[0]");
    const choice = json.choices[0];
    return { ids: idList("vllm", choice.token_ids, "choices[0].token_ids (was return_token_ids honoured? vLLM ≥ 0.10.2)"), finish: vllmFinish(choice.finish_reason) ?? { reason: "stop" }, ...vllmUsage(json.usage) };
  },
  chunk(json) {
    if (!isObject(json)) throw new ProtocolError("vllm", "a chunk is not a JSON object");
    if (isObject(json.error)) throw new ProtocolError("vllm", String(json.error.message ?? "error"));
    const choice = Array.isArray(json.choices) ? json.choices[0] : undefined;
    const counts = vllmUsage(json.usage);
    if (!isObject(choice)) return { ids: [], finish: null, ...counts };
    const ids = choice.token_ids === undefined || choice.token_ids === null ? [] : idList("vllm", choice.token_ids, "choices[0].token_ids");
    return { ids, finish: vllmFinish(choice.finish_reason), ...counts };
  },
  load(metrics) {
    return metricSum(metrics, ["vllm:num_requests_running", "vllm:num_requests_waiting"]);
  },
};

export function protocolFor(kind: UpstreamKind): Protocol {
  return kind === "vllm" ? vllm : generateProtocol(kind);
}
