import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { buildKernelCheck, type KernelCheck, toolchain } from "./kernel-check-build.js";

// Every kernel table entry over the same inputs on x86-64 and on aarch64 (cross-compiled,
// run under qemu-aarch64), compared hash by hash (native/test/kernel_check.cc): the NEON
// table must give the AVX2 table's bits, the avx512 and avx512bf16 tables the AVX2 table's, and the portable
// table the same bits on both architectures. In CI (CI=true) missing tools fail the test;
// elsewhere it skips and says what to install.

const inCi = process.env.CI === "true" || process.env.CI === "1";

function skipReason(): string | false {
  if (process.arch !== "x64") return `the cross check compares against the avx2 table, so it runs on x86-64 hosts (this is ${process.arch})`;
  for (const target of ["host", "aarch64"] as const) {
    const tc = toolchain(target);
    if (typeof tc === "string") {
      if (inCi) throw new Error(`CI requires the kernel cross check, but ${tc}`);
      return tc;
    }
  }
  return false;
}

const skip = skipReason();
if (skip) console.warn(`kernel cross check skipped: ${skip}`);

/** Asserts that two runs printed the same cases with the same hashes, naming the first differences. */
function sameLines(got: string[], want: string[], what: string): void {
  const caseOf = (l: string) => l.slice(0, l.lastIndexOf(" "));
  assert.deepEqual(got.map(caseOf), want.map(caseOf), `${what}: the two runs printed different cases`);
  const diffs = got.flatMap((l, i) => (l === want[i] ? [] : [`${caseOf(l)}: ${l.slice(l.lastIndexOf(" ") + 1)} vs ${want[i]!.slice(want[i]!.lastIndexOf(" ") + 1)}`]));
  assert.equal(diffs.length, 0, `${what}: ${diffs.length} of ${got.length} cases differ, first:\n${diffs.slice(0, 10).join("\n")}`);
}

describe("kernel tables across instruction sets and architectures (kernel_check)", { skip }, () => {
  let host: KernelCheck;
  let arm: KernelCheck;
  let hostTables: string[];
  const runs = new Map<string, Promise<string[]>>();
  const output = (check: KernelCheck, key: string, isa: string) => {
    if (!runs.has(key)) runs.set(key, check.run(isa));
    return runs.get(key)!;
  };

  before(async () => {
    [host, arm] = await Promise.all([
      buildKernelCheck("host", toolchain("host") as Exclude<ReturnType<typeof toolchain>, string>),
      buildKernelCheck("aarch64", toolchain("aarch64") as Exclude<ReturnType<typeof toolchain>, string>),
    ]);
    hostTables = await host.list();
  });

  test("the aarch64 build offers the neon and scalar tables", async () => {
    assert.deepEqual(await arm.list(), ["scalar", "neon"]);
  });

  test("neon (under qemu-aarch64) gives the avx2 table's bits, case by case", async (t) => {
    if (!hostTables.includes("avx2")) return t.skip("this CPU has no AVX2");
    sameLines(await output(arm, "arm:neon", "neon"), await output(host, "x86:avx2", "avx2"), "neon vs avx2");
  });

  test("the scalar table gives the same bits on aarch64 as on x86-64", async () => {
    sameLines(await output(arm, "arm:scalar", "scalar"), await output(host, "x86:scalar", "scalar"), "scalar aarch64 vs scalar x86-64");
  });

  test("avx512 gives the avx2 table's bits, case by case", async (t) => {
    if (!hostTables.includes("avx512")) return t.skip("this CPU has no AVX-512F/BW");
    sameLines(await output(host, "x86:avx512", "avx512"), await output(host, "x86:avx2", "avx2"), "avx512 vs avx2");
  });

  test("avx512bf16 gives the avx2 table's bits, case by case", async (t) => {
    if (!hostTables.includes("avx512bf16")) return t.skip("this CPU has no AVX512_BF16");
    sameLines(await output(host, "x86:avx512bf16", "avx512bf16"), await output(host, "x86:avx2", "avx2"), "avx512bf16 vs avx2");
  });
});
