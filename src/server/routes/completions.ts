/**
 * Text completions: POST /beta/completions is DeepSeek's FIM completion (spec §A.7, §C.9),
 * non-thinking. POST /completions and /v1/completions are what the hosted service refuses
 * (its 400, kept under --strict-api) and what vLLM and OpenAI's legacy API serve there: a raw
 * text completion of `prompt` (text or token ids, no chat template), the route benchmark and
 * evaluation tools call (vllm bench serve, guidellm, lm-eval's local-completions); with a
 * `suffix` it is the FIM completion of /beta.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { FinishReason, GenerateRequest, TokenLogprob } from "../../engine/types.js";
import { checkN, maxTokens, range, stopStrings, userId } from "../chat-request.js";
import { bill, tenantOf, type ServerContext } from "../context.js";
import { invalidRequest } from "../errors.js";
import { startGeneration } from "../billing.js";
import { MAX_FIM_OUTPUT_TOKENS, MAX_TOP_LOGPROBS } from "../limits.js";
import { drain, jsonWithKeepAlive, serverTiming } from "../respond.js";
import { RunningUsage } from "../running-usage.js";
import { fimRequestSchema, textCompletionSchema, type FimRequest, type TextCompletionRequest } from "../schemas.js";
import { abortOnDisconnect } from "../sse.js";
import { streamDeepSeek } from "../stream.js";
import type { DeepSeekUsage } from "../usage.js";
import { parseWith } from "../validate.js";
import { identityFor } from "./chat.js";

/** max_tokens of a text completion that sends none: OpenAI's legacy default, which vLLM keeps. */
export const TEXT_COMPLETION_DEFAULT_MAX_TOKENS = 16;

export interface CompletionLogprobs {
  tokens: string[];
  /** null for the prompt's first token, which nothing predicts (echo with prompt logprobs). */
  token_logprobs: Array<number | null>;
  top_logprobs: Array<Record<string, number> | null>;
  text_offset: number[];
}

/** An echoed prompt token without a logprob: the first one. */
interface Unpredicted {
  token: string;
  logprob: null;
  top_logprobs: null;
}

export function completionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post("/beta/completions", (request, reply) => handleCompletion(ctx, request, reply, prepareFim(ctx, parseWith(fimRequestSchema, request.body))));
  for (const path of ["/completions", "/v1/completions"]) {
    app.post(path, async (request, reply) => {
      if (ctx.strictApi) {
        const host = request.headers.host ?? "localhost";
        throw invalidRequest("url", `completions api is only available when using beta api (set base_url="http://${host}/beta")`);
      }
      return handleCompletion(ctx, request, reply, prepareText(ctx, parseWith(textCompletionSchema, request.body)));
    });
  }
}

/** Token logprobs in the legacy completions shape, offsets counted from `start`. */
export function legacyLogprobs(list: ReadonlyArray<TokenLogprob | Unpredicted>, start: number): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let offset = start;
  for (const t of list) {
    out.tokens.push(t.token);
    out.token_logprobs.push(t.logprob);
    out.top_logprobs.push(t.top_logprobs === null ? null : Object.fromEntries(t.top_logprobs.map((a) => [a.token, a.logprob])));
    out.text_offset.push(offset);
    offset += t.token.length;
  }
  return out;
}

/** What both kinds of completion hand to the engine and to the response. */
interface PreparedCompletion {
  model: string;
  /** The engine request, less the route's tenant, id and signal. */
  generate: GenerateRequest;
  /** Text shown before the completion with echo (the prompt). */
  echo: string;
  stream: boolean;
  streamOptions: FimRequest["stream_options"];
  /** Echo with logprobs of a text completion: the prompt's token ids, whose logprobs lead the list. */
  promptTokens: number[] | null;
  /** vLLM's return_token_ids: the prompt's ids, and the generated ids go on each choice. */
  returnTokenIds: number[] | null;
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
    ignore_eos: body.ignore_eos ?? undefined,
    user_id: userId(body.user_id),
  };
}

/** DeepSeek's FIM: at most 4K tokens (also the default), under the server's cap. */
function prepareFim(ctx: ServerContext, body: FimRequest): PreparedCompletion {
  return {
    model: body.model,
    generate: { ...sampling(body, ctx, MAX_FIM_OUTPUT_TOKENS, MAX_FIM_OUTPUT_TOKENS), fim: { prompt: body.prompt, suffix: body.suffix ?? null } },
    echo: body.echo === true ? body.prompt : "",
    stream: body.stream === true,
    streamOptions: body.stream_options,
    promptTokens: null,
    returnTokenIds: null,
  };
}

/**
 * vLLM's /v1/completions: one prompt, as text (tokenized as vLLM does, special tokens per
 * add_special_tokens) or token ids; with a suffix, DeepSeek's FIM prompt instead.
 */
function prepareText(ctx: ServerContext, body: TextCompletionRequest): PreparedCompletion {
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
  const common = { model: body.model, stream: body.stream === true, streamOptions: body.stream_options, promptTokens: null, returnTokenIds: null };
  // As vLLM: echo with logprobs reports the prompt's tokens' logprobs too (lm-eval's loglikelihood).
  const withPrompt = (ids: number[]) => {
    const returned = body.return_token_ids === true ? { returnTokenIds: ids } : {};
    if (body.echo !== true || generate.logprobs !== true) return { generate: { ...generate, prompt_tokens: ids }, ...returned };
    return { generate: { ...generate, prompt_tokens: ids, prompt_logprobs: generate.top_logprobs ?? 0 }, promptTokens: ids, ...returned };
  };
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

async function handleCompletion(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, prepared: PreparedCompletion): Promise<FastifyReply> {
  const model = ctx.models.resolve(prepared.model);
  const ident = identityFor(ctx, model);
  const disconnect = abortOnDisconnect(reply.raw);
  const generate = { ...prepared.generate, tenant: tenantOf(request), id: ident.id, signal: disconnect.signal };
  const running = prepared.stream ? RunningUsage.forRequest(prepared.streamOptions, ctx.engine, generate) : null;
  const started = await startGeneration(ctx, request, generate, model);
  const echo = prepared.echo;
  const head = { id: ident.id, object: "text_completion" as const, created: ident.created, model, system_fingerprint: ident.system_fingerprint };
  // vLLM's return_token_ids: each choice carries its generated ids, the first one the prompt's too.
  const promptIds = prepared.returnTokenIds;
  let idsSent = false;
  const tokenIds = (generated: number[]) => {
    if (promptIds === null) return {};
    const first = idsSent ? {} : { prompt_token_ids: promptIds };
    idsSent = true;
    return { ...first, token_ids: generated };
  };
  const choice = (text: string, logprobs: CompletionLogprobs | null, finish: FinishReason | null, generated: number[] = []) => ({
    index: 0, text, logprobs, finish_reason: finish, ...tokenIds(generated),
  });
  // Echo with prompt logprobs: the prompt's tokens lead the list, the first one unpredicted.
  const echoIds = prepared.promptTokens;
  const echoed = (lp: ReadonlyArray<TokenLogprob | null> | undefined): Array<TokenLogprob | Unpredicted> =>
    echoIds === null ? [] : [{ token: ctx.engine.detokenize(echoIds.slice(0, 1)), logprob: null, top_logprobs: null }, ...(lp ?? []).slice(1).map((t) => t!)];

  if (!prepared.stream) {
    await jsonWithKeepAlive(reply, ctx.keepAliveMs, async () => {
      const generatedIds: number[] = [];
      const finish = await drain(started, (e) => {
        if (e.type === "token") generatedIds.push(e.id);
      });
      serverTiming(reply, finish.stats);
      const usage = bill(ctx, request, finish.usage, finish.stats, finish.finish_reason);
      const generated = finish.logprobs?.content ?? [];
      const lp = !generate.logprobs ? null : echoIds !== null ? legacyLogprobs([...echoed(finish.prompt_logprobs), ...generated], 0) : legacyLogprobs(generated, echo.length);
      return { ...head, choices: [choice(echo + finish.message.content, lp, finish.finish_reason, generatedIds)], usage };
    });
    return reply;
  }

  let pending: TokenLogprob[] = [];
  // Ids of tokens whose text has not gone out yet (held back, or none): they ride on the next chunk.
  let pendingIds: number[] = [];
  const takeIds = () => {
    const out = pendingIds;
    pendingIds = [];
    return out;
  };
  let offset = echo.length;
  const takeLogprobs = (): CompletionLogprobs | null => {
    if (!generate.logprobs) return null;
    const lp = legacyLogprobs(pending, offset);
    for (const t of pending) offset += t.token.length;
    pending = [];
    return lp;
  };
  await streamDeepSeek(reply, ctx.keepAliveMs, started, {
    first: async (sse) => {
      if (echo !== "" && echoIds === null) await sse.data({ ...head, choices: [choice(echo, null, null)], usage: running?.fields ?? null });
    },
    event: async (e, sse) => {
      running?.observe(e);
      if (e.type === "prefill" && e.prompt_logprobs && echoIds !== null) {
        // The echo waits for the prompt's logprobs, which the prefill's end brings.
        const lp = legacyLogprobs(echoed(e.prompt_logprobs), 0);
        offset = lp.tokens.reduce((n, t) => n + t.length, 0);
        await sse.data({ ...head, choices: [choice(echo, lp, null)], usage: running?.fields ?? null });
      } else if (e.type === "token") {
        pendingIds.push(e.id);
        if (e.logprob) pending.push(e.logprob);
      } else if (e.type === "content" && e.text !== "") {
        await sse.data({ ...head, choices: [choice(e.text, takeLogprobs(), null, takeIds())], usage: running?.fields ?? null });
      } else if (e.type === "finish") {
        const usage: DeepSeekUsage = bill(ctx, request, e.usage, e.stats, e.finish_reason);
        await sse.data({ ...head, choices: [choice("", takeLogprobs(), e.finish_reason, takeIds())], usage });
        if (prepared.streamOptions?.include_usage === true) await sse.data({ ...head, choices: [], usage });
      }
    },
  });
  return reply;
}
