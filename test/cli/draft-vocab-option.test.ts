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

test("--draft-vocab with --speculative off is refused in one line before the weights load", () => {
  const r = spawnSync(process.execPath, [cli, "run", "--speculative", "off", "--draft-vocab", "1000", "hi"], { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^dsv4: error: --draft-vocab restricts what drafts propose, but --speculative is off: drop one of them\n$/);
});
