import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { perToken, printServeTable, runServeBench, serveOptionsFromArgs, throughputVs1, type ServeBenchResult, type ThroughputRow } from "../../bench/serve.js";

// The benchmark's output is an interface (tools read --json): check its shape on the tiny
// preset with --quick. Speed goals are the benchmark's business, never asserted here.
const cache = mkdtempSync(join(tmpdir(), "dsv4-bench-serve-"));
process.env.DSV4_CACHE_DIR = cache;
after(() => rmSync(cache, { recursive: true, force: true }));

const finite = (v: unknown, key: string) => assert.ok(typeof v === "number" && Number.isFinite(v), `${key} = ${String(v)}`);

test("bench serve --quick on tiny reports every figure as a finite number, with its goal", async () => {
  const r = await runServeBench({ preset: "tiny", quick: true });
  assert.equal(r.preset, "tiny");
  assert.equal(r.errors, 0);
  for (const key of [
    "health_p50_ms", "health_p99_ms", "health_max_ms", "health_count", "itl_p50_idle_ms", "itl_p99_during_prefill_ms", "itl_ratio",
    "server_prefill_tok_s", "model_prefill_tok_s", "engine_prefill_vs_model", "throughput_4_vs_1", "throughput_16_vs_1", "throughput_64_vs_1",
    "fraction_of_roofline_16", "bandwidth_gbs", "compute_peak_gflops", "paused_reader_heap_growth_mib", "paused_other_streams_tok_s",
    "paused_baseline_tok_s", "paused_other_streams_ratio",
  ] as const) {
    finite(r[key], key);
  }
  assert.ok(r.health_count >= 1);
  for (const k of ["p50_idle_ms", "p99_during_prefill_ms", "ratio"] as const) finite(r.itl_chunk[k], `itl_chunk.${k}`);
  assert.ok(r.held_back_token_share >= 0 && r.held_back_token_share < 1, `held_back_token_share ${r.held_back_token_share}`);
  // When the paused client's sequence was paused, it was inside the window (whether it is depends on
  // the machine: ~700 tiny-model tokens fill the client's receive buffer; the pause itself is
  // pinned by test/server/backpressure.test.ts).
  const blocked = r.paused_reader_blocked_after_s;
  if (blocked !== null) assert.ok(blocked > 0 && blocked <= r.params.paused_seconds + 1, `paused after ${blocked} s`);
  for (const n of ["1", "4", "16", "64"]) {
    finite(r.throughput_tok_s[n], `throughput_tok_s[${n}]`);
    const row = r.roofline[n]!;
    for (const k of ["weight_bytes", "flops", "memory_ms", "compute_ms", "roofline_ms", "measured_step_ms", "fraction_of_roofline"] as const) finite(row[k], `roofline[${n}].${k}`);
    assert.equal(row.roofline_ms, Math.max(row.memory_ms, row.compute_ms));
  }
  // More rows read more distinct experts, never fewer.
  assert.ok(r.roofline["64"]!.weight_bytes >= r.roofline["1"]!.weight_bytes);
  for (const key of ["health_p99_ms", "itl_ratio", "engine_prefill_vs_model", "throughput_16_vs_1", "fraction_of_roofline_16", "paused_reader_heap_growth_mib"]) {
    const g = r.goals[key]!;
    assert.ok(g, `goal ${key}`);
    assert.equal(g.value, r[key as keyof typeof r]);
    assert.equal(typeof g.goal, "string");
    assert.equal(typeof g.met, "boolean");
  }
});

test("bench serve: size flags", () => {
  const opts = (args: Record<string, string>) => serveOptionsFromArgs((f) => args[f], (f) => f in args);
  assert.deepEqual(opts({ concurrency: "1,8" }).concurrency, [1, 8]);
  assert.equal(opts({ prompt: "2048" }).promptTokens, 2048);
  assert.equal(opts({ quick: "" }).quick, true);
  assert.throws(() => opts({ concurrency: "1,x" }), /concurrency/);
  assert.throws(() => opts({ streams: "0" }), /streams/);
});

let throughputOnly: Promise<ServeBenchResult> | null = null;
const throughputOnlyRun = () => {
  const opts = serveOptionsFromArgs((f) => ({ "max-tokens": "4" })[f as "max-tokens"], (f) => f === "throughput-only" || f === "quick");
  assert.equal(opts.throughputOnly, true);
  return (throughputOnly ??= runServeBench({ ...opts, preset: "tiny", concurrency: [1, 16] }));
};

test("bench serve --throughput-only gives the throughput rows and rooflines, the phases it skips as NaN", async () => {
  const r = await throughputOnlyRun();
  assert.equal(r.errors, 0);
  finite(r.throughput_16_vs_1, "throughput_16_vs_1");
  finite(r.fraction_of_roofline_16, "fraction_of_roofline_16");
  assert.equal(r.goals.fraction_of_roofline_16!.value, r.fraction_of_roofline_16);
  assert.ok(Number.isNaN(r.health_p99_ms) && Number.isNaN(r.engine_prefill_vs_model) && Number.isNaN(r.paused_reader_heap_growth_mib));
  assert.equal(r.paused_reader_blocked_after_s, null);
  assert.equal(r.goals.health_p99_ms!.met, false);
});

test("bench serve --throughput-only prints the phases it skipped as not run, not as NaN figures", async () => {
  const r = await throughputOnlyRun();
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    printServeTable(r);
  } finally {
    console.log = log;
  }
  const text = lines.join("\n");
  assert.doesNotMatch(text, /NaN/);
  assert.match(text, /--throughput-only: the \/health, ITL, prefill and paused-reader phases were not run/);
  assert.match(text, /16 vs 1: \d/);
});

test("bench serve: each n-vs-1 ratio divides by the single-stream runs beside row n", async () => {
  const opts = serveOptionsFromArgs((f) => ({ "max-tokens": "4" })[f as "max-tokens"], (f) => f === "throughput-only" || f === "quick");
  const r = await runServeBench({ ...opts, preset: "tiny", concurrency: [1, 4, 16] });
  // The 1 row, then one single-stream run after the 4 row and one after the 16 row.
  assert.equal(r.single_stream_runs_tok_s.length, 3);
  assert.equal(r.single_stream_runs_tok_s[0], r.throughput_tok_s["1"]);
  const [s0, s1, s2] = r.single_stream_runs_tok_s as [number, number, number];
  assert.equal(r.throughput_4_vs_1, r.throughput_tok_s["4"]! / ((s0 + s1) / 2));
  assert.equal(r.throughput_16_vs_1, r.throughput_tok_s["16"]! / ((s1 + s2) / 2));
});

test("bench serve: without single-stream runs beside a row, its ratio divides by the 1 row", () => {
  const row = (concurrency: number, tok_s: number, single_beside_tok_s?: number): ThroughputRow => ({
    concurrency, tok_s, wall_s: 1, tokens: 1, measured_step_ms: 1, all_decoding: true, ttft_ms: 1, ...(single_beside_tok_s === undefined ? {} : { single_beside_tok_s }),
  });
  assert.equal(throughputVs1([row(1, 10), row(16, 40)], 16), 4);
  assert.equal(throughputVs1([row(1, 10), row(16, 40, 8)], 16), 5);
  assert.equal(throughputVs1([row(16, 40)], 16), null);
});

test("bench serve: per-token ITL shares a chunk's gap among the tokens it carries", () => {
  // A token whose text was held back arrives with the next one: two tokens in one 600 ms gap.
  assert.deepEqual(perToken([{ ms: 300, tokens: 1 }, { ms: 600, tokens: 2 }, { ms: 900, tokens: 1 }]), [300, 300, 300, 900]);
});
