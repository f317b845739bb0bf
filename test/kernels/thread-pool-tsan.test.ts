import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { arch, tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { repoRoot } from "../helpers/paths.js";

// The thread pool's stress test (native/test/thread_pool_test.cc) built with ThreadSanitizer:
// every task runs exactly once per job, run() returns only after all of them, exceptions on
// workers reach the caller, and TSan sees no data race. In CI (CI=true) g++ with libtsan is
// required (Debian's g++ brings it: libgcc-12-dev depends on libtsan2); elsewhere a missing
// compiler or sanitizer runtime skips the test with the reason.
const inCi = process.env.CI === "true" || process.env.CI === "1";
const dir = mkdtempSync(join(tmpdir(), "dsv4-tsan-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const TSAN_FLAGS = ["-std=c++17", "-fsanitize=thread", "-O1", "-g", "-pthread"];

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: "utf8", env: env ?? process.env, timeout: 300_000, maxBuffer: 64 * 2 ** 20 });
}

/** Why TSan builds cannot run here, or null when they can. */
function tsanUnavailable(): string | null {
  const version = run("g++", ["--version"]);
  if (version.error || version.status !== 0) return "g++ not found (install g++)";
  const probe = join(dir, "probe.cc");
  writeFileSync(probe, "int main() { return 0; }\n");
  const built = run("g++", [...TSAN_FLAGS, probe, "-o", join(dir, "probe")]);
  if (built.status !== 0) return `g++ cannot build with -fsanitize=thread (libtsan missing? apt-get install libtsan2): ${built.stderr.trim().split("\n")[0]}`;
  return null;
}

const unavailable = tsanUnavailable();
if (unavailable && inCi) throw new Error(`CI requires the ThreadSanitizer build of the thread pool test, but ${unavailable}`);
if (unavailable) console.error(`thread-pool-tsan: SKIPPED, ${unavailable}`);

/** Runs a TSan binary; a kernel whose mmap layout TSan's runtime rejects gets a second try without ASLR. */
function runTsan(binary: string, args: string[]): SpawnSyncReturns<string> {
  const env = { ...process.env, TSAN_OPTIONS: "halt_on_error=1 exitcode=66 second_deadlock_stack=1" };
  const r = run(binary, args, env);
  if (r.status !== 0 && /unexpected memory mapping/.test(r.stderr)) return run("setarch", [arch() === "arm64" ? "aarch64" : "x86_64", "-R", binary, ...args], env);
  return r;
}

test("thread pool under ThreadSanitizer: each task exactly once per job, exceptions reach the caller, no data race", { skip: unavailable ?? false }, () => {
  const binary = join(dir, "thread_pool_test");
  const built = run("g++", [...TSAN_FLAGS, "-Wall", "-Wextra", join(repoRoot, "native/test/thread_pool_test.cc"), join(repoRoot, "native/src/thread_pool.cc"), "-o", binary]);
  assert.equal(built.status, 0, `compiling the pool test failed:\n${built.stderr}`);
  const r = runTsan(binary, ["20000"]);
  assert.doesNotMatch(r.stderr, /ThreadSanitizer/, `ThreadSanitizer reported:\n${r.stderr.slice(0, 20000)}`);
  assert.equal(r.status, 0, `the pool test failed (exit ${r.status}, signal ${r.signal}):\n${r.stderr.slice(0, 20000)}`);
  assert.match(r.stdout, /^ok \(\d+ exceptions thrown on workers\)/);
});
