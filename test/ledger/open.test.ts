/** --database values, the embedded store on disk (persistence, migrations once, one process at a time). */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { PGlite } from "@electric-sql/pglite";
import { openLedger, parseDatabase, redactedUrl } from "../../src/ledger/open.js";
import { MIGRATIONS } from "../../src/ledger/schema.js";
import { record } from "./ledger-suite.js";

describe("--database values", () => {
  test("postgres URLs, pglite directories, memory; no value is the embedded store under the dsv4 home", () => {
    assert.deepEqual(parseDatabase("postgres://u:p@h:5432/db"), { backend: "postgres", url: "postgres://u:p@h:5432/db" });
    assert.deepEqual(parseDatabase("postgresql://h/db"), { backend: "postgres", url: "postgresql://h/db" });
    assert.deepEqual(parseDatabase("pglite:memory"), { backend: "pglite", dir: null });
    assert.deepEqual(parseDatabase("memory"), { backend: "memory" });
    assert.equal((parseDatabase("pglite:/tmp/x") as { dir: string }).dir, "/tmp/x");
    const home = process.env.DSV4_HOME;
    process.env.DSV4_HOME = "/some/home";
    try {
      assert.deepEqual(parseDatabase(undefined), { backend: "pglite", dir: join("/some/home", "ledger") });
    } finally {
      if (home === undefined) delete process.env.DSV4_HOME;
      else process.env.DSV4_HOME = home;
    }
  });

  test("anything else is refused with the forms that work", () => {
    assert.throws(() => parseDatabase("mysql://h/db"), /--database must be postgres:\/\/USER:PASSWORD@HOST:PORT\/DB, pglite:DIR, pglite:memory or memory, got "mysql:\/\/h\/db"/);
    assert.throws(() => parseDatabase("pglite:"), /needs a directory/);
  });

  test("a URL's password never shows in messages", () => {
    assert.equal(redactedUrl("postgres://dsv4:secret@db:5432/ledger"), "postgres://dsv4:***@db:5432/ledger");
  });
});

describe("the embedded store on disk", () => {
  const dir = mkdtempSync(join(tmpdir(), "dsv4-ledger-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("keys and spend survive a restart; each migration is applied once; a second process is refused", async () => {
    const first = await openLedger(`pglite:${dir}`);
    let keyId: string;
    try {
      const { key } = await first.createKey({ name: "persisted", budgetUsd: 1 });
      keyId = key.id;
      const held = await first.reserve(key.id, 0.5);
      assert.ok(held.ok);
      await first.settle(held.reservationId, record(key.id, 0.25));
      await assert.rejects(openLedger(`pglite:${dir}`), new RegExp(`in use by process ${process.pid}`));
    } finally {
      await first.close();
    }
    const again = await openLedger(`pglite:${dir}`);
    try {
      const account = (await again.findKey(keyId))!;
      assert.equal(account.spentUsd, 0.25);
      assert.equal(account.reservedUsd, 0);
      assert.equal(account.budgetUsd, 1);
    } finally {
      await again.close();
    }
    const raw = await PGlite.create(dir);
    try {
      const versions = (await raw.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version")).rows.map((r) => r.version);
      assert.deepEqual(versions, MIGRATIONS.map((m) => m.version));
    } finally {
      await raw.close();
    }
  });
});
