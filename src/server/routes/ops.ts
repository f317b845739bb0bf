/**
 * Operational routes: GET /health (liveness, no key needed; also GET and POST /ping, the
 * SageMaker health check vLLM answers), GET /load (vLLM's {"server_load": requests in flight},
 * for routers that balance on it), GET /metrics (Prometheus text) and GET /user/balance
 * (spec §A.1, the key's budget less its spend in the ledger).
 */
import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { engineUnavailable } from "../errors.js";
import { prometheusText } from "../metrics.js";

export function opsRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const health = async () => {
    // A 503 in the error envelope when nothing can be served, so a liveness probe restarts it.
    const h = ctx.engine.health();
    if (!h.ok) throw engineUnavailable(`unhealthy: ${h.reason}`);
    const m = ctx.engine.metrics();
    return {
      status: "ok",
      model: ctx.models.primary,
      backend: ctx.engine.model.backend,
      context_length: ctx.engine.model.contextLength,
      encoding: ctx.engine.model.encoding,
      active_sequences: m.active_sequences,
      queued_requests: m.queued_requests,
    };
  };
  app.get("/health", health);
  app.get("/ping", health);
  app.post("/ping", health);

  // vLLM counts the requests it is serving only under --enable-server-load-tracking and
  // answers 0 otherwise; here the count is always kept (running and queued).
  app.get("/load", async () => {
    const m = ctx.engine.metrics();
    return { server_load: m.active_sequences + m.queued_requests };
  });

  app.get("/metrics", async (_request, reply) => {
    const { release, encoding } = ctx.engine.model;
    const text = prometheusText(ctx.engine.metrics(), ctx.stats, { model: ctx.models.primary, release, encoding });
    return reply.type("text/plain; version=0.0.4; charset=utf-8").send(text);
  });

  for (const path of ["/user/balance", "/v1/user/balance"]) {
    app.get(path, async (request) => {
      const key = request.apiKey;
      let total: number | null = null;
      if (key && ctx.ledger) {
        await ctx.settling.flush();
        const account = await ctx.ledger.findKey(key.id);
        if (account && account.budgetUsd !== null) total = Math.max(0, account.budgetUsd - account.spentUsd);
      }
      // Amounts are strings, as the hosted service sends them.
      return {
        is_available: total === null || total > 0,
        balance_infos: [
          {
            currency: "USD",
            total_balance: total === null ? "unlimited" : total.toFixed(6),
            granted_balance: "0.00",
            topped_up_balance: total === null ? "unlimited" : total.toFixed(6),
          },
        ],
      };
    });
  }
}
