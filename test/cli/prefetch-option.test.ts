import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../helpers/paths.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");

test("an unknown --prefetch mode is a usage error naming the modes, before anything loads", () => {
  const r = spawnSync(process.execPath, [cli, "serve", "--prefetch", "always", "--port", "0"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--prefetch must be one of auto, on, off, got "always"/);
});
