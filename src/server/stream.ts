/**
 * The SSE lifecycle of DeepSeek-format streams (chat and FIM): take over the socket, relay
 * events until the generation finishes or the client leaves, end with `[DONE]`, and on an
 * error tell a still-connected client why the stream stopped (spec §A.6 rule 8). A stream
 * that ends before its finish event cancels the generation.
 */
import type { FastifyReply } from "fastify";
import type { GenerationEvent } from "../engine/types.js";
import { toApiError } from "./errors.js";
import type { StartedGeneration } from "./generation.js";
import { hangUpOnReaderTimeout, SseWriter } from "./sse.js";

export async function streamDeepSeek(
  reply: FastifyReply,
  keepAliveMs: number,
  started: StartedGeneration,
  write: { first?: (sse: SseWriter) => Promise<void>; event: (e: GenerationEvent, sse: SseWriter) => Promise<void> },
): Promise<void> {
  reply.hijack();
  const sse = new SseWriter(reply.raw, { keepAliveMs });
  sse.open();
  hangUpOnReaderTimeout(reply.raw, started.generation);
  let finished = false;
  try {
    await write.first?.(sse);
    for await (const e of started) {
      if (sse.closed) break;
      if (e.type === "finish") finished = true;
      await write.event(e, sse);
    }
    if (finished) await sse.done();
  } catch (err) {
    if (!sse.closed) await sse.data(toApiError(err).body());
  } finally {
    if (!finished) started.cancel();
    sse.end();
  }
}
