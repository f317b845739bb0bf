/**
 * The body of GET /usage (/v1/usage): the contract between the server's usage route and the web
 * playground, which imports this type. Types only, so the playground's bundle takes nothing from here.
 */
export interface UsageReport {
  object: "usage";
  key: { id: string; name: string | null };
  budget_usd: number | null;
  spent_usd: number;
  reserved_usd: number;
  requests: number;
  /** The latest ledger rows, newest first. */
  recent: Array<{
    request_id: string;
    created: number;
    model: string;
    prompt_tokens: number;
    prompt_cache_hit_tokens: number;
    completion_tokens: number;
    cost_usd: number;
    latency_ms: number;
    upstream: string | null;
    finish_reason: string | null;
  }>;
}
