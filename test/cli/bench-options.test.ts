/** `dsv4 bench kernels --rows`' list options: a bad item is one usage line naming it, before any work. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { test } from "node:test";
import { repoRoot } from "../helpers/paths.js";

const run = promisify(execFile);
const cli = (...args: string[]) => run(process.execPath, [join(repoRoot, "dist", "src", "cli", "main.js"), ...args]);

for (const [flag, value, message] of [
  ["--formats", "fp4,fp5", /--formats: "fp5" is not bf16, fp8 or fp4 \(e\.g\. --formats fp4,fp8\)/],
  ["--row-counts", "1,0", /--row-counts: "0" is not a row count from 1 to 9999 \(e\.g\. --row-counts 1,2,4\)/],
] as const) {
  test(`bench kernels --rows ${flag} ${value}: exit 1 with the item named`, async () => {
    await assert.rejects(cli("bench", "kernels", "--rows", flag, value), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, message);
      assert.doesNotMatch(e.stderr, /\n\s+at /, "no stack trace");
      return true;
    });
  });
}
