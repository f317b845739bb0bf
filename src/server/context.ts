/** What every route shares: the engine, names, prices, keys, limits and counters. */
import type { FastifyRequest } from "fastify";
import type { EngineApi, GenerationStats } from "../engine/types.js";
import type { ApiKey, KeyRing } from "./auth.js";
import type { ServerStats } from "./metrics.js";
import type { ModelNames } from "./models.js";
import type { PriceTable } from "./usage.js";

export interface ServerContext {
  engine: EngineApi;
  models: ModelNames;
  prices: PriceTable;
  keys: KeyRing;
  stats: ServerStats;
  /** Keep-alive cadence while nothing else is sent (spec §A.6 rule 7). */
  keepAliveMs: number;
  /** How long to wait for a generation's first event before committing a 200. */
  firstEventWaitMs: number;
  samplingInThinking: boolean;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The API key the request authenticated with (undefined when keys are off). */
    apiKey: ApiKey | undefined;
  }
}

/**
 * Adds a finished request's cost to the server total and to its key's spend, and logs the
 * generation (with --log): its cost and speculative decoding's drafted and accepted tokens.
 */
export function charge(ctx: ServerContext, request: FastifyRequest, costUsd: number, stats?: GenerationStats): void {
  ctx.stats.costUsd += costUsd;
  if (request.apiKey) request.apiKey.spent += costUsd;
  if (stats) {
    const s = stats.speculative;
    request.log.info({ cost_usd: costUsd, spec_draft_tokens: s.drafted, spec_accepted_tokens: s.accepted, decode_tokens_per_s: stats.decodeTokensPerSecond }, "generation finished");
  }
}

/** The prefix-cache tenant of a request: its API key's, or "" when keys are off. */
export function tenantOf(request: FastifyRequest): string {
  return request.apiKey?.tenant ?? "";
}
