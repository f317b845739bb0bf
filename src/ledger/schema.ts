/**
 * The ledger's schema as numbered migrations, one list for Postgres and PGlite (PGlite is
 * Postgres). Applied in order, each once, recorded in schema_migrations; a transaction-scoped
 * advisory lock keeps two processes starting on one database from applying them twice.
 *
 * Money columns are numeric(24,12): usage.cost has 12 decimals, and exact sums keep the ledger
 * equal to the sum of the responses' usage.cost.
 */
import type { SqlClient } from "./sql-client.js";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "keys, reservations, requests",
    sql: `
      CREATE TABLE keys (
        id text PRIMARY KEY,
        name text,
        key_digest text NOT NULL UNIQUE,
        tenant text NOT NULL,
        budget_usd numeric(24,12) CHECK (budget_usd IS NULL OR budget_usd >= 0),
        spent_usd numeric(24,12) NOT NULL DEFAULT 0,
        reserved_usd numeric(24,12) NOT NULL DEFAULT 0,
        requests bigint NOT NULL DEFAULT 0,
        created double precision NOT NULL,
        disabled boolean NOT NULL DEFAULT false
      );
      CREATE TABLE reservations (
        id text PRIMARY KEY,
        key_id text NOT NULL REFERENCES keys(id),
        amount_usd numeric(24,12) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE requests (
        seq bigserial PRIMARY KEY,
        request_id text NOT NULL,
        key_id text NOT NULL REFERENCES keys(id),
        created double precision NOT NULL,
        model text NOT NULL,
        prompt_tokens integer NOT NULL,
        prompt_cache_hit_tokens integer NOT NULL,
        completion_tokens integer NOT NULL,
        cost_usd numeric(24,12) NOT NULL,
        reserved_usd numeric(24,12) NOT NULL,
        latency_ms double precision NOT NULL,
        upstream text,
        finish_reason text
      );
      CREATE INDEX requests_by_key ON requests (key_id, seq DESC);
    `,
  },
];

/** An arbitrary constant for pg_advisory_xact_lock: "dsv4" in ASCII. */
const MIGRATION_LOCK = 0x64737634;

/** Applies the migrations this database lacks. Returns the versions applied now. */
export async function migrate(db: SqlClient): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await tx.query<{ version: number }>(`SELECT version FROM schema_migrations`)).map((r) => Number(r.version)));
    const newest = Math.max(0, ...done);
    const known = MIGRATIONS[MIGRATIONS.length - 1]!.version;
    if (newest > known) throw new Error(`the ledger database has schema version ${newest}, newer than this dsv4 knows (${known}); upgrade dsv4`);
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await tx.exec(m.sql);
      await tx.query(`INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}
