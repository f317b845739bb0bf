/**
 * GET or POST /flush_cache (SGLang's; its bench_serving calls it before a run): empties the
 * prefix cache, disk tier included, when nothing runs or waits; otherwise a 400 saying so, and
 * nothing is dropped. A gateway sends it to every replica (UpstreamEngine.flushCache).
 */
import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { ApiError } from "../errors.js";

function notFlushed(why: string): ApiError {
  return new ApiError(400, why, "invalid_request_error", null, "cache_not_flushed");
}

export function flushCacheRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const flush = async () => {
    if (!ctx.engine.flushCache) throw notFlushed("this server has no prefix cache to flush");
    const r = await ctx.engine.flushCache();
    if (!r.flushed) throw notFlushed(`the prefix cache was not flushed: ${r.reason}`);
    return { flushed: true, entries: r.entries };
  };
  app.get("/flush_cache", flush);
  app.post("/flush_cache", flush);
}
