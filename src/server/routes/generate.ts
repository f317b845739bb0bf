/**
 * POST /generate: token in, token out, for a gateway in front of dsv4 replicas (src/gateway/).
 * The wire shape is SGLang's native `/generate` (`input_ids`, `sampling_params`, `stream`;
 * answers with `output_ids` and `meta_info`), so the gateway's SGLang adapter serves dsv4
 * upstreams too. The text layer is bypassed: no template, no output parsing on the way out.
 * A `dsv4` object carries what only dsv4 replicas honour: how the ids were rendered (thinking
 * mode), so that tool_choice, response_format and reasoning_budget are enforced while decoding
 * exactly as for a chat request, and the prefix-cache salt of the gateway's tenant.
 *
 * Streamed chunks carry the new `output_ids` only (SGLang's `--stream-output` behaviour) and the
 * running `meta_info.completion_tokens`; the last chunk has `meta_info.finish_reason`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { FinishEvent, GenerateRequest } from "../../engine/types.js";
import { tenantOf, type ServerContext } from "../context.js";
import { invalidRequest, toApiError } from "../errors.js";
import { startGeneration } from "../billing.js";
import { drain, serverTiming } from "../respond.js";
import { abortOnDisconnect, SseWriter } from "../sse.js";

/** SGLang's finish reason object. */
export type TokenFinishReason = { type: "stop"; matched: string | number | null } | { type: "length"; length: number } | { type: "abort"; message: string };

export interface TokenMetaInfo {
  id: string;
  finish_reason: TokenFinishReason | null;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  /** On the last chunk: the engine's time on the request in seconds (SGLang's field). */
  e2e_latency?: number;
}

export function generateRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post("/generate", (request, reply) => handleGenerate(ctx, request, reply));
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function numberOrNull(v: unknown, param: string): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "number" || !Number.isFinite(v)) throw invalidRequest(param, `${param} must be a number`);
  return v;
}

/**
 * The SGLang-shaped body as an engine request (the engine checks ranges and ids). SGLang also
 * takes a `text` instead of `input_ids` (what its bench_serving sends by default): `tokenize`
 * turns it into ids, with the tokenizer config's special tokens as SGLang's tokenizer adds them.
 */
export function tokenRequest(body: unknown, tenant: string, tokenize?: (text: string) => number[]): { request: GenerateRequest; stream: boolean } {
  if (!isObject(body)) throw invalidRequest("body", "the body must be a JSON object");
  let ids = body.input_ids;
  if ((ids === undefined || ids === null) && typeof body.text === "string" && tokenize) {
    if (body.text === "") throw invalidRequest("text", "text must not be empty");
    ids = tokenize(body.text);
  }
  if (!Array.isArray(ids) || ids.length === 0) throw invalidRequest("input_ids", "input_ids (or text) must be a non-empty array of token ids");
  const sp = body.sampling_params ?? {};
  if (!isObject(sp)) throw invalidRequest("sampling_params", "sampling_params must be an object");
  const ext = body.dsv4 ?? {};
  if (!isObject(ext)) throw invalidRequest("dsv4", "dsv4 must be an object");
  const topK = numberOrNull(sp.top_k, "sampling_params.top_k");
  const salt = ext.cache_salt ?? "";
  if (typeof salt !== "string") throw invalidRequest("dsv4.cache_salt", "dsv4.cache_salt must be a string");
  const request: GenerateRequest = {
    prompt_tokens: ids as number[],
    max_tokens: numberOrNull(sp.max_new_tokens, "sampling_params.max_new_tokens"),
    temperature: numberOrNull(sp.temperature, "sampling_params.temperature"),
    top_p: numberOrNull(sp.top_p, "sampling_params.top_p"),
    // SGLang's "off" is -1; the engine's is 0.
    top_k: topK !== null && topK < 0 ? 0 : topK,
    min_p: numberOrNull(sp.min_p, "sampling_params.min_p"),
    seed: numberOrNull(sp.sampling_seed, "sampling_params.sampling_seed"),
    min_tokens: numberOrNull(sp.min_new_tokens, "sampling_params.min_new_tokens"),
    stop_token_ids: (sp.stop_token_ids ?? undefined) as GenerateRequest["stop_token_ids"],
    ignore_eos: sp.ignore_eos === undefined || sp.ignore_eos === null ? undefined : (sp.ignore_eos as boolean),
    prompt_tokens_mode: (ext.prompt_tokens_mode ?? null) as GenerateRequest["prompt_tokens_mode"],
    tools: (ext.tools ?? null) as GenerateRequest["tools"],
    tool_choice: (ext.tool_choice ?? null) as GenerateRequest["tool_choice"],
    response_format: (ext.response_format ?? null) as GenerateRequest["response_format"],
    reasoning_budget: numberOrNull(ext.reasoning_budget, "dsv4.reasoning_budget"),
    priority: numberOrNull(ext.priority, "dsv4.priority") ?? undefined,
    tenant,
    // The gateway's own tenant and user_id, already combined into one salt (cache-salt.ts).
    user_id: salt,
  };
  if (typeof body.rid === "string") request.id = body.rid;
  return { request, stream: body.stream === true };
}

function finishReason(e: FinishEvent): TokenFinishReason {
  if (e.finish_reason === "length") return { type: "length", length: e.usage.completion_tokens };
  return { type: "stop", matched: null };
}

function meta(id: string, e: FinishEvent | null, prompt: number, completion: number, cached: number): TokenMetaInfo {
  const m: TokenMetaInfo = { id, finish_reason: e ? finishReason(e) : null, prompt_tokens: prompt, completion_tokens: completion, cached_tokens: cached };
  if (e) m.e2e_latency = e.stats.engineMs / 1000;
  return m;
}

async function handleGenerate(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { request: generate, stream } = tokenRequest(request.body, tenantOf(request), (text) => ctx.engine.tokenize(text, { addSpecialTokens: true }));
  const disconnect = abortOnDisconnect(reply.raw);
  const started = await startGeneration(ctx, request, { ...generate, signal: disconnect.signal }, ctx.models.primary);
  const id = started.generation.id;
  if (!stream) {
    const ids: number[] = [];
    const finish = await drain(started, (e) => {
      if (e.type === "token") ids.push(e.id);
    });
    const u = finish.usage;
    serverTiming(reply, finish.stats);
    return reply.send({ text: finish.message.content, output_ids: ids, meta_info: meta(id, finish, u.prompt_tokens, u.completion_tokens, u.prompt_cache_hit_tokens) });
  }
  reply.hijack();
  const sse = new SseWriter(reply.raw, { keepAliveMs: ctx.keepAliveMs });
  sse.open(false);
  let finished: FinishEvent | null = null;
  let completion = 0;
  let prompt = generate.prompt_tokens!.length;
  let cached = 0;
  let pending: number[] = [];
  let text = "";
  const chunk = (finish: FinishEvent | null) => {
    const c = { text, output_ids: pending, meta_info: meta(id, finish, prompt, completion, cached) };
    pending = [];
    text = "";
    return c;
  };
  try {
    for await (const e of started) {
      if (sse.closed) break;
      if (e.type === "prefill") cached = e.cached;
      else if (e.type === "token") {
        pending.push(e.id);
        text += e.text;
        completion++;
        // The id that reaches max_new_tokens goes out with the finish that follows it at once, so
        // a reader that stops at its budget also has the finish's meta_info (e2e_latency, counts).
        if (completion < (generate.max_tokens ?? Infinity)) await sse.data(chunk(null));
      } else if (e.type === "finish") {
        finished = e;
        prompt = e.usage.prompt_tokens;
        cached = e.usage.prompt_cache_hit_tokens;
        completion = e.usage.completion_tokens;
      }
    }
    // The last chunk, [DONE] and the end of the answer in one write.
    if (finished) await sse.done(chunk(finished));
  } catch (err) {
    if (!sse.closed) await sse.data({ error: toApiError(err).body().error });
  } finally {
    if (!finished) started.cancel();
    sse.end();
  }
  return reply;
}
