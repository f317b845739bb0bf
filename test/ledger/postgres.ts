/**
 * A real PostgreSQL for the ledger tests: DSV4_TEST_POSTGRES_URL (set by .ci/run, which starts
 * Debian's postgresql on loopback). Each test file gets its own schema, dropped afterwards, so
 * files running at once do not see each other's rows. Without the variable the tests skip.
 */
import pg from "pg";

export const POSTGRES_URL = process.env.DSV4_TEST_POSTGRES_URL;

/** In CI (CI=true) the tests do not skip: they fail, naming the variable. */
export const skipWithoutPostgres: string | false = POSTGRES_URL || process.env.CI === "true"
  ? false
  : "DSV4_TEST_POSTGRES_URL is not set: no PostgreSQL to test against (.ci/run starts one; locally: apt-get install postgresql, create a role and database, export DSV4_TEST_POSTGRES_URL=postgres://USER:PASSWORD@127.0.0.1:5432/DB)";

/** A fresh schema; returns a URL whose connections use it, and a function that drops it. */
export async function freshSchema(tag: string): Promise<{ url: string; drop: () => Promise<void> }> {
  if (!POSTGRES_URL) throw new Error("CI=true and DSV4_TEST_POSTGRES_URL is not set: .ci/run starts PostgreSQL and sets it; the Postgres tests do not skip in CI");
  const schema = `dsv4_test_${tag}_${process.pid}_${Date.now()}`;
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.end();
  const url = new URL(POSTGRES_URL!);
  url.searchParams.set("options", `-c search_path=${schema}`);
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: POSTGRES_URL });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}
