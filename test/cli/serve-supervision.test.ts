/**
 * dsv4 serve under a supervisor: a --scheduling-policy typo is a usage error before anything
 * loads, and an engine that can serve nothing more ends the wait that keeps serve running.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { untilUnhealthy } from "../../src/cli/command.js";
import { repoRoot } from "../helpers/paths.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");

test("an unknown --scheduling-policy is a usage error naming the policies", () => {
  const r = spawnSync(process.execPath, [cli, "serve", "--scheduling-policy", "lifo", "--port", "0"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--scheduling-policy must be one of fcfs, priority, got "lifo"/);
});

test("untilUnhealthy resolves with the engine's reason once it is not ok, and not before", async () => {
  let health = { ok: true, reason: null as string | null };
  let settled: string | null = null;
  // Its timer does not hold the process open (serve's server does): this test's does.
  const alive = setInterval(() => undefined, 1000);
  const wait = untilUnhealthy({ health: () => health }, 5).then((reason) => (settled = reason));
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(settled, null);
  health = { ok: false, reason: "the model runner is down: the model runner thread exited (code 1)" };
  await wait;
  clearInterval(alive);
  assert.equal(settled, "the model runner is down: the model runner thread exited (code 1)");
});
