/**
 * One decode step of N sequences at once (the step a serving engine runs with N streams),
 * straight through the model on the native backend, with its time split by operation: where
 * a batched step goes (the head GEMM, the routed experts at a few rows each, the dense
 * products, everything else). With `--baseline ADDON` a second build of the addon runs the
 * same steps alternately in the same process, so the two are compared under the same load.
 *
 * With `--greedy` the first model's steps also run taking only each row's greedy token
 * (ForwardRequest.greedy, what the engine asks for under greedy decoding), alternating with
 * the steps that return logits.
 *
 * Run: `node dist/bench/step.js [--preset flash-slice] [--rows 1,4,16,64] [--steps 4]
 * [--baseline PATH] [--greedy] [--no-repack] [--json]`; `--no-repack` reads the routed experts in place (Dsv4Model
 * LoadOptions.repack). MTP speculation plays no part: the model is called directly.
 */
import { createRequire } from "node:module";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Backend, MatrixHandle } from "../src/kernels/backend.js";
import type { NativeAddon } from "../src/kernels/native/addon.js";
import { requireNativeAddon } from "../src/kernels/native/addon.js";
import { NativeBackend } from "../src/kernels/native/backend.js";
import { loadModelForBench } from "./locked-load.js";
import { cachedPreset } from "./checkpoints.js";
import { observeBackend, productsOf } from "./observe.js";
import { warmExperts } from "./warm-experts.js";

export interface StepRow {
  addon: string;
  rows: number;
  /** Best step time over the timed steps. */
  step_ms: number;
  /** Aggregate tokens per second: rows / step time. */
  tok_s: number;
  /** Milliseconds by operation in the best step. */
  ops_ms: Record<string, number>;
  /** Minor page faults per timed step (process-wide): fresh memory the step touched. */
  faults_per_step: number;
}

export interface StepBenchResult {
  preset: string;
  isa: string;
  threads: number;
  loadavg_start: number;
  loadavg_end: number;
  /** The weights were locked in memory (locked-load.ts). */
  weights_locked: boolean;
  rows: StepRow[];
  /** Per addon: tok/s at each row count over tok/s at 1 row (when 1 was measured). */
  vs_1: Record<string, Record<string, number>>;
}

const EXPERT = /\.ffn\.experts\.\d+\./;

/** Which bucket a product's time goes to: the head, routed experts, or the weight's format. */
function productKey(w: MatrixHandle, rows: number): string {
  if (EXPERT.test(w.name)) return `routed experts (${w.format})`;
  if (w.outFeatures > 65536) return `head (${w.format})`;
  return `other products (${w.format})`;
}

function timedBackend(inner: Backend): { backend: Backend; times: Map<string, number>; timing: (on: boolean) => void } {
  const times = new Map<string, number>();
  let on = false;
  const backend = observeBackend(inner, (name, args, call) => {
    if (!on) return call();
    const t0 = performance.now();
    const r = call();
    const product = productsOf(name, args)[0];
    const key = product ? productKey(product.w, product.rows) : name;
    times.set(key, (times.get(key) ?? 0) + performance.now() - t0);
    return r;
  });
  return { backend, times, timing: (v) => (on = v) };
}

export async function runStepBench(opts: { preset?: string; rows?: number[]; steps?: number; baseline?: string; repack?: boolean; greedy?: boolean } = {}): Promise<StepBenchResult> {
  const preset = opts.preset ?? "flash-slice";
  const rowCounts = opts.rows ?? [1, 4, 16, 64];
  const steps = opts.steps ?? 4;
  const dir = await cachedPreset(preset);
  const loadStart = loadavg()[0]!;
  const main = requireNativeAddon();
  const addons: Array<{ name: string; addon: NativeAddon }> = [{ name: "native", addon: main }];
  if (opts.baseline) addons.push({ name: "baseline", addon: createRequire(import.meta.url)(resolve(opts.baseline)) as NativeAddon });
  const variants: Array<ReturnType<typeof timedBackend> & ReturnType<typeof loadModelForBench> & { name: string; greedy: boolean }> = addons.map((a) => {
    const t = timedBackend(new NativeBackend(a.addon));
    return { name: a.name, greedy: false, ...t, ...loadModelForBench(dir, { backend: t.backend, repack: opts.repack }) };
  });
  // The same model's steps taking only the greedy token (the engine's greedy decoding:
  // ForwardRequest.greedy), alternating with the steps that return logits.
  if (opts.greedy) variants.push({ ...variants[0]!, name: "greedy", greedy: true });
  const V = variants[0]!.model.cfg.vocabSize;
  const rows: StepRow[] = [];
  try {
    // Page in the weights (mapped checkpoint) and let lazy uploads happen: every routed
    // expert once, then one untimed step of the most rows per variant.
    const most = Math.max(...rowCounts);
    for (const v of variants) {
      // (The greedy variant's model is the first one's, warmed already; its first greedy step
      // finds the head's row norms.)
      if (!v.greedy) warmExperts(v.model);
      const s = Array.from({ length: most }, (_, i) => ({ seq: v.model.newSequence(), tokens: [((i + 3) * 15485863 + 7) % V], ...(v.greedy ? { greedy: [[]] } : {}) }));
      v.model.forward(s, { logits: "last" });
      v.model.forward(s.map((x, i) => ({ seq: x.seq, tokens: [(i * 7 + 1) % V] })), { logits: "last" });
    }
    for (const n of rowCounts) {
      // n sequences with distinct 4-token prompts (distinct routes), then decode steps.
      const seqs = variants.map((v) => {
        const s = Array.from({ length: n }, (_, i) => ({ seq: v.model.newSequence(), tokens: [0, 1, 2, 3].map((j) => ((i * 4 + j + 1) * 7919 + 17) % V) }));
        v.model.forward(s, { logits: "last" });
        return s;
      });
      const best = variants.map(() => Infinity);
      const faults = variants.map(() => 0);
      const bestOps = variants.map((): Record<string, number> => ({}));
      let pos = 0;
      // Every step is timed by operation too (the wrapper's cost is a few microseconds per op);
      // the split shown is the best step's.
      const step = (i: number) => {
        const v = variants[i]!;
        const reqs = seqs[i]!.map((s, j) => ({ seq: s.seq, tokens: [((j + 31 * pos) * 104729 + 5) % V], ...(v.greedy ? { greedy: [[]] } : {}) }));
        v.times.clear();
        v.timing(true);
        const f0 = process.resourceUsage().minorPageFault;
        const t0 = performance.now();
        v.model.forward(reqs, { logits: "last" });
        const total = performance.now() - t0;
        faults[i] += process.resourceUsage().minorPageFault - f0;
        v.timing(false);
        if (total < best[i]!) {
          best[i] = total;
          const ops: Record<string, number> = {};
          let inOps = 0;
          for (const [k, ms] of [...v.times].sort((a, b) => b[1] - a[1])) {
            ops[k] = ms;
            inOps += ms;
          }
          ops["model code (JS between ops)"] = total - inOps;
          bestOps[i] = ops;
        }
      };
      for (let s = 0; s < steps; s++, pos++) variants.forEach((_, i) => step(i));
      variants.forEach((v, i) => rows.push({ addon: v.name, rows: n, step_ms: best[i]!, tok_s: (1000 * n) / best[i]!, ops_ms: bestOps[i]!, faults_per_step: faults[i]! / steps }));
    }
  } finally {
    for (const model of new Set(variants.map((v) => v.model))) model.close();
  }
  const vs_1: Record<string, Record<string, number>> = {};
  for (const v of variants) {
    const one = rows.find((r) => r.addon === v.name && r.rows === 1);
    if (!one) continue;
    vs_1[v.name] = Object.fromEntries(rows.filter((r) => r.addon === v.name && r.rows !== 1).map((r) => [String(r.rows), r.tok_s / one.tok_s]));
  }
  const info = main.info();
  const weights_locked = variants.every((v) => v.locked);
  return { preset, isa: info.isa, threads: info.threads, loadavg_start: loadStart, loadavg_end: loadavg()[0]!, weights_locked, rows, vs_1 };
}

export function printStepTable(r: StepBenchResult): void {
  console.log(`decode step by rows on ${r.preset} (${r.isa}, ${r.threads} threads; load average ${r.loadavg_start.toFixed(1)} -> ${r.loadavg_end.toFixed(1)}; weights ${r.weights_locked ? "locked in memory" : "not locked"})`);
  for (const x of r.rows) {
    const ratio = r.vs_1[x.addon]?.[String(x.rows)];
    console.log(`  ${x.addon.padEnd(8)} ${String(x.rows).padStart(3)} rows: ${x.step_ms.toFixed(1).padStart(7)} ms/step ${x.tok_s.toFixed(1).padStart(7)} tok/s${ratio ? `  (${ratio.toFixed(2)}x 1 row)` : ""}, ${x.faults_per_step.toFixed(0)} page faults/step`);
    for (const [k, ms] of Object.entries(x.ops_ms)) if (ms >= 0.5) console.log(`      ${k.padEnd(34)} ${ms.toFixed(1).padStart(7)} ms`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const get = (flag: string) => {
    const i = args.indexOf(`--${flag}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const result = await runStepBench({
    preset: get("preset"), rows: get("rows")?.split(",").map(Number), steps: get("steps") ? Number(get("steps")) : undefined, baseline: get("baseline"),
    repack: !args.includes("--no-repack"), greedy: args.includes("--greedy"),
  });
  if (args.includes("--json")) console.log(JSON.stringify(result));
  else printStepTable(result);
}
