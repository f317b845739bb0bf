import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../helpers/paths.js";

// nativeSkip() in a fresh process, with the addon path and the environment chosen per case.
function nativeSkipWith(env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const helper = join(repoRoot, "dist/test/kernels/native-available.js");
  const script = `import(${JSON.stringify(helper)}).then((m) => console.log(JSON.stringify(m.nativeSkip())))`;
  const clean = { ...process.env, CI: "", DSV4_REQUIRE_NATIVE: "" };
  const r = spawnSync(process.execPath, ["-e", script], { env: { ...clean, ...env }, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const missing = join(repoRoot, "no-such-dir/dsv4.node");

test("a missing addon skips, and says so on stderr", () => {
  const r = nativeSkipWith({ DSV4_NATIVE_ADDON: missing });
  assert.equal(r.status, 0, r.stderr);
  assert.match(JSON.parse(r.stdout), /native backend not built/);
  assert.match(r.stderr, /SKIPPING NATIVE BACKEND TESTS/);
});

test("a missing addon fails when DSV4_REQUIRE_NATIVE=1 or in CI", () => {
  for (const env of [{ DSV4_REQUIRE_NATIVE: "1" }, { CI: "true" }] as Array<Record<string, string>>) {
    const r = nativeSkipWith({ DSV4_NATIVE_ADDON: missing, ...env });
    assert.notEqual(r.status, 0, JSON.stringify(env));
    assert.match(r.stderr, /native backend is required/);
  }
});

test("an addon file that does not load fails even locally (a broken build is not a missing one)", () => {
  const r = nativeSkipWith({ DSV4_NATIVE_ADDON: join(repoRoot, "package.json") });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /native backend is required \(the addon was built\)/);
});
