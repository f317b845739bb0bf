import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "../helpers/paths.js";

// Builds native/test/kernel_check.cc (the kernel tables without Node) for this host or for
// aarch64, with binding.gyp's compiler flags, and runs it. Builds are kept under
// native/build/kernel-check/, keyed by a digest of the sources, flags and compiler, so a
// second run with nothing changed only runs the programs.

const run = promisify(execFile);
const nativeDir = join(repoRoot, "native");

/** Where a build of the check runs: this machine, or aarch64 through qemu-user. */
export type CheckTarget = "host" | "aarch64";

interface Toolchain {
  cxx: string;
  /** Prefix of the command that runs a built program (qemu-aarch64 for the cross build). */
  runner: string[];
  extraLink: string[];
}

/** The version line of `cmd --version`, or null when the command is missing. */
function versionOf(cmd: string): string | null {
  try {
    return execFileSync(cmd, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split("\n")[0]!;
  } catch {
    return null;
  }
}

/** The toolchain for `target`, or why there is none (a line naming what to install). */
export function toolchain(target: CheckTarget): Toolchain | string {
  if (target === "host") {
    const cxx = process.env.CXX || "c++";
    return versionOf(cxx) ? { cxx, runner: [], extraLink: [] } : `no C++ compiler (${cxx}); install g++`;
  }
  const missing = ["aarch64-linux-gnu-g++", "qemu-aarch64"].filter((c) => !versionOf(c));
  if (missing.length > 0) return `${missing.join(" and ")} not found; install them with: apt-get install g++-aarch64-linux-gnu qemu-user (.ci/run does)`;
  // Static, so that qemu-aarch64 needs no aarch64 sysroot.
  return { cxx: "aarch64-linux-gnu-g++", runner: ["qemu-aarch64"], extraLink: ["-static"] };
}

/** The compiler flags binding.gyp gives the addon (target_defaults) and each kernel library. */
function gypFlags(): { common: string[]; library: Record<string, string[]> } {
  const text = readFileSync(join(nativeDir, "binding.gyp"), "utf8").replace(/^\s*#.*$/gm, "");
  const gyp = JSON.parse(text) as {
    target_defaults: { cflags_cc: string[] };
    conditions: Array<[string, { targets: Array<{ sources: string[]; cflags_cc?: string[] }> }]>;
  };
  const library: Record<string, string[]> = {};
  for (const [, block] of gyp.conditions)
    for (const t of block.targets) for (const s of t.sources) library[s] = t.cflags_cc ?? [];
  return { common: gyp.target_defaults.cflags_cc, library };
}

interface Unit {
  source: string; // relative to native/
  flags: string[];
}

/** The translation units of the check for `target`, and the defines that tell dispatch.cc which tables exist. */
function units(target: CheckTarget): { units: Unit[]; defines: string[] } {
  const { library } = gypFlags();
  const base = ["src/dispatch.cc", "src/scratch.cc", "src/mapping.cc", "src/kernels_scalar.cc", "test/kernel_check.cc"];
  const arch = target === "aarch64" ? "arm64" : process.arch;
  let tables: string[] = [];
  let defines: string[] = [];
  if (arch === "x64") {
    tables = ["src/kernels_avx2.cc", "src/kernels_avx512.cc", "src/kernels_avx512bf16.cc"];
    defines = ["-DDSV4_HAVE_AVX2", "-DDSV4_HAVE_AVX512", "-DDSV4_HAVE_AVX512BF16"];
  } else if (arch === "arm64") {
    tables = ["src/kernels_neon.cc"];
    defines = ["-DDSV4_HAVE_NEON"];
  }
  return {
    units: [...base.map((source) => ({ source, flags: defines })), ...tables.map((source) => ({ source, flags: library[source] ?? [] }))],
    defines,
  };
}

function sourceDigest(tc: Toolchain, list: Unit[], common: string[]): string {
  const h = createHash("sha256");
  h.update(JSON.stringify([tc.cxx, versionOf(tc.cxx), common, list]));
  for (const dir of ["src", "test"])
    for (const f of readdirSync(join(nativeDir, dir)).sort()) h.update(f).update(readFileSync(join(nativeDir, dir, f)));
  return h.digest("hex").slice(0, 16);
}

/** A built check program: `run(isa)` gives its output lines for one table, `list()` the tables it has. */
export interface KernelCheck {
  binary: string;
  list(): Promise<string[]>;
  run(isa: string): Promise<string[]>;
}

/** Builds (or finds the build of) the check for `target`. Throws with the compiler's output on failure. */
export async function buildKernelCheck(target: CheckTarget, tc: Toolchain): Promise<KernelCheck> {
  const { common } = gypFlags();
  const { units: list } = units(target);
  const dir = join(nativeDir, "build", "kernel-check", `${target}-${sourceDigest(tc, list, common)}`);
  const binary = join(dir, "kernel_check");
  if (!existsSync(binary)) {
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const objects = list.map((_, i) => join(tmp, `${i}.o`));
    // -Wno-unused-function: each kernel TU uses only part of kernels_impl.h's functions.
    await Promise.all(
      list.map((u, i) => run(tc.cxx, [...common, "-Wno-unused-function", ...u.flags, "-c", join(nativeDir, u.source), "-o", objects[i]!], { maxBuffer: 64 << 20 })),
    );
    await run(tc.cxx, [...objects, "-o", join(tmp, "kernel_check"), ...tc.extraLink, "-lpthread"], { maxBuffer: 64 << 20 });
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  }
  const exec = async (arg: string) => {
    const [cmd, ...pre] = [...tc.runner, binary];
    const { stdout } = await run(cmd!, [...pre, arg], { maxBuffer: 256 << 20 });
    return stdout.split("\n").filter((l) => l.length > 0);
  };
  return { binary, list: () => exec("--list"), run: exec };
}
