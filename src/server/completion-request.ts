/**
 * A completion request body → the engine request and what its response needs: DeepSeek's
 * FIM (/beta/completions) and vLLM's text completion (/v1/completions). Validation with the
 * hosted service's messages, as chat-request.ts does for chat.
 */
import type { GenerateRequest } from "../engine/types.js";
import { checkN, maxTokens, range, stopStrings, userId } from "./chat-request.js";
import type { ServerContext } from "./context.js";
import { invalidRequest } from "./errors.js";
import { MAX_FIM_OUTPUT_TOKENS, MAX_TOP_LOGPROBS } from "./limits.js";
import type { FimRequest, TextCompletionRequest } from "./schemas.js";

/** max_tokens of a text completion that sends none: OpenAI's legacy default, which vLLM keeps. */
export const TEXT_COMPLETION_DEFAULT_MAX_TOKENS = 16;

/** What both kinds of completion hand to the engine and to the response. */
export interface PreparedCompletion {
  model: string;
  /** The engine request, less the route's tenant, id and signal. */
  generate: GenerateRequest;
  /** Text shown before the completion with echo (the prompt). */
  echo: string;
  stream: boolean;
  streamOptions: FimRequest["stream_options"];
  /** vLLM's return_token_ids: the prompt's ids (generate.prompt_tokens) and the generated ids go on the choices. */
  returnTokenIds: boolean;
}

/** The sampling fields both kinds share. */
function sampling(body: FimRequest, ctx: ServerContext, cap: number, defaultMax: number) {
  checkN(body.n);
  const top = range(body.logprobs, "logprobs", 0, MAX_TOP_LOGPROBS);
  range(body.frequency_penalty, "frequency_penalty", -2, 2);
  range(body.presence_penalty, "presence_penalty", -2, 2);
  return {
    thinking: { type: "disabled" as const },
    max_tokens: maxTokens(body.max_tokens, "max_tokens", Math.min(cap, ctx.maxOutputTokens)) ?? Math.min(defaultMax, ctx.maxOutputTokens),
    stop: stopStrings(body.stop),
    temperature: range(body.temperature, "temperature", 0, 2),
    top_p: range(body.top_p, "top_p", 0, 1),
    seed: body.seed ?? undefined,
    logprobs: top !== undefined,
    top_logprobs: top,
    priority: body.priority ?? undefined,
    min_tokens: body.min_tokens ?? undefined,
    stop_token_ids: body.stop_token_ids ?? undefined,
    include_stop_str_in_output: body.include_stop_str_in_output ?? undefined,
    ignore_eos: body.ignore_eos ?? undefined,
    user_id: userId(body.user_id),
  };
}

/** DeepSeek's FIM: at most 4K tokens (also the default), under the server's cap. */
export function prepareFim(ctx: ServerContext, body: FimRequest): PreparedCompletion {
  return {
    model: body.model,
    generate: { ...sampling(body, ctx, MAX_FIM_OUTPUT_TOKENS, MAX_FIM_OUTPUT_TOKENS), fim: { prompt: body.prompt, suffix: body.suffix ?? null } },
    echo: body.echo === true ? body.prompt : "",
    stream: body.stream === true,
    streamOptions: body.stream_options,
    returnTokenIds: false,
  };
}

/**
 * vLLM's /v1/completions: one prompt, as text (tokenized as vLLM does, special tokens per
 * add_special_tokens) or token ids; with a suffix, DeepSeek's FIM prompt instead.
 */
export function prepareText(ctx: ServerContext, body: TextCompletionRequest): PreparedCompletion {
  const listed = Array.isArray(body.prompt) && (typeof body.prompt[0] === "string" || Array.isArray(body.prompt[0]));
  if (listed && (body.prompt as unknown[]).length !== 1) throw invalidRequest("prompt", `one prompt per request (got ${(body.prompt as unknown[]).length}); send the others as separate requests`);
  const prompt = listed ? (body.prompt as Array<string | number[]>)[0]! : (body.prompt as string | number[]);
  const at = listed ? "prompt[0]" : "prompt";
  if (prompt.length === 0) throw invalidRequest(at, "the prompt is empty");
  const suffix = body.suffix ?? null;
  const generate: GenerateRequest = {
    ...sampling({ ...body, prompt: "" }, ctx, Infinity, TEXT_COMPLETION_DEFAULT_MAX_TOKENS),
    // vLLM's "off" is -1 (or 0); the engine's is 0.
    top_k: body.top_k === -1 ? 0 : body.top_k ?? undefined,
    min_p: body.min_p ?? undefined,
    // vLLM's cache_salt isolates the prefix cache as a user_id does (the /generate route's dsv4.cache_salt likewise).
    ...(body.cache_salt !== null && body.cache_salt !== undefined && { user_id: body.cache_salt }),
  };
  const common = { model: body.model, stream: body.stream === true, streamOptions: body.stream_options, returnTokenIds: body.return_token_ids === true };
  // As vLLM: echo with logprobs reports the prompt's tokens' logprobs too (lm-eval's loglikelihood).
  const promptLogprobs = body.echo === true && generate.logprobs === true ? { prompt_logprobs: generate.top_logprobs ?? 0 } : {};
  const withPrompt = (ids: number[]) => ({ generate: { ...generate, prompt_tokens: ids, ...promptLogprobs } });
  if (typeof prompt === "string") {
    const echo = body.echo === true ? prompt : "";
    if (suffix !== null) {
      if (body.return_token_ids === true) throw invalidRequest("return_token_ids", "return_token_ids needs a prompt without a suffix");
      return { ...common, generate: { ...generate, fim: { prompt, suffix } }, echo };
    }
    return { ...common, ...withPrompt(ctx.engine.tokenize(prompt, { addSpecialTokens: body.add_special_tokens ?? true })), echo };
  }
  if (suffix !== null) throw invalidRequest("suffix", "a suffix needs a text prompt, not token ids");
  const V = ctx.engine.model.vocabSize;
  prompt.forEach((t, i) => {
    if (!Number.isInteger(t) || t < 0 || t >= V) throw invalidRequest(`${at}[${i}]`, `token id ${t} is not in the vocabulary [0, ${V})`);
  });
  return { ...common, ...withPrompt([...prompt]), echo: body.echo === true ? ctx.engine.detokenize(prompt) : "" };
}
