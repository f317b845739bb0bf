/** What every route shares: the engine, names, prices, keys, limits and counters. */
import type { FastifyRequest } from "fastify";
import type { EngineApi, EngineUsage, GenerationStats } from "../engine/types.js";
import type { Ledger } from "../ledger/types.js";
import type { ApiKey, KeyRing } from "./auth.js";
import type { Settling } from "./billing.js";
import type { ServerStats } from "./metrics.js";
import type { ModelNames } from "./models.js";
import { pricesAt, type PriceSchedule } from "./prices.js";
import { toDeepSeekUsage, type DeepSeekUsage } from "./usage.js";

export interface ServerContext {
  engine: EngineApi;
  models: ModelNames;
  prices: PriceSchedule;
  /** Milliseconds since the epoch; the arrival time of a request decides its prices. */
  clock: () => number;
  keys: KeyRing;
  /** Keys, budgets and the per-request ledger; null when keys are off (billing.ts). */
  ledger: Ledger | null;
  /** Ledger settlements in flight. */
  settling: Settling;
  stats: ServerStats;
  /** Keep-alive cadence while nothing else is sent (spec §A.6 rule 7). */
  keepAliveMs: number;
  /** How long to wait for a generation's first event before committing a 200. */
  firstEventWaitMs: number;
  samplingInThinking: boolean;
  /** Largest max_tokens a request may ask for (ServerOptions.maxOutputTokens). */
  maxOutputTokens: number;
  /** Refuse what the hosted service refuses (ServerOptions.strictApi). */
  strictApi: boolean;
  /** The built web playground's directory, or false for none (ServerOptions.playground). */
  playground?: string | false;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The API key the request authenticated with (undefined when keys are off). */
    apiKey: ApiKey | undefined;
    /** ServerContext.clock when the request arrived. */
    receivedAt: number;
  }
}

/**
 * A finished request's usage, priced at its arrival time (a request that runs
 * into a peak window keeps the price it was accepted at), and its cost added to
 * the server total (the key's ledger is settled from the same finish event, billing.ts). The
 * usage, `stats` and finish reason go into the request's log line (request-log.ts); with fastify's logger on, the generation is logged there too.
 */
export function bill(ctx: ServerContext, request: FastifyRequest, usage: EngineUsage, stats?: GenerationStats, finishReason?: string): DeepSeekUsage {
  const out = toDeepSeekUsage(usage, pricesAt(ctx.prices, request.receivedAt));
  ctx.stats.costUsd += out.cost;
  request.outcome = { usage: out, stats, finishReason };
  if (stats) {
    const s = stats.speculative;
    request.log.info({ cost_usd: out.cost, spec_draft_tokens: s.drafted, spec_accepted_tokens: s.accepted, decode_tokens_per_s: stats.decodeTokensPerSecond }, "generation finished");
  }
  return out;
}

/** The prefix-cache tenant of a request: its API key's, or "" when keys are off. */
export function tenantOf(request: FastifyRequest): string {
  return request.apiKey?.tenant ?? "";
}
