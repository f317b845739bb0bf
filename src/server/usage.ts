/**
 * Usage objects as the hosted service reports them (spec §A.5, §F) and what a
 * request costs under the prices in force (prices.ts). The cost is added to `usage` as `cost`
 * (USD), the field OpenRouter-style clients already read; DeepSeek's own
 * clients ignore unknown usage fields.
 */
import type { EngineUsage } from "../engine/types.js";
import type { PriceTable } from "./prices.js";

export interface DeepSeekUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
  prompt_cache_hit_tokens: number;
  prompt_cache_miss_tokens: number;
  /** dsv4: this request's price in USD under the server's price table. */
  cost: number;
}

/** Cost in USD; reasoning tokens are billed as output (they are inside completion_tokens). */
export function costOf(usage: Pick<EngineUsage, "prompt_cache_hit_tokens" | "prompt_cache_miss_tokens" | "completion_tokens">, prices: PriceTable): number {
  const micro =
    usage.prompt_cache_hit_tokens * prices.cacheHitInput + usage.prompt_cache_miss_tokens * prices.cacheMissInput + usage.completion_tokens * prices.output;
  // Rounded to 1e-12 USD so float noise does not show up in responses.
  return Math.round(micro * 1e6) / 1e12;
}

/** The engine's usage in DeepSeek's field order, with the invariants of §A.5 enforced. */
export function toDeepSeekUsage(usage: EngineUsage, prices: PriceTable): DeepSeekUsage {
  const hit = usage.prompt_cache_hit_tokens;
  const miss = usage.prompt_cache_miss_tokens;
  const prompt = hit + miss;
  return {
    prompt_tokens: prompt,
    completion_tokens: usage.completion_tokens,
    total_tokens: prompt + usage.completion_tokens,
    prompt_tokens_details: { cached_tokens: hit },
    completion_tokens_details: { reasoning_tokens: usage.completion_tokens_details?.reasoning_tokens ?? 0 },
    prompt_cache_hit_tokens: hit,
    prompt_cache_miss_tokens: miss,
    cost: costOf(usage, prices),
  };
}
