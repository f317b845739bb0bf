/**
 * POST /responses (also /v1/… and /beta/…): OpenAI's Responses API, stateless (spec §A.12),
 * on the same engine request the chat route builds.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { bill, tenantOf, type ServerContext } from "../context.js";
import { toApiError } from "../errors.js";
import { startGeneration } from "../billing.js";
import type { StartedGeneration } from "../generation.js";
import { drain, jsonWithKeepAlive, serverTiming } from "../respond.js";
import { prepareResponses, type PreparedResponses } from "../responses/request.js";
import { finalStatus, itemId, itemStatus, outputItems, responseObject, responsesUsage, type ResponseIdentity } from "../responses/response.js";
import { responsesRequestSchema } from "../responses/schema.js";
import { ResponsesStreamer } from "../responses/stream.js";
import { abortOnDisconnect, hangUpOnReaderTimeout, SseWriter } from "../sse.js";
import { parseWith } from "../validate.js";

export function responsesRoutes(app: FastifyInstance, ctx: ServerContext): void {
  for (const [path, beta] of [
    ["/responses", false],
    ["/v1/responses", false],
    ["/beta/responses", true],
  ] as const) {
    app.post(path, (request, reply) => handleResponses(ctx, request, reply, beta));
  }
}

async function handleResponses(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, beta: boolean): Promise<FastifyReply> {
  const body = parseWith(responsesRequestSchema, request.body);
  const model = ctx.models.resolve(body.model);
  const prepared = prepareResponses(body, { beta, samplingInThinking: ctx.samplingInThinking, maxOutputTokens: ctx.maxOutputTokens, strictApi: ctx.strictApi });
  const ident: ResponseIdentity = { id: itemId("resp"), created_at: Math.floor(Date.now() / 1000), model };
  const disconnect = abortOnDisconnect(reply.raw);
  const started = await startGeneration(ctx, request, { ...prepared.request, tenant: tenantOf(request), id: ident.id, signal: disconnect.signal }, model);
  if (prepared.stream) {
    await streamResponse(ctx, request, reply, prepared, ident, started);
    return reply;
  }
  await jsonWithKeepAlive(reply, ctx.keepAliveMs, async () => {
    const finish = await drain(started);
    serverTiming(reply, finish.stats);
    const usage = responsesUsage(bill(ctx, request, finish.usage, finish.stats, finish.finish_reason));
    const status = finalStatus(finish.finish_reason);
    return responseObject(ident, prepared.echo, { output: outputItems(finish.message, prepared.thinking, itemStatus(status.status)), usage, status });
  });
  return reply;
}

async function streamResponse(
  ctx: ServerContext,
  request: FastifyRequest,
  reply: FastifyReply,
  prepared: PreparedResponses,
  ident: ResponseIdentity,
  started: StartedGeneration,
): Promise<void> {
  reply.hijack();
  const sse = new SseWriter(reply.raw, { keepAliveMs: ctx.keepAliveMs });
  const streamer = new ResponsesStreamer((event, payload) => sse.event(event, payload), ident, prepared.echo);
  sse.open();
  hangUpOnReaderTimeout(reply.raw, started.generation);
  let finished = false;
  try {
    await streamer.start();
    for await (const e of started) {
      if (sse.closed) break;
      switch (e.type) {
        case "reasoning":
        case "content":
        case "tool_arguments":
          if (e.text !== "") await streamer.delta(e);
          break;
        case "tool_call":
          await streamer.delta(e);
          break;
        case "finish":
          finished = true;
          await streamer.finish(e.finish_reason, responsesUsage(bill(ctx, request, e.usage, e.stats, e.finish_reason)));
          break;
        default:
          // queued / prefill / token / usage: keep-alive comments cover the silence.
          break;
      }
    }
  } catch (err) {
    if (!sse.closed) await streamer.error(toApiError(err).body().error);
  } finally {
    if (!finished) started.cancel();
    sse.end();
  }
}
