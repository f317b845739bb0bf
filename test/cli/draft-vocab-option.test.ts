import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../helpers/paths.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");

test("--draft-vocab takes a positive integer: anything else is a usage error before anything loads", () => {
  const r = spawnSync(process.execPath, [cli, "serve", "--draft-vocab", "lots", "--port", "0"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--draft-vocab must be an integer ≥ 1, got "lots"/);
});
