/**
 * A GenerateRequest checked and resolved into what the scheduler needs:
 * prompt token ids, sampling parameters, limits and how to parse the output.
 * Everything that can be refused is refused here, before any model work.
 */
import { encoderEffort } from "../text/effort.js";
import { encodeFim, encodeMessages, EncodingError, type ThinkingMode } from "../text/encoding.js";
import type { Release } from "../text/release.js";
import { ASSISTANT, THINK_END, THINK_START } from "../text/special-tokens.js";
import type { Tokenizer } from "../text/tokenizer.js";
import { requestSalt } from "./cache-salt.js";
import { constraintSpec, minimalTokens, type ConstraintSpec } from "./constraints/index.js";
import { EngineError } from "./errors.js";
import { randomSeed } from "./rng.js";
import type { SamplingParams } from "./sampler.js";
import type { SharedPrefixes } from "./shared-prefix.js";
import type { GenerateRequest, ThinkingSetting } from "./types.js";

/** Most stop_token_ids a request may give. */
const MAX_STOP_TOKEN_IDS = 256;

export interface ResolvedRequest {
  promptTokens: number[];
  sampling: SamplingParams;
  seed: number;
  maxTokens: number;
  /** End of sentence is masked until this many tokens were generated (min_tokens, ignore_eos). */
  minTokens: number;
  /** No stop string may end in the text of the first this-many generated tokens (vLLM's min_tokens; not ignore_eos). */
  stopsAfter: number;
  stop: string[];
  /** Token ids that end the answer when generated (vLLM's stop_token_ids). */
  stopTokenIds: number[];
  /** The stop string that ends the answer stays in it (vLLM's include_stop_str_in_output). */
  includeStop: boolean;
  logprobs: boolean;
  topLogprobs: number;
  thinkingMode: ThinkingMode;
  /** The prompt leaves the model inside `<think>`: output starts as reasoning. */
  startsInReasoning: boolean;
  reasoningBudget: number | null;
  speculative: boolean;
  /** Isolation salt from tenant + user_id (cache-salt.ts requestSalt). */
  cacheSalt: string;
  /** Leading prompt tokens inside a shared prefix: their whole blocks are cached without the salt. */
  sharedPrefixTokens: number;
  useCache: boolean;
  /** Alternatives per prompt token when prompt logprobs are wanted, else null. */
  promptLogprobs: number | null;
  /** tool_choice / response_format enforced while decoding (constraints/). */
  constraint: ConstraintSpec | null;
  /** Scheduling priority (lower first); 0 unless the engine schedules by priority. */
  priority: number;
}

export interface ResolveContext {
  tokenizer: Tokenizer | null;
  contextLength: number;
  vocabSize: number;
  speculativeDefault: boolean;
  /** The engine has a drafter in use (a mode other than "off" and a checkpoint drafter). */
  canSpeculate: boolean;
  /** The prompt encoder in use (ModelInfo.encoding; default "april"). */
  encoding?: Release;
  /** Operator-declared shareable system prompts (absent: none). */
  sharedPrefixes?: SharedPrefixes | null;
  /** max_tokens of a request that sets none, clamped to what the context leaves (absent: DEFAULT_MAX_TOKENS). */
  defaultMaxTokens?: number;
  /** The engine schedules by priority (EngineOptions.schedulingPolicy "priority"); otherwise only priority 0 is accepted. */
  priorityScheduling?: boolean;
  /** Why a priority is refused, when not for the engine's policy (a gateway's upstreams). */
  noPriorityReason?: string;
}

/**
 * max_tokens when a request sets none. The hosted service documents no default (spec §A.2,
 * Uncertainties 2); 32K is the documented default of DeepSeek's previous thinking model
 * (deepseek-reasoner): room for long reasoning, yet a request cannot run for the whole 1M context.
 */
export const DEFAULT_MAX_TOKENS = 32_768;

const bad = (param: string, message: string) => new EngineError("invalid_request", `${param}: ${message}`, { param });

function num(v: number | null | undefined, param: string, dflt: number, lo: number, hi: number): number {
  if (v === null || v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi) throw bad(param, `must be a number in [${lo}, ${hi}]`);
  return v;
}

function thinkingMode(t: ThinkingSetting | undefined): ThinkingMode {
  if (t === null || t === undefined || t === true) return "thinking";
  if (t === false) return "chat";
  if (typeof t === "object" && (t.type === "enabled" || t.type === "disabled")) return t.type === "enabled" ? "thinking" : "chat";
  throw bad("thinking", 'must be {"type":"enabled"|"disabled"}');
}

/** Whether generation after `prompt` starts inside an unclosed `<think>` of the last assistant turn. */
function endsInReasoning(prompt: string): boolean {
  const turn = prompt.slice(prompt.lastIndexOf(ASSISTANT) + ASSISTANT.length);
  return turn.lastIndexOf(THINK_START) > turn.lastIndexOf(THINK_END);
}

export function resolveRequest(req: GenerateRequest, ctx: ResolveContext): ResolvedRequest {
  const sources = [req.messages !== undefined, req.prompt_tokens !== undefined, req.fim !== undefined].filter(Boolean).length;
  if (sources !== 1) throw bad("messages", "give exactly one of messages, prompt_tokens or fim");

  let mode: ThinkingMode = "chat";
  let promptTokens: number[];
  let startsInReasoning = false;
  let sharedPrefixTokens = 0;
  const needTokenizer = (what: string) => {
    if (!ctx.tokenizer) throw bad(what, "this model directory has no tokenizer.json; pass prompt_tokens");
    return ctx.tokenizer;
  };
  try {
    if (req.messages !== undefined) {
      const tok = needTokenizer("messages");
      if (!Array.isArray(req.messages) || req.messages.length === 0) throw bad("messages", "must be a non-empty array");
      mode = thinkingMode(req.thinking);
      // tool_choice "none" keeps the tools in the prompt (spec §C.7); decoding forbids the call.
      const tools = req.tools ?? null;
      const encoding = ctx.encoding ?? "april";
      const effort = encoderEffort(req.reasoning_effort ?? null, encoding);
      const generationPrompt = req.add_generation_prompt ?? true;
      if (typeof generationPrompt !== "boolean") throw bad("add_generation_prompt", "must be a boolean");
      const text = encodeMessages(req.messages, { thinking_mode: mode, reasoning_effort: effort, tools, effort_prompts: encoding, add_generation_prompt: generationPrompt });
      startsInReasoning = mode === "thinking" && endsInReasoning(text);
      promptTokens = tok.encode(text);
      sharedPrefixTokens = ctx.sharedPrefixes?.tokens(text, promptTokens, { thinking_mode: mode, reasoning_effort: effort, effort_prompts: encoding }) ?? 0;
    } else if (req.fim !== undefined) {
      const tok = needTokenizer("prompt");
      promptTokens = tok.encode(encodeFim(req.fim));
    } else {
      const ids = req.prompt_tokens!;
      if (!Array.isArray(ids) || ids.length === 0) throw bad("prompt_tokens", "must be a non-empty array of token ids");
      for (const t of ids) if (!Number.isInteger(t) || t < 0 || t >= ctx.vocabSize) throw bad("prompt_tokens", `token id ${t} is not in [0, ${ctx.vocabSize})`);
      promptTokens = [...ids];
      const asChat = req.prompt_tokens_mode;
      if (asChat !== null && asChat !== undefined) {
        if (typeof asChat !== "object" || typeof asChat.thinking !== "boolean") throw bad("prompt_tokens_mode", 'must be {"thinking": boolean, "starts_in_reasoning"?: boolean}');
        mode = asChat.thinking ? "thinking" : "chat";
        startsInReasoning = asChat.thinking && asChat.starts_in_reasoning === true;
      }
    }
  } catch (e) {
    if (e instanceof EncodingError) throw new EngineError("invalid_request", e.message, { param: e.field, cause: e });
    throw e;
  }

  const temperature = num(req.temperature, "temperature", 1, 0, 2);
  const topP = num(req.top_p, "top_p", 1, 0, 1);
  const topK = Math.floor(num(req.top_k, "top_k", 0, 0, ctx.vocabSize));
  const minP = num(req.min_p, "min_p", 0, 0, 1);
  // top_p 0 is accepted, as DeepSeek and OpenAI do (0 ≤ top_p ≤ 1): the sampler keeps the single most likely token.

  const stop = req.stop === null || req.stop === undefined ? [] : typeof req.stop === "string" ? [req.stop] : req.stop;
  if (!Array.isArray(stop) || stop.length > 16 || stop.some((s) => typeof s !== "string" || s === "")) {
    throw bad("stop", "must be a non-empty string or an array of at most 16 non-empty strings");
  }
  if (stop.length > 0 && !ctx.tokenizer) throw bad("stop", "stop strings need a tokenizer");
  const stopTokenIds = req.stop_token_ids ?? [];
  if (!Array.isArray(stopTokenIds) || stopTokenIds.length > MAX_STOP_TOKEN_IDS) throw bad("stop_token_ids", `must be an array of at most ${MAX_STOP_TOKEN_IDS} token ids`);
  stopTokenIds.forEach((t, i) => {
    if (!Number.isInteger(t) || t < 0 || t >= ctx.vocabSize) throw bad(`stop_token_ids[${i}]`, `token id ${t} is not in [0, ${ctx.vocabSize})`);
  });
  const topLogprobs = Math.floor(num(req.top_logprobs, "top_logprobs", 0, 0, 20));
  const promptLogprobs = req.prompt_logprobs === null || req.prompt_logprobs === undefined ? null : Math.floor(num(req.prompt_logprobs, "prompt_logprobs", 0, 0, 20));
  const logprobs = req.logprobs === true || topLogprobs > 0;

  const P = promptTokens.length;
  const room = ctx.contextLength - P;
  if (req.max_tokens !== null && req.max_tokens !== undefined && (!Number.isInteger(req.max_tokens) || req.max_tokens < 1)) {
    throw bad("max_tokens", "must be a positive integer");
  }
  const maxTokens = req.max_tokens ?? Math.max(1, Math.min(room, ctx.defaultMaxTokens ?? DEFAULT_MAX_TOKENS));
  if (room < 1 || P + maxTokens > ctx.contextLength) {
    // Named after what the request gave: a conversation (the hosted service's wording), a FIM prompt or ids.
    const noun = req.messages !== undefined ? "messages" : "prompt";
    throw new EngineError(
      "context_length_exceeded",
      `This model's maximum context length is ${ctx.contextLength} tokens. However, you requested ${P + Math.max(maxTokens, 0)} tokens (${P} in the ${noun}, ${Math.max(maxTokens, 0)} in the completion). Please reduce the length of the ${noun} or completion.`,
      { param: req.messages !== undefined ? "messages" : req.fim !== undefined ? "prompt" : "prompt_tokens" },
    );
  }
  if (req.ignore_eos !== null && req.ignore_eos !== undefined && typeof req.ignore_eos !== "boolean") throw bad("ignore_eos", "must be a boolean");
  const askedMin = req.min_tokens ?? 0;
  if (!Number.isInteger(askedMin) || askedMin < 0 || askedMin > maxTokens) {
    throw bad("min_tokens", `must be an integer from 0 to max_tokens (${maxTokens})`);
  }
  const minTokens = req.ignore_eos === true ? maxTokens : askedMin;
  const budget = req.reasoning_budget ?? null;
  if (budget !== null && (!Number.isInteger(budget) || budget < 0)) throw bad("reasoning_budget", "must be a non-negative integer");
  if (budget !== null && ctx.tokenizer?.specialIds.thinkEnd === undefined) throw bad("reasoning_budget", "the tokenizer has no </think> token");

  const constraint = constraintSpec(req, ctx.tokenizer !== null);
  if (constraint && ctx.tokenizer) checkConstraintBudget(constraint, ctx.tokenizer, startsInReasoning, maxTokens);
  // Drafts are verified against the unconstrained distribution, so constrained requests decode plainly.
  const speculative = (req.speculative ?? ctx.speculativeDefault) && ctx.canSpeculate && constraint === null;
  const tenant = req.tenant ?? "";
  if (typeof tenant !== "string") throw bad("tenant", "must be a string");
  const seed = req.seed === null || req.seed === undefined ? randomSeed() : Math.floor(num(req.seed, "seed", 0, -(2 ** 53), 2 ** 53));
  const priority = req.priority ?? 0;
  if (!Number.isSafeInteger(priority)) throw bad("priority", "must be an integer (lower runs first; default 0)");
  if (priority !== 0 && ctx.priorityScheduling !== true) {
    throw bad("priority", `priority ${priority} needs priority scheduling, which is off: ${ctx.noPriorityReason ?? 'start the engine with schedulingPolicy "priority" (dsv4 serve --scheduling-policy priority)'}`);
  }

  return {
    promptTokens,
    sampling: { temperature, topP, topK, minP },
    seed,
    maxTokens,
    minTokens,
    stopsAfter: askedMin,
    stop,
    stopTokenIds: [...stopTokenIds],
    includeStop: req.include_stop_str_in_output === true,
    logprobs,
    topLogprobs,
    thinkingMode: mode,
    startsInReasoning,
    reasoningBudget: startsInReasoning ? budget : null,
    speculative,
    cacheSalt: requestSalt(tenant, req.user_id ?? ""),
    sharedPrefixTokens,
    // Prompt logprobs need every prompt position computed: a cached prefix would skip them.
    useCache: req.cache !== false && promptLogprobs === null,
    promptLogprobs,
    constraint,
    priority,
  };
}

/** A forced call or a schema answer that max_tokens cannot hold is refused up front rather than cut off. */
function checkConstraintBudget(spec: ConstraintSpec, tok: NonNullable<ResolveContext["tokenizer"]>, startsInReasoning: boolean, maxTokens: number): void {
  const need = minimalTokens(spec, tok, startsInReasoning);
  if (maxTokens >= need) return;
  const what = spec.kind === "json_schema" ? "the shortest JSON value the schema admits" : "the shortest tool call the schemas admit";
  throw bad("max_tokens", `max_tokens ${maxTokens} is too small: ${what} takes ${need} tokens${startsInReasoning ? " (with the </think> that ends the reasoning)" : ""}; set max_tokens to at least ${need}`);
}
