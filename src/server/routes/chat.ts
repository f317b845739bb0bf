/**
 * POST /chat/completions (also /v1/… and /beta/…): DeepSeek's chat API
 * (spec §A.2–§A.6) on the engine.
 */
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { prepareChat, type PreparedChat } from "../chat-request.js";
import { ChatChunker, completionBody, type ResponseIdentity } from "../chat-chunks.js";
import { bill, tenantOf, type ServerContext } from "../context.js";
import { startGeneration } from "../billing.js";
import type { StartedGeneration } from "../generation.js";
import { drain, jsonWithKeepAlive, serverTiming } from "../respond.js";
import { chatRequestSchema } from "../schemas.js";
import { RunningUsage } from "../running-usage.js";
import { abortOnDisconnect } from "../sse.js";
import { streamDeepSeek } from "../stream.js";
import { parseWith } from "../validate.js";

export function identityFor(ctx: ServerContext, model: string): ResponseIdentity {
  return { id: randomUUID(), created: Math.floor(Date.now() / 1000), model, system_fingerprint: ctx.engine.model.systemFingerprint };
}

export function chatRoutes(app: FastifyInstance, ctx: ServerContext): void {
  for (const [path, beta] of [
    ["/chat/completions", false],
    ["/v1/chat/completions", false],
    ["/beta/chat/completions", true],
  ] as const) {
    app.post(path, (request, reply) => handleChat(ctx, request, reply, beta));
  }
}

async function handleChat(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, beta: boolean): Promise<FastifyReply> {
  const body = parseWith(chatRequestSchema, request.body);
  const model = ctx.models.resolve(body.model);
  const prepared = prepareChat(body, { beta, samplingInThinking: ctx.samplingInThinking, maxOutputTokens: ctx.maxOutputTokens, strictApi: ctx.strictApi });
  const ident = identityFor(ctx, model);
  const disconnect = abortOnDisconnect(reply.raw);
  const generate = { ...prepared.request, tenant: tenantOf(request), id: ident.id, signal: disconnect.signal };
  const running = prepared.stream ? RunningUsage.forRequest(body.stream_options, ctx.engine, generate) : null;
  const started = await startGeneration(ctx, request, generate, model);
  if (prepared.stream) {
    await streamChat(ctx, request, reply, prepared, ident, started, running);
    return reply;
  }
  await jsonWithKeepAlive(reply, ctx.keepAliveMs, async () => {
    const finish = await drain(started);
    serverTiming(reply, finish.stats);
    const usage = bill(ctx, request, finish.usage, finish.stats, finish.finish_reason);
    return completionBody(ident, finish, usage, prepared.thinking, prepared.logprobs);
  });
  return reply;
}

async function streamChat(
  ctx: ServerContext,
  request: FastifyRequest,
  reply: FastifyReply,
  prepared: PreparedChat,
  ident: ResponseIdentity,
  started: StartedGeneration,
  running: RunningUsage | null,
): Promise<void> {
  const chunker = new ChatChunker(ident, prepared.thinking, prepared.logprobs, running);
  await streamDeepSeek(reply, ctx.keepAliveMs, started, {
    first: (sse) => sse.data(chunker.first()),
    event: async (e, sse) => {
      running?.observe(e);
      switch (e.type) {
        case "token":
          chunker.token(e.phase, e.logprob);
          break;
        case "reasoning":
        case "content":
        case "tool_arguments":
          if (e.text !== "") await sse.data(chunker.delta(e));
          break;
        case "tool_call":
          await sse.data(chunker.delta(e));
          break;
        case "finish": {
          const usage = bill(ctx, request, e.usage, e.stats, e.finish_reason);
          await sse.data(chunker.finish(e.finish_reason, usage));
          if (prepared.includeUsage) await sse.data(chunker.usageOnly(usage));
          break;
        }
        default:
          // queued / prefill / usage: the keep-alive timer covers the silence.
          break;
      }
    },
  });
}
