/**
 * Opening a ledger from a `--database` value:
 *   postgres://… or postgresql://…  a Postgres server, through `pg`
 *   pglite:DIR                       the embedded PGlite, its data in DIR (created on first use)
 *   pglite:memory                    PGlite in memory (tests; nothing persists)
 *   memory                           the in-process ledger (nothing persists; no SQL at all)
 * and, with no value, the embedded default: PGlite in $DSV4_HOME/ledger. The schema is migrated
 * on open, and holds left by a process that died mid-request (older than STALE_HOLD_SECONDS) are released.
 */
import { join, resolve } from "node:path";
import { dsv4Home } from "../home.js";
import { lockDirectory } from "./dir-lock.js";
import { MemoryLedger } from "./memory-ledger.js";
import { migrate } from "./schema.js";
import { pgClient, pgliteClient, type SqlClient } from "./sql-client.js";
import { SqlLedger } from "./sql-ledger.js";
import type { Ledger } from "./types.js";

/** No request runs this long; a hold this old belongs to a process that is gone. */
export const STALE_HOLD_SECONDS = 6 * 3600;

export const defaultLedgerDir = (): string => join(dsv4Home(), "ledger");

export type LedgerSpec = { backend: "postgres"; url: string } | { backend: "pglite"; dir: string | null } | { backend: "memory" };

export function parseDatabase(value: string | undefined): LedgerSpec {
  if (value === undefined || value === "") return { backend: "pglite", dir: defaultLedgerDir() };
  if (/^postgres(ql)?:\/\//.test(value)) return { backend: "postgres", url: value };
  if (value === "memory") return { backend: "memory" };
  if (value.startsWith("pglite:")) {
    const dir = value.slice("pglite:".length);
    if (dir === "") throw new Error(`--database pglite:DIR needs a directory (or pglite:memory), got "${value}"`);
    return { backend: "pglite", dir: dir === "memory" ? null : resolve(dir) };
  }
  throw new Error(`--database must be postgres://USER:PASSWORD@HOST:PORT/DB, pglite:DIR, pglite:memory or memory, got "${value}"`);
}

/** A URL fit for messages: the password replaced by ***. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "postgres://…";
  }
}

export async function openLedger(value: string | LedgerSpec | undefined): Promise<Ledger> {
  const spec = typeof value === "object" ? value : parseDatabase(value);
  if (spec.backend === "memory") return new MemoryLedger();
  let db: SqlClient;
  let location: string;
  if (spec.backend === "postgres") {
    const { default: pg } = await import("pg");
    location = redactedUrl(spec.url);
    const pool = new pg.Pool({ connectionString: spec.url, max: 16, connectionTimeoutMillis: 5000 });
    // An idle client's error (the server restarted) must not crash the process; the next query reconnects.
    pool.on("error", () => undefined);
    db = pgClient(pool);
  } else {
    const { PGlite } = await import("@electric-sql/pglite");
    location = spec.dir ?? "pglite:memory";
    const unlock = spec.dir === null ? () => undefined : lockDirectory(spec.dir);
    try {
      db = pgliteClient(await PGlite.create(spec.dir ?? undefined), unlock);
    } catch (err) {
      unlock();
      throw new Error(`cannot open the embedded ledger in ${location}: ${(err as Error).message}`);
    }
  }
  try {
    await migrate(db);
    const ledger = new SqlLedger(db, spec.backend, location);
    await ledger.releaseStale(STALE_HOLD_SECONDS);
    return ledger;
  } catch (err) {
    await db.close().catch(() => undefined);
    throw new Error(`cannot open the ledger at ${location}: ${(err as Error).message}`);
  }
}
