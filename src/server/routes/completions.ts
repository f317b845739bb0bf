/**
 * Text completions: POST /beta/completions is DeepSeek's FIM completion (spec §A.7, §C.9),
 * non-thinking. POST /completions and /v1/completions are what the hosted service refuses
 * (its 400, kept under --strict-api) and what vLLM and OpenAI's legacy API serve there: a raw
 * text completion of `prompt` (text or token ids, no chat template), the route benchmark and
 * evaluation tools call (vllm bench serve, guidellm, lm-eval's local-completions); with a
 * `suffix` it is the FIM completion of /beta.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { EngineError } from "../../engine/errors.js";
import type { FinishReason, TokenLogprob } from "../../engine/types.js";
import { prepareFim, prepareText, type PreparedCompletion } from "../completion-request.js";
import { bill, tenantOf, type ServerContext } from "../context.js";
import { invalidRequest } from "../errors.js";
import { startGeneration } from "../billing.js";
import { drain, jsonWithKeepAlive, serverTiming } from "../respond.js";
import { RunningUsage } from "../running-usage.js";
import { fimRequestSchema, textCompletionSchema } from "../schemas.js";
import { abortOnDisconnect } from "../sse.js";
import { streamDeepSeek } from "../stream.js";
import type { DeepSeekUsage } from "../usage.js";
import { parseWith } from "../validate.js";
import { identityFor } from "./chat.js";

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

async function handleCompletion(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, prepared: PreparedCompletion): Promise<FastifyReply> {
  const model = ctx.models.resolve(prepared.model);
  const ident = identityFor(ctx, model);
  const disconnect = abortOnDisconnect(reply.raw);
  const generate = { ...prepared.generate, tenant: tenantOf(request), id: ident.id, signal: disconnect.signal };
  const running = prepared.stream ? RunningUsage.forRequest(prepared.streamOptions, ctx.engine, generate) : null;
  const started = await startGeneration(ctx, request, generate, model).catch((e: unknown) => {
    // The engine names the ids it was given; this body calls them `prompt`.
    if (e instanceof EngineError && e.param === "prompt_tokens") throw new EngineError(e.code, e.message, { param: "prompt", cause: e });
    throw e;
  });
  const echo = prepared.echo;
  const head = { id: ident.id, object: "text_completion" as const, created: ident.created, model, system_fingerprint: ident.system_fingerprint };
  // vLLM's return_token_ids: each choice carries its generated ids, the first one the prompt's too.
  const promptIds = prepared.returnTokenIds ? (prepared.generate.prompt_tokens ?? null) : null;
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
  const echoIds = prepared.generate.prompt_logprobs !== undefined ? prepared.generate.prompt_tokens! : null;
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
