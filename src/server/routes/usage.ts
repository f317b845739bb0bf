/**
 * GET /usage (also /v1/usage): the caller's own key, budget, spend, holds of running requests and
 * its latest ledger rows (newest first, at most 50). The contract the playground reads; without
 * keys there is no account and the route answers 404 in the error envelope.
 */
import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { ApiError } from "../errors.js";
import type { UsageReport } from "../usage-report.js";

const RECENT = 50;

export function usageRoutes(app: FastifyInstance, ctx: ServerContext): void {
  for (const path of ["/usage", "/v1/usage"]) {
    app.get(path, async (request): Promise<UsageReport> => {
      const key = request.apiKey;
      if (!ctx.ledger || !key) throw new ApiError(404, "usage is kept per API key; this server runs without keys (start it with --api-key, --api-keys-file or --database)", "invalid_request_error", "url", "not_found");
      // Settlements of requests that already answered are in before the read.
      await ctx.settling.flush();
      const [account, recent] = await Promise.all([ctx.ledger.findKey(key.id), ctx.ledger.recent({ keyId: key.id, limit: RECENT })]);
      if (!account) throw new ApiError(404, "this key is no longer in the ledger", "invalid_request_error", "authorization", "not_found");
      return {
        object: "usage",
        key: { id: account.id, name: account.name },
        budget_usd: account.budgetUsd,
        spent_usd: account.spentUsd,
        reserved_usd: account.reservedUsd,
        requests: account.requests,
        recent: recent.map((r) => ({
          request_id: r.requestId,
          created: Math.floor(r.created),
          model: r.model,
          prompt_tokens: r.promptTokens,
          prompt_cache_hit_tokens: r.promptCacheHitTokens,
          completion_tokens: r.completionTokens,
          cost_usd: r.costUsd,
          latency_ms: r.latencyMs,
          upstream: r.upstream,
          finish_reason: r.finishReason,
        })),
      };
    });
  }
}
