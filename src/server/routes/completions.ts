/**
 * POST /beta/completions: FIM completion (spec §A.7, §C.9), non-thinking.
 * The non-beta paths answer with the hosted service's 400.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { FinishReason, TokenLogprob } from "../../engine/types.js";
import { checkN, maxTokens, range, stopStrings } from "../chat-request.js";
import { bill, tenantOf, type ServerContext } from "../context.js";
import { invalidRequest } from "../errors.js";
import { startGeneration } from "../billing.js";
import { MAX_FIM_OUTPUT_TOKENS, MAX_TOP_LOGPROBS } from "../limits.js";
import { drain, jsonWithKeepAlive, serverTiming } from "../respond.js";
import { fimRequestSchema, type FimRequest } from "../schemas.js";
import { RunningUsage } from "../running-usage.js";
import { abortOnDisconnect } from "../sse.js";
import { streamDeepSeek } from "../stream.js";
import type { DeepSeekUsage } from "../usage.js";
import { parseWith } from "../validate.js";
import { identityFor } from "./chat.js";

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Array<Record<string, number>>;
  text_offset: number[];
}

export function completionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post("/beta/completions", (request, reply) => handleFim(ctx, request, reply));
  for (const path of ["/completions", "/v1/completions"]) {
    app.post(path, async (request) => {
      const host = request.headers.host ?? "localhost";
      throw invalidRequest("url", `completions api is only available when using beta api (set base_url="http://${host}/beta")`);
    });
  }
}

/** Token logprobs in the legacy completions shape, offsets counted from `start`. */
export function legacyLogprobs(list: readonly TokenLogprob[], start: number): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let offset = start;
  for (const t of list) {
    out.tokens.push(t.token);
    out.token_logprobs.push(t.logprob);
    out.top_logprobs.push(Object.fromEntries(t.top_logprobs.map((a) => [a.token, a.logprob])));
    out.text_offset.push(offset);
    offset += t.token.length;
  }
  return out;
}

function prepareFim(body: FimRequest) {
  checkN(body.n);
  const top = range(body.logprobs, "logprobs", 0, MAX_TOP_LOGPROBS);
  range(body.frequency_penalty, "frequency_penalty", -2, 2);
  range(body.presence_penalty, "presence_penalty", -2, 2);
  return {
    fim: { prompt: body.prompt, suffix: body.suffix ?? null },
    thinking: { type: "disabled" as const },
    max_tokens: maxTokens(body.max_tokens, "max_tokens", MAX_FIM_OUTPUT_TOKENS),
    stop: stopStrings(body.stop),
    temperature: range(body.temperature, "temperature", 0, 2),
    top_p: range(body.top_p, "top_p", 0, 1),
    seed: body.seed ?? undefined,
    logprobs: top !== undefined,
    top_logprobs: top,
    priority: body.priority ?? undefined,
    min_tokens: body.min_tokens ?? undefined,
    ignore_eos: body.ignore_eos ?? undefined,
  };
}

async function handleFim(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const body = parseWith(fimRequestSchema, request.body);
  const model = ctx.models.resolve(body.model);
  const generate = prepareFim(body);
  const ident = identityFor(ctx, model);
  const disconnect = abortOnDisconnect(reply.raw);
  const engineRequest = { ...generate, tenant: tenantOf(request), id: ident.id, signal: disconnect.signal };
  const running = body.stream === true ? RunningUsage.forRequest(body.stream_options, ctx.engine, engineRequest) : null;
  const started = await startGeneration(ctx, request, engineRequest, model);
  const echo = body.echo === true ? body.prompt : "";
  const head = { id: ident.id, object: "text_completion" as const, created: ident.created, model, system_fingerprint: ident.system_fingerprint };
  const choice = (text: string, logprobs: CompletionLogprobs | null, finish: FinishReason | null) => ({ index: 0, text, logprobs, finish_reason: finish });

  if (body.stream !== true) {
    await jsonWithKeepAlive(reply, ctx.keepAliveMs, async () => {
      const finish = await drain(started);
      serverTiming(reply, finish.stats);
      const usage = bill(ctx, request, finish.usage, finish.stats, finish.finish_reason);
      const lp = generate.logprobs ? legacyLogprobs(finish.logprobs?.content ?? [], echo.length) : null;
      return { ...head, choices: [choice(echo + finish.message.content, lp, finish.finish_reason)], usage };
    });
    return reply;
  }

  let pending: TokenLogprob[] = [];
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
      if (echo !== "") await sse.data({ ...head, choices: [choice(echo, null, null)], usage: running?.fields ?? null });
    },
    event: async (e, sse) => {
      running?.observe(e);
      if (e.type === "token" && e.logprob) pending.push(e.logprob);
      else if (e.type === "content" && e.text !== "") await sse.data({ ...head, choices: [choice(e.text, takeLogprobs(), null)], usage: running?.fields ?? null });
      else if (e.type === "finish") {
        const usage: DeepSeekUsage = bill(ctx, request, e.usage, e.stats, e.finish_reason);
        await sse.data({ ...head, choices: [choice("", takeLogprobs(), e.finish_reason)], usage });
        if (body.stream_options?.include_usage === true) await sse.data({ ...head, choices: [], usage });
      }
    },
  });
  return reply;
}
