/**
 * Usage objects as the hosted service reports them (spec §A.5, §F) and what a
 * request costs under a price table. The cost is added to `usage` as `cost`
 * (USD), the field OpenRouter-style clients already read; DeepSeek's own
 * clients ignore unknown usage fields.
 */
import type { EngineUsage } from "../engine/types.js";

/** USD per 1M tokens. */
export interface PriceTable {
  cacheHitInput: number;
  cacheMissInput: number;
  output: number;
}

/**
 * The model card's $0.14 input / $0.28 output, with the cache-hit price that
 * has applied since 2026-04-26 (spec §F.1).
 */
export const DEFAULT_PRICES: PriceTable = { cacheHitInput: 0.0028, cacheMissInput: 0.14, output: 0.28 };

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

/**
 * A price table from JSON: `{"cache_hit_input":…, "cache_miss_input":…, "output":…}`
 * (USD per 1M tokens); missing keys keep their defaults.
 */
export function parsePriceTable(json: unknown, base: PriceTable = DEFAULT_PRICES): PriceTable {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new Error("a price table must be a JSON object");
  const o = json as Record<string, unknown>;
  const pick = (key: string, fallback: number): number => {
    const v = o[key];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new Error(`price "${key}" must be a non-negative number (USD per 1M tokens)`);
    return v;
  };
  const known = new Set(["cache_hit_input", "cache_miss_input", "output"]);
  const unknown = Object.keys(o).find((k) => !known.has(k));
  if (unknown !== undefined) throw new Error(`unknown price "${unknown}"; prices are cache_hit_input, cache_miss_input, output`);
  return {
    cacheHitInput: pick("cache_hit_input", base.cacheHitInput),
    cacheMissInput: pick("cache_miss_input", base.cacheMissInput),
    output: pick("output", base.output),
  };
}
