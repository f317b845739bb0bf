/**
 * `dsv4 keys` and `dsv4 usage` as processes against the default embedded store (PGlite under
 * $DSV4_HOME/ledger): a key is printed once, listed with its budget, re-budgeted, disabled.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, test } from "node:test";
import { repoRoot } from "../helpers/paths.js";

const run = promisify(execFile);
const home = mkdtempSync(join(tmpdir(), "dsv4-keys-cli-"));
after(() => rmSync(home, { recursive: true, force: true }));
const cli = (...args: string[]) => run(process.execPath, [join(repoRoot, "dist", "src", "cli", "main.js"), ...args], { env: { ...process.env, DSV4_HOME: home } });

test("keys create prints the key once; list, set-budget, disable and usage read the same store", async () => {
  const created = await cli("keys", "create", "--name", "ci", "--budget", "0.25");
  const plain = created.stdout.trim();
  assert.match(plain, /^sk-[0-9a-f]{48}$/);
  assert.match(created.stderr, /created key_[0-9a-f]{16} \(ci\), budget \$0\.250000/);
  await cli("keys", "set-budget", "ci", "1.5");
  await cli("keys", "disable", "ci");
  const listed = JSON.parse((await cli("keys", "list", "--json")).stdout);
  assert.equal(listed.length, 1);
  assert.deepEqual({ name: listed[0].name, budget: listed[0].budget_usd, spent: listed[0].spent_usd, disabled: listed[0].disabled }, { name: "ci", budget: 1.5, spent: 0, disabled: true });
  assert.ok(!JSON.stringify(listed).includes(plain), "the key itself is never listed");
  const usage = JSON.parse((await cli("usage", "--json", "--key", listed[0].id)).stdout);
  assert.deepEqual(usage, { keys: [{ id: listed[0].id, name: "ci", budget_usd: 1.5, spent_usd: 0, reserved_usd: 0, requests: 0, disabled: true }], recent: [] });
});

test("usage errors name the fix", async () => {
  await assert.rejects(cli("keys", "set-budget", "nobody", "1", "--database", "memory"), (err: { stderr: string; code: number }) => {
    assert.match(err.stderr, /no key "nobody" in memory \(see `dsv4 keys list`\)/);
    return err.code === 1;
  });
  await assert.rejects(cli("keys", "create", "--budget=-3", "--database", "memory"), (err: { stderr: string; code: number }) => {
    assert.match(err.stderr, /--budget must be a non-negative number of USD \(or "none"\), got "-3"/);
    return err.code === 2;
  });
  await assert.rejects(cli("usage", "--database", "mysql://x"), /--database must be postgres:\/\//);
});
