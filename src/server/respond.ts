/**
 * Response plumbing shared by the routes: the engine's events drained to a
 * finish event, and JSON answers that keep slow connections alive with blank
 * lines (spec §A.6 rule 7: clients skip leading whitespace before the body).
 */
import type { FastifyReply } from "fastify";
import type { FinishEvent, GenerationEvent, GenerationStats } from "../engine/types.js";
import { toApiError, serverError } from "./errors.js";

/** Runs the events to the end and returns the finish event. */
export async function drain(events: AsyncIterable<GenerationEvent>, onEvent?: (e: GenerationEvent) => void): Promise<FinishEvent> {
  let finish: FinishEvent | undefined;
  for await (const e of events) {
    onEvent?.(e);
    if (e.type === "finish") finish = e;
  }
  if (!finish) throw serverError("the generation ended without a result");
  return finish;
}

/**
 * `Server-Timing: engine;dur=…` (W3C Server Timing): the engine's own time on a request, so a
 * client, browser devtools or a benchmark can tell it from HTTP and gateway time.
 */
export function serverTiming(reply: FastifyReply, stats: GenerationStats): void {
  if (!reply.sent && !reply.raw.headersSent) reply.header("server-timing", `engine;dur=${stats.engineMs.toFixed(3)}`);
}

/**
 * Sends `produce()`'s object as JSON. If it takes longer than `keepAliveMs`,
 * the 200 is committed and a newline is written every interval until the body
 * is ready; an error after that point goes out as an error body.
 */
export async function jsonWithKeepAlive(
  reply: FastifyReply,
  keepAliveMs: number,
  produce: () => Promise<unknown>,
  errorBody: (err: unknown) => unknown = (err) => toApiError(err).body(),
): Promise<void> {
  let committed = false;
  const res = reply.raw;
  const timer =
    keepAliveMs > 0
      ? setInterval(() => {
          if (res.writableEnded || res.destroyed) return;
          if (!committed) {
            committed = true;
            reply.hijack();
            res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
          }
          res.write("\n");
        }, keepAliveMs)
      : undefined;
  timer?.unref();
  let body: unknown;
  try {
    body = await produce();
  } catch (err) {
    if (!committed) throw err;
    body = errorBody(err);
  } finally {
    if (timer) clearInterval(timer);
  }
  if (committed) {
    if (!res.writableEnded && !res.destroyed) res.end(JSON.stringify(body));
    return;
  }
  await reply.send(body);
}
