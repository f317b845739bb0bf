/**
 * Runs every benchmark, each in its own process so that one's memory (a mapped 12 GB
 * checkpoint, a reference model in the JS heap) never weighs on the next.
 * `npm run bench [-- --json]`: tables, or one JSON object keyed by benchmark.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { printDecodeTable, type DecodeBenchResult } from "./decode.js";

const here = dirname(fileURLToPath(import.meta.url));
const json = process.argv.includes("--json");

const suites: Array<{ key: string; file: string; args: string[]; node?: string[] }> = [
  { key: "kernels", file: "kernels.js", args: [] },
  { key: "decode_native", file: "decode.js", args: ["--backend", "native"] },
  { key: "decode_ref", file: "decode.js", args: ["--backend", "ref"] },
  { key: "model", file: "model.js", args: [] },
  { key: "text", file: "text.js", args: [] },
  { key: "sampler", file: "sampler.js", args: [] },
  // The schema constraints' mask at the real vocabulary, against a flash-slice decode step.
  { key: "mask", file: "mask.js", args: [] },
  { key: "engine", file: "engine.js", args: [] },
  { key: "server", file: "server.js", args: [] },
  { key: "cache", file: "cache.js", args: ["--quick"] },
  // flash-slice with a 1,024-token prompt and 10 s paused windows (a few minutes; the full
  // sizes are `dsv4 bench serve`'s defaults). --expose-gc: the heap is read after a collection.
  // DSpark on flash-slice-0731 (generated once, ~22 GB).
  { key: "spec", file: "spec.js", args: [] },
  { key: "serve", file: "serve.js", args: ["--prompt", "1024", "--max-tokens", "16", "--paused-seconds", "10"], node: ["--expose-gc"] },
];

const results: Record<string, unknown> = {};
let failed = 0;
for (const s of suites) {
  const path = join(here, s.file);
  if (!existsSync(path)) continue;
  const decode = s.file === "decode.js";
  // Decode runs report JSON here so the native/ref ratio can be computed.
  const args = [...(s.node ?? []), path, ...s.args, ...(json || decode ? ["--json"] : [])];
  const r = spawnSync(process.execPath, args, { stdio: ["ignore", json || decode ? "pipe" : "inherit", "inherit"], encoding: "utf8", maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0) {
    failed++;
    process.stderr.write(`bench: ${s.key} failed (exit ${r.status ?? r.signal})\n`);
    continue;
  }
  if (json || decode) {
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
    results[s.key] = out;
    if (!json) printDecodeTable(out as DecodeBenchResult);
  }
  if (!json) console.log();
}
const nat = results.decode_native as DecodeBenchResult | undefined;
const ref = results.decode_ref as DecodeBenchResult | undefined;
if (nat && ref && nat.backend === "native") {
  results.native_vs_ref = { decode: nat.decode_tok_s / ref.decode_tok_s, prefill: nat.prefill_tok_s / ref.prefill_tok_s };
  if (!json) console.log(`native vs ref on ${nat.preset}: decode ${(nat.decode_tok_s / ref.decode_tok_s).toFixed(0)}x, prefill ${(nat.prefill_tok_s / ref.prefill_tok_s).toFixed(0)}x`);
}
if (json) console.log(JSON.stringify(results));
process.exitCode = failed ? 1 : 0;
