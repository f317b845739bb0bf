import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../helpers/paths.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");

test("dsv4 run --no-repack writes the text it writes with repacked experts", () => {
  const run = (...extra: string[]) =>
    spawnSync(process.execPath, [cli, "run", "--temperature", "0", "--max-tokens", "12", "--no-think", ...extra, "Name three colours."], { encoding: "utf8", timeout: 120_000 });
  const repacked = run();
  const inPlace = run("--no-repack");
  assert.equal(repacked.status, 0, repacked.stderr);
  assert.equal(inPlace.status, 0, inPlace.stderr);
  assert.ok(repacked.stdout.length > 0);
  assert.equal(inPlace.stdout, repacked.stdout);
});
