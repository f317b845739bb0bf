/**
 * The ledger over SQL (Postgres or PGlite, one schema: schema.ts). A reservation is one statement:
 * the UPDATE of the key's row checks `spent + reserved + amount <= budget` under that row's lock,
 * so concurrent reservations on one key queue on the lock and each sees the others' holds; no
 * number of parallel requests can hold more than the budget. Settling is one statement too: the
 * hold is deleted, the cost moves to spent, the rest is released and the request's row written.
 */
import { randomUUID } from "node:crypto";
import { checkPlainKey, keyDigest, keyTenant, newKeyId, newPlainKey } from "./key-material.js";
import { decimalText, toPico } from "./money.js";
import type { SqlClient } from "./sql-client.js";
import type { KeyAccount, KeySeed, Ledger, LedgerKey, ReserveOutcome, UsageQuery, UsageRecord } from "./types.js";

const KEY_COLUMNS = `k.id, k.name, k.key_digest, k.tenant, k.budget_usd::float8 AS budget_usd, k.created, k.disabled`;
const ACCOUNT_COLUMNS = `${KEY_COLUMNS}, k.spent_usd::float8 AS spent_usd, k.reserved_usd::float8 AS reserved_usd,
  k.requests::int AS requests`;

const REQUEST_COLUMNS = `request_id, key_id, created, model, prompt_tokens, prompt_cache_hit_tokens, completion_tokens,
  cost_usd::float8 AS cost_usd, latency_ms, upstream, finish_reason`;

interface KeyRow {
  id: string;
  name: string | null;
  key_digest: string;
  tenant: string;
  budget_usd: number | null;
  created: number;
  disabled: boolean;
}
interface AccountRow extends KeyRow {
  spent_usd: number;
  reserved_usd: number;
  requests: number;
}
interface RequestRow {
  request_id: string;
  key_id: string;
  created: number;
  model: string;
  prompt_tokens: number;
  prompt_cache_hit_tokens: number;
  completion_tokens: number;
  cost_usd: number;
  latency_ms: number;
  upstream: string | null;
  finish_reason: string | null;
}

const toKey = (r: KeyRow): LedgerKey => ({
  id: r.id,
  name: r.name,
  digest: r.key_digest,
  tenant: r.tenant,
  budgetUsd: r.budget_usd === null ? null : Number(r.budget_usd),
  created: Number(r.created),
  disabled: r.disabled,
});
const toAccount = (r: AccountRow): KeyAccount => ({ ...toKey(r), spentUsd: Number(r.spent_usd), reservedUsd: Number(r.reserved_usd), requests: Number(r.requests) });
const toRecord = (r: RequestRow): UsageRecord => ({
  requestId: r.request_id,
  keyId: r.key_id,
  created: Number(r.created),
  model: r.model,
  promptTokens: r.prompt_tokens,
  promptCacheHitTokens: r.prompt_cache_hit_tokens,
  completionTokens: r.completion_tokens,
  costUsd: Number(r.cost_usd),
  latencyMs: Number(r.latency_ms),
  upstream: r.upstream,
  finishReason: r.finish_reason,
});
const budgetText = (usd: number | null | undefined) => (usd === null || usd === undefined ? null : decimalText(toPico(usd)));

export class SqlLedger implements Ledger {
  constructor(
    private readonly db: SqlClient,
    readonly backend: string,
    readonly location: string,
  ) {}

  async createKey(options: { name?: string | null; budgetUsd?: number | null; plain?: string }): Promise<{ key: LedgerKey; plain: string }> {
    const plain = options.plain ?? newPlainKey();
    checkPlainKey(plain);
    const rows = await this.db.query<KeyRow>(
      `INSERT INTO keys AS k (id, name, key_digest, tenant, budget_usd, created) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${KEY_COLUMNS}`,
      [newKeyId(), options.name ?? null, keyDigest(plain).toString("hex"), keyTenant(plain), budgetText(options.budgetUsd), Date.now() / 1000],
    ).catch((err: Error & { code?: string }) => {
      if (err.code === "23505") throw new Error("that key already exists in the ledger");
      throw err;
    });
    return { key: toKey(rows[0]!), plain };
  }

  async seedKey(seed: KeySeed): Promise<LedgerKey> {
    const budgetGiven = seed.budgetUsd !== undefined;
    const rows = await this.db.query<KeyRow>(
      `INSERT INTO keys AS k (id, name, key_digest, tenant, budget_usd, created) VALUES ($1, NULL, $2, $3, $4, $5)
       ON CONFLICT (key_digest) DO UPDATE SET budget_usd = CASE WHEN $6::boolean THEN EXCLUDED.budget_usd ELSE k.budget_usd END
       RETURNING ${KEY_COLUMNS}`,
      [seed.id, seed.digest, seed.tenant, budgetText(seed.budgetUsd), Date.now() / 1000, budgetGiven],
    );
    return toKey(rows[0]!);
  }

  async listKeys(): Promise<KeyAccount[]> {
    return (await this.db.query<AccountRow>(`SELECT ${ACCOUNT_COLUMNS} FROM keys k ORDER BY k.created, k.id`)).map(toAccount);
  }

  async findKey(idOrName: string): Promise<KeyAccount | undefined> {
    const rows = await this.db.query<AccountRow>(`SELECT ${ACCOUNT_COLUMNS} FROM keys k WHERE k.id = $1 OR k.name = $1 ORDER BY (k.id = $1) DESC, k.created LIMIT 1`, [idOrName]);
    return rows[0] ? toAccount(rows[0]) : undefined;
  }

  async disableKey(id: string): Promise<boolean> {
    return (await this.db.query(`UPDATE keys SET disabled = true WHERE id = $1 RETURNING id`, [id])).length === 1;
  }

  async setBudget(id: string, budgetUsd: number | null): Promise<boolean> {
    return (await this.db.query(`UPDATE keys SET budget_usd = $2 WHERE id = $1 RETURNING id`, [id, budgetText(budgetUsd)])).length === 1;
  }

  async reserve(keyId: string, amountUsd: number): Promise<ReserveOutcome> {
    const id = randomUUID();
    const rows = await this.db.query(
      `WITH held AS (
         UPDATE keys SET reserved_usd = reserved_usd + $2::numeric
         WHERE id = $1 AND NOT disabled AND (budget_usd IS NULL OR spent_usd + reserved_usd + $2::numeric <= budget_usd)
         RETURNING id)
       INSERT INTO reservations (id, key_id, amount_usd) SELECT $3, held.id, $2::numeric FROM held RETURNING id`,
      [keyId, decimalText(toPico(amountUsd, true)), id],
    );
    if (rows.length === 1) return { ok: true, reservationId: id };
    const key = await this.db.query<{ disabled: boolean }>(`SELECT disabled FROM keys WHERE id = $1`, [keyId]);
    return { ok: false, reason: key.length === 0 ? "unknown_key" : key[0]!.disabled ? "disabled" : "insufficient_balance" };
  }

  async settle(reservationId: string, r: UsageRecord): Promise<void> {
    await this.db.query(
      `WITH hold AS (DELETE FROM reservations WHERE id = $1 RETURNING key_id, amount_usd),
       moved AS (
         UPDATE keys SET reserved_usd = keys.reserved_usd - hold.amount_usd, spent_usd = keys.spent_usd + $2::numeric, requests = keys.requests + 1
         FROM hold WHERE keys.id = hold.key_id RETURNING keys.id, hold.amount_usd)
       INSERT INTO requests (request_id, key_id, created, model, prompt_tokens, prompt_cache_hit_tokens, completion_tokens, cost_usd, reserved_usd, latency_ms, upstream, finish_reason)
       SELECT $3, moved.id, $4, $5, $6, $7, $8, $2::numeric, moved.amount_usd, $9, $10, $11 FROM moved`,
      [reservationId, decimalText(toPico(r.costUsd)), r.requestId, r.created, r.model, r.promptTokens, r.promptCacheHitTokens, r.completionTokens, r.latencyMs, r.upstream, r.finishReason],
    );
  }

  async recent(query: UsageQuery = {}): Promise<UsageRecord[]> {
    const limit = query.limit ?? 50;
    const rows =
      query.keyId === undefined
        ? await this.db.query<RequestRow>(`SELECT ${REQUEST_COLUMNS} FROM requests ORDER BY seq DESC LIMIT $1`, [limit])
        : await this.db.query<RequestRow>(`SELECT ${REQUEST_COLUMNS} FROM requests WHERE key_id = $1 ORDER BY seq DESC LIMIT $2`, [query.keyId, limit]);
    return rows.map(toRecord);
  }

  async totalCostUsd(keyId?: string): Promise<number> {
    const rows =
      keyId === undefined
        ? await this.db.query<{ total: number }>(`SELECT coalesce(sum(cost_usd), 0)::float8 AS total FROM requests`)
        : await this.db.query<{ total: number }>(`SELECT coalesce(sum(cost_usd), 0)::float8 AS total FROM requests WHERE key_id = $1`, [keyId]);
    return Number(rows[0]!.total);
  }

  async releaseStale(maxAgeSeconds: number): Promise<number> {
    const rows = await this.db.query<{ n: number }>(
      `WITH gone AS (DELETE FROM reservations WHERE created_at < now() - make_interval(secs => $1) RETURNING key_id, amount_usd),
       per_key AS (SELECT key_id, sum(amount_usd) AS amount, count(*) AS n FROM gone GROUP BY key_id),
       released AS (UPDATE keys SET reserved_usd = keys.reserved_usd - per_key.amount FROM per_key WHERE keys.id = per_key.key_id RETURNING per_key.n)
       SELECT coalesce(sum(n), 0)::int AS n FROM released`,
      [maxAgeSeconds],
    );
    return Number(rows[0]!.n);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
