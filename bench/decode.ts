/**
 * End-to-end decode and prefill speed on a generated checkpoint (default: flash-slice, real
 * V4-Flash dimensions with two layers + MTP), with the weight bytes each decoded token
 * reads and the fraction of the memory-bandwidth ceiling that speed reaches.
 * Run: `dsv4 bench decode [--preset flash-slice] [--backend ref|native] [--prompt N] [--json]`.
 * The prefill figure depends on the prompt length (more rows per expert as it grows); the
 * default is 64 tokens on the native backend (8 on the reference) and the JSON states it.
 */
import { pathToFileURL } from "node:url";
import type { Backend, MatrixHandle } from "../src/kernels/backend.js";
import { createBackend } from "../src/kernels/index.js";
import { nativeAddon } from "../src/kernels/native/addon.js";
import { loadModelForBench } from "./locked-load.js";
import { cachedPreset } from "./checkpoints.js";
import { observeBackend, productsOf } from "./observe.js";

export interface DecodeBenchResult {
  backend: string;
  preset: string;
  decode_tok_s: number;
  prefill_tok_s: number;
  /**
   * The same prompt with every position's output kept (residual streams of all positions, as
   * MTP drafting asks for), so the last layer runs in full for every row: prefill speed per
   * complete layer. prefill_tok_s lets the last layer skip the rows nobody reads, which on
   * flash-slice's two layers is a large share and on the full model's 43 about 1%.
   */
  prefill_all_rows_tok_s: number | null;
  /** Weight bytes (data + scales) of every matrix the decode step multiplies with, per token. */
  bytes_per_token: number;
  /** The weights were locked in memory (locked-load.ts). */
  weights_locked: boolean;
  bandwidth_gbs: number | null;
  /** decode_tok_s x bytes_per_token / bandwidth: how close decode gets to being memory bound. */
  fraction_of_ceiling: number | null;
  /** Prompt length of the timed prefill forward (the same as prefill_tokens). */
  prompt_tokens: number;
  prefill_tokens: number;
  decode_tokens: number;
  /** With --profile: seconds per token by operation, from a separate timed pass. */
  profile?: { prefill: Record<string, number>; decode: Record<string, number> };
}

export interface DecodeBenchOptions {
  preset?: string;
  backend?: string;
  /** Prompt tokens in the prefill forward (`--prompt N`, also `--prefill N`). */
  prefillTokens?: number;
  decodeTokens?: number;
  /** Per-op timing pass (adds a run). */
  profile?: boolean;
  /** Timed passes; the fastest counts (default: native 3, ref 1). */
  repeats?: number;
  /** Buffer size of the bandwidth probe (default 1 GiB: far beyond any cache). */
  probeBytes?: number;
  /** Time the all-rows prefill too (default true; false reports prefill_all_rows_tok_s null). */
  allRows?: boolean;
  /**
   * The native backend's untimed warm-up: by default one whole run; N > 0 prefills N tokens
   * instead (256 already touches every expert of a layer), 0 skips it. For long prompts,
   * where a whole extra run costs minutes.
   */
  warmupTokens?: number;
}

/** Wraps a backend to count the weight bytes behind every product and, optionally, time each op. */
function instrument(inner: Backend): { backend: Backend; bytes: () => number; times: Map<string, number>; timing: (on: boolean) => void } {
  let bytes = 0;
  let timing = false;
  const times = new Map<string, number>();
  const backend = observeBackend(inner, (name, args, call) => {
    for (const { w } of productsOf(name, args)) bytes += w.bytes;
    if (name === "matrixRow") bytes += (args[0] as MatrixHandle).bytes / (args[0] as MatrixHandle).outFeatures;
    if (!timing) return call();
    const t0 = performance.now();
    const r = call();
    const product = productsOf(name, args)[0];
    const key = product ? `linear ${product.w.format}` : name;
    times.set(key, (times.get(key) ?? 0) + (performance.now() - t0) / 1000);
    return r;
  });
  return { backend, bytes: () => bytes, times, timing: (on) => (timing = on) };
}

export async function runDecodeBench(opts: DecodeBenchOptions = {}): Promise<DecodeBenchResult> {
  const preset = opts.preset ?? "flash-slice";
  const dir = await cachedPreset(preset);
  const inner = createBackend(opts.backend);
  const native = inner.name === "native";
  // The reference backend needs seconds per token at these sizes: fewer tokens.
  const P = opts.prefillTokens ?? (native ? 64 : 8);
  const D = opts.decodeTokens ?? (native ? 16 : 2);
  // Bandwidth probed before and after the timed passes; the better one is the machine's
  // (other processes on a shared machine only ever lower a probe).
  const loaded = nativeAddon();
  const probeBandwidth = () => ("error" in loaded ? null : loaded.addon.memoryBandwidth(opts.probeBytes ?? 2 ** 30, 5));
  const probe1 = probeBandwidth();
  const probe = instrument(inner);
  const { model, locked } = loadModelForBench(dir, { backend: probe.backend });
  const V = model.cfg.vocabSize;
  const tokens = Array.from({ length: P + D }, (_, i) => (i * 7919 + 11) % V);

  const run = () => {
    const seq = model.newSequence();
    const t0 = performance.now();
    model.forward([{ seq, tokens: tokens.slice(0, P) }], { logits: "last" });
    const t1 = performance.now();
    const b0 = probe.bytes();
    for (let i = P; i < P + D; i++) model.forward([{ seq, tokens: [tokens[i]!] }], { logits: "last" });
    const t2 = performance.now();
    const decodeBytes = probe.bytes() - b0;
    if (opts.allRows === false) return { prefill: (t1 - t0) / 1000, decode: (t2 - t1) / 1000, prefillAll: NaN, decodeBytes };
    model.forward([{ seq: model.newSequence(), tokens: tokens.slice(0, P) }], { logits: "last", residual: "all" });
    const t3 = performance.now();
    return { prefill: (t1 - t0) / 1000, decode: (t2 - t1) / 1000, prefillAll: (t3 - t2) / 1000, decodeBytes };
  };
  // With mapped weights the first pass pages the touched experts in; time the later ones
  // (same tokens, same experts), as a server that has been running would see. The best of
  // several passes: on a shared machine other processes only ever make a pass slower.
  if (native && opts.warmupTokens === undefined) run();
  else if (native && opts.warmupTokens! > 0) {
    const warm = Array.from({ length: opts.warmupTokens! }, (_, i) => (i * 104729 + 3) % V);
    model.forward([{ seq: model.newSequence(), tokens: warm }], { logits: "last" });
  }
  const passes = Array.from({ length: opts.repeats ?? (native ? 3 : 1) }, run);
  const r = {
    prefill: Math.min(...passes.map((p) => p.prefill)),
    decode: Math.min(...passes.map((p) => p.decode)),
    prefillAll: Math.min(...passes.map((p) => p.prefillAll)),
    decodeBytes: passes[0]!.decodeBytes,
  };
  let profile: { prefill: Record<string, number>; decode: Record<string, number> } | undefined;
  if (opts.profile) {
    // A separate pass with every op timed (the wrapper's timing is itself a small cost).
    const phase = (fn: () => void, per: number): Record<string, number> => {
      probe.times.clear();
      const t0 = performance.now();
      fn();
      const total = (performance.now() - t0) / 1000;
      const out: Record<string, number> = { total: total / per };
      let inOps = 0;
      for (const [k, v] of [...probe.times].sort((a, b) => b[1] - a[1])) {
        out[k] = v / per;
        inOps += v;
      }
      out["model code (JS between ops)"] = (total - inOps) / per;
      return out;
    };
    probe.timing(true);
    const seq = model.newSequence();
    const prefill = phase(() => model.forward([{ seq, tokens: tokens.slice(0, P) }], { logits: "last" }), P);
    const decode = phase(() => {
      for (let i = P; i < P + D; i++) model.forward([{ seq, tokens: [tokens[i]!] }], { logits: "last" });
    }, D);
    probe.timing(false);
    profile = { prefill, decode };
  }
  model.close();
  const probe2 = probeBandwidth();

  const bandwidth = probe2 === null ? null : Math.max(probe1!, probe2);
  const bytesPerToken = r.decodeBytes / D;
  const decodeTokS = D / r.decode;
  return {
    backend: inner.name,
    preset,
    decode_tok_s: decodeTokS,
    prefill_tok_s: P / r.prefill,
    prefill_all_rows_tok_s: opts.allRows === false ? null : P / r.prefillAll,
    bytes_per_token: bytesPerToken,
    bandwidth_gbs: bandwidth,
    fraction_of_ceiling: bandwidth ? (decodeTokS * bytesPerToken) / (bandwidth * 1e9) : null,
    prompt_tokens: P,
    prefill_tokens: P,
    decode_tokens: D,
    weights_locked: locked,
    ...(profile ? { profile } : {}),
  };
}

export function printDecodeTable(r: DecodeBenchResult): void {
  const ceiling = r.bandwidth_gbs ? (r.bandwidth_gbs * 1e9) / r.bytes_per_token : null;
  console.log(`decode: preset ${r.preset}, backend ${r.backend}, weights ${r.weights_locked ? "locked in memory" : "not locked"}`);
  console.log(`  decode   ${r.decode_tok_s.toFixed(2).padStart(8)} tok/s   (${r.decode_tokens} tokens; ${(r.bytes_per_token / 2 ** 20).toFixed(1)} MiB of weights per token)`);
  console.log(`  prefill  ${r.prefill_tok_s.toFixed(2).padStart(8)} tok/s   (${r.prompt_tokens}-token prompt in one forward; ${(r.prefill_tok_s / r.decode_tok_s).toFixed(1)}x decode)`);
  if (r.prefill_all_rows_tok_s !== null) console.log(`           ${r.prefill_all_rows_tok_s.toFixed(2).padStart(8)} tok/s   (the same with every row through the last layer; ${(r.prefill_all_rows_tok_s / r.decode_tok_s).toFixed(1)}x decode)`);
  if (ceiling !== null) console.log(`  ceiling  ${ceiling.toFixed(2).padStart(8)} tok/s   at ${r.bandwidth_gbs!.toFixed(1)} GB/s: decode reaches ${(100 * r.fraction_of_ceiling!).toFixed(0)}%`);
  if (r.profile) {
    console.log("  per token (separate timed pass)      decode     prefill");
    const keys = [...new Set([...Object.keys(r.profile.decode), ...Object.keys(r.profile.prefill)])];
    const ms = (v: number | undefined) => (v === undefined ? "-" : (v * 1000).toFixed(2)).padStart(9);
    for (const k of keys) console.log(`    ${k.padEnd(30)} ${ms(r.profile.decode[k])} ms ${ms(r.profile.prefill[k])} ms`);
  }
}

/** `--flag value` options shared by the CLI and direct runs. */
export function decodeOptionsFromArgs(get: (flag: string) => string | undefined, has: (flag: string) => boolean): DecodeBenchOptions {
  const num = (flag: string) => {
    const v = get(flag);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer, got "${v}"`);
    return n;
  };
  if (get("prompt") !== undefined && get("prefill") !== undefined) throw new Error("--prompt and --prefill are the same option; give one");
  return { preset: get("preset"), backend: get("backend"), prefillTokens: num("prompt") ?? num("prefill"), decodeTokens: num("decode"), profile: has("profile") };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const get = (flag: string) => {
    const i = args.indexOf(`--${flag}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const result = await runDecodeBench(decodeOptionsFromArgs(get, (f) => args.includes(`--${f}`)));
  if (args.includes("--json")) console.log(JSON.stringify(result));
  else printDecodeTable(result);
}
