/**
 * The little the ledger needs from a SQL database, over `pg` (a Postgres server) and PGlite (the
 * embedded Postgres): parameterised queries, multi-statement scripts for migrations, transactions.
 */
import type { PGlite } from "@electric-sql/pglite";
import type { Pool } from "pg";

export interface SqlQueries {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface SqlClient extends SqlQueries {
  transaction<T>(fn: (tx: SqlQueries) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export function pgClient(pool: Pool): SqlClient {
  return {
    query: async <T>(sql: string, params?: unknown[]) => (await pool.query(sql, params)).rows as T[],
    exec: async (sql) => {
      await pool.query(sql);
    },
    transaction: async (fn) => {
      const conn = await pool.connect();
      try {
        await conn.query("BEGIN");
        const out = await fn({
          query: async <T>(sql: string, params?: unknown[]) => (await conn.query(sql, params)).rows as T[],
          exec: async (sql) => {
            await conn.query(sql);
          },
        });
        await conn.query("COMMIT");
        return out;
      } catch (err) {
        await conn.query("ROLLBACK").catch(() => undefined);
        throw err;
      } finally {
        conn.release();
      }
    },
    close: () => pool.end(),
  };
}

export function pgliteClient(db: PGlite, onClose: () => void = () => undefined): SqlClient {
  return {
    query: async <T>(sql: string, params?: unknown[]) => (await db.query(sql, params)).rows as T[],
    exec: async (sql) => {
      await db.exec(sql);
    },
    transaction: (fn) =>
      db.transaction((tx) =>
        fn({
          query: async <T>(sql: string, params?: unknown[]) => (await tx.query(sql, params)).rows as T[],
          exec: async (sql) => {
            await tx.exec(sql);
          },
        }),
      ),
    close: async () => {
      try {
        await db.close();
      } finally {
        onClose();
      }
    },
  };
}
