/**
 * POST /anthropic/v1/messages (spec §A.11): the Anthropic Messages API on the
 * same engine, for clients such as Claude Code. Also count_tokens.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { prepareAnthropic, type PreparedAnthropic } from "../anthropic/request.js";
import { AnthropicStreamer, anthropicError, anthropicUsage, contentBlocks, messageId, stopReason } from "../anthropic/response.js";
import { anthropicRequestSchema, countTokensSchema } from "../anthropic/schema.js";
import { bill, tenantOf, type ServerContext } from "../context.js";
import { toApiError } from "../errors.js";
import { startGeneration } from "../billing.js";
import type { StartedGeneration } from "../generation.js";
import { drain, jsonWithKeepAlive, serverTiming } from "../respond.js";
import { abortOnDisconnect, hangUpOnReaderTimeout, SseWriter } from "../sse.js";
import { parseWith } from "../validate.js";

export function anthropicRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post("/anthropic/v1/messages", (request, reply) => handleMessages(ctx, request, reply));
  app.post("/anthropic/v1/messages/count_tokens", async (request) => {
    const body = parseWith(countTokensSchema, request.body);
    const prepared = prepareAnthropic({ ...body, max_tokens: 1 });
    return { input_tokens: ctx.engine.promptTokens(prepared.request).length };
  });
}

async function handleMessages(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const body = parseWith(anthropicRequestSchema, request.body);
  const model = body.model;
  ctx.models.resolveAnthropic(model);
  const prepared = prepareAnthropic(body, ctx.maxOutputTokens);
  const id = messageId();
  const disconnect = abortOnDisconnect(reply.raw);
  const started = await startGeneration(ctx, request, { ...prepared.request, tenant: tenantOf(request), id, signal: disconnect.signal }, model);
  if (prepared.stream) {
    await streamMessages(ctx, request, reply, prepared, id, model, started);
    return reply;
  }
  await jsonWithKeepAlive(
    reply,
    ctx.keepAliveMs,
    async () => {
      const finish = await drain(started);
      serverTiming(reply, finish.stats);
      bill(ctx, request, finish.usage, finish.stats, finish.finish_reason);
      return {
        id,
        type: "message",
        role: "assistant",
        model,
        content: contentBlocks(finish.message, prepared.thinking),
        ...stopReason(finish.finish_reason, finish.message.stop_string),
        usage: anthropicUsage(finish.usage),
      };
    },
    (err) => anthropicError(toApiError(err)),
  );
  return reply;
}

async function streamMessages(
  ctx: ServerContext,
  request: FastifyRequest,
  reply: FastifyReply,
  prepared: PreparedAnthropic,
  id: string,
  model: string,
  started: StartedGeneration,
): Promise<void> {
  reply.hijack();
  const sse = new SseWriter(reply.raw, { keepAliveMs: ctx.keepAliveMs, keepAlive: `event: ping\ndata: {"type": "ping"}\n\n` });
  const emit = (event: string, payload: unknown) => sse.event(event, payload);
  const blocks = new AnthropicStreamer(emit);
  sse.open();
  hangUpOnReaderTimeout(reply.raw, started.generation);
  let finished = false;
  let started_ = false;
  const start = async (input: number, cached: number) => {
    if (started_) return;
    started_ = true;
    await emit("message_start", {
      type: "message_start",
      message: {
        id, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null,
        usage: { input_tokens: input, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: cached },
      },
    });
  };
  try {
    for await (const e of started) {
      if (sse.closed) break;
      switch (e.type) {
        case "queued":
        case "token":
        case "usage":
          break;
        case "prefill":
          await start(e.total - e.cached, e.cached);
          break;
        case "finish": {
          finished = true;
          await start(e.usage.prompt_cache_miss_tokens, e.usage.prompt_cache_hit_tokens);
          await blocks.close();
          bill(ctx, request, e.usage, e.stats, e.finish_reason);
          await emit("message_delta", { type: "message_delta", delta: stopReason(e.finish_reason, e.message.stop_string), usage: anthropicUsage(e.usage) });
          await emit("message_stop", { type: "message_stop" });
          break;
        }
        default:
          await start(0, 0);
          if ((e.type === "reasoning" || e.type === "content" || e.type === "tool_arguments") && e.text === "") break;
          await blocks.delta(e);
      }
    }
  } catch (err) {
    if (!sse.closed) await emit("error", anthropicError(toApiError(err)));
  } finally {
    if (!finished) started.cancel();
    sse.end();
  }
}
