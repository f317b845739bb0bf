/**
 * Engine benchmark: aggregate decode throughput at 1/4/16 concurrent sequences (greedy, and
 * sampled with temperature 0.7 and top_p 0.95 at 1 and 16), time to
 * first token with and without a prefix-cache hit, MTP speculative decoding (real drafts
 * and an oracle drafter as the ceiling), and decode ms/token at long contexts with the
 * state bytes a sequence needs there.
 *
 * Run: `node dist/bench/engine.js [--json] [--backend NAME] [--quick]` (full: ~6 min on 2 cores with the
 * native backend, most of it the real 64K prefill; --quick prefills 8K and synthesises beyond).
 * Long contexts use a "micro" checkpoint with max_position_embeddings raised to 1,048,576;
 * positions beyond what is practical to prefill are reached with a synthetic state (see
 * longContext below).
 */
import { pathToFileURL } from "node:url";
import { Engine } from "../src/engine/engine.js";
import { stateBytes } from "../src/model/state-size.js";
import { createBackend } from "../src/kernels/index.js";
import type { SequenceState } from "../src/model/state.js";
import { cachedPreset } from "./checkpoints.js";
import { Dsv4Model } from "../src/model/transformer.js";
import { parseConfig } from "../src/model/config.js";
import { tinyHfConfig } from "../src/tiny/tiny.js";

export interface EngineBenchOptions {
  backend?: string;
  quick?: boolean;
  log?: (line: string) => void;
}

export interface EngineBenchResult {
  backend: string;
  throughput: {
    preset: string;
    new_tokens: number;
    rows: Array<{ concurrency: number; tokens_per_s: number; wall_s: number }>;
    scaling_16_vs_1: number;
    /** The same runs sampled as clients usually ask (temperature 0.7, top_p 0.95): sampling runs on the engine's thread. */
    sampled_rows: Array<{ concurrency: number; tokens_per_s: number; wall_s: number }>;
    /** Sampled over greedy tok/s at 16 streams, same engine, same run. */
    sampled_vs_greedy_16: number;
  };
  ttft: { preset: string; prefix_tokens: number; suffix_tokens: number; cold_ms: number; warm_ms: number; cached_tokens: number; speedup: number };
  mtp: { preset: string; tokens: number; plain_ms_per_token: number; mtp: { acceptance: number; ms_per_token: number; speedup: number }; oracle: { acceptance: number; ms_per_token: number; speedup: number } };
  long_context: {
    preset: string;
    rows: Array<{ context: number; decode_ms_per_token: number; state_bytes: number; state_bytes_bf16_flash: number; how: "prefilled" | "synthetic" }>;
    prefill_tok_s: number;
    note: string;
  };
}


/** Untimed generations before the measured ones (page faults of mapped weights, JIT, buffer growth). */
async function warmUp(engine: Engine, streams: number, maxTokens: number): Promise<void> {
  const vocab = engine.model.vocabSize;
  await Promise.all(Array.from({ length: streams }, (_, i) => engine.generate({ prompt_tokens: ids(16, 50 + i, vocab), max_tokens: maxTokens, temperature: 0 }).result()));
}

const ids = (n: number, salt: number, vocab: number) => Array.from({ length: n }, (_, i) => ((i + 1) * 7919 + salt * 104729) % (vocab - 3) + 3);

async function throughput(dir: string, backend: string | undefined, newTokens: number, log: (s: string) => void): Promise<EngineBenchResult["throughput"]> {
  const rows: EngineBenchResult["throughput"]["rows"] = [];
  // One engine for every concurrency level, warmed up at the largest first: page faults,
  // JIT and buffer growth would otherwise land in whichever level ran first.
  const engine = await Engine.load(dir, { backend, maxConcurrentSequences: 16, prefixCache: { enabled: false }, speculative: { enabled: false } });
  const vocab = engine.model.vocabSize;
  await warmUp(engine, 16, newTokens);
  const measure = async (n: number, sampling: { temperature: number; top_p?: number }) => {
    const t0 = performance.now();
    const rs = await Promise.all(
      Array.from({ length: n }, (_, i) => engine.generate({ prompt_tokens: ids(16, i, vocab), max_tokens: newTokens, seed: i, ...sampling }).result()),
    );
    const wall = (performance.now() - t0) / 1000;
    const tokens = rs.reduce((s, r) => s + r.tokens.length, 0);
    return { concurrency: n, tokens_per_s: tokens / wall, wall_s: wall };
  };
  for (const n of [1, 4, 16]) {
    const row = await measure(n, { temperature: 0 });
    rows.push(row);
    log(`  concurrency ${n}: ${row.tokens_per_s.toFixed(1)} tok/s (${row.wall_s.toFixed(2)} s)`);
  }
  const sampled: EngineBenchResult["throughput"]["sampled_rows"] = [];
  for (const n of [1, 16]) {
    const row = await measure(n, { temperature: 0.7, top_p: 0.95 });
    sampled.push(row);
    log(`  concurrency ${n}, temperature 0.7 top_p 0.95: ${row.tokens_per_s.toFixed(1)} tok/s`);
  }
  await engine.dispose();
  return {
    preset: "tiny",
    new_tokens: newTokens,
    rows,
    scaling_16_vs_1: rows[2]!.tokens_per_s / rows[0]!.tokens_per_s,
    sampled_rows: sampled,
    sampled_vs_greedy_16: sampled[1]!.tokens_per_s / rows[2]!.tokens_per_s,
  };
}

async function ttft(dir: string, backend: string | undefined, prefix: number, log: (s: string) => void): Promise<EngineBenchResult["ttft"]> {
  const engine = await Engine.load(dir, { backend, prefixCache: { blockTokens: 64 }, speculative: { enabled: false } });
  const vocab = engine.model.vocabSize;
  const shared = ids(prefix, 99, vocab);
  const run = async (salt: number) => (await engine.generate({ prompt_tokens: [...shared, ...ids(16, salt, vocab)], max_tokens: 1, temperature: 0 }).result());
  // "Cold" means the prefix is not cached, not that the engine has never run: warm it up on
  // a prompt of the same length that shares nothing with the measured one.
  await engine.generate({ prompt_tokens: ids(prefix + 16, 7, vocab).map((t) => (t + 1) % vocab), max_tokens: 1, temperature: 0 }).result();
  const cold = await run(1);
  const warm = await run(2);
  await engine.dispose();
  const r = { preset: "tiny", prefix_tokens: prefix, suffix_tokens: 16, cold_ms: cold.stats.ttftMs, warm_ms: warm.stats.ttftMs, cached_tokens: warm.usage.prompt_cache_hit_tokens, speedup: cold.stats.ttftMs / warm.stats.ttftMs };
  log(`  prefix ${prefix} + 16: cold ${r.cold_ms.toFixed(0)} ms, warm ${r.warm_ms.toFixed(0)} ms (${r.cached_tokens} cached), ${r.speedup.toFixed(1)}x`);
  return r;
}

async function mtp(dir: string, backend: string | undefined, tokens: number, log: (s: string) => void): Promise<EngineBenchResult["mtp"]> {
  const prompt = ids(32, 5, 129280);
  const timed = async (speculative: boolean, draftOverride?: (c: { generated: readonly number[]; proposed: readonly number[]; k: number }) => readonly number[]) => {
    const engine = await Engine.load(dir, { backend, prefixCache: { enabled: false }, speculative: speculative ? { mode: "mtp", drafts: 1, warmupTokens: 8, draftOverride } : "off" });
    await warmUp(engine, 1, 8);
    const r = await engine.generate({ prompt_tokens: prompt, max_tokens: tokens, temperature: 0 }).result();
    await engine.dispose();
    return r;
  };
  const plain = await timed(false);
  const perTok = (r: typeof plain) => r.stats.decodeMs / Math.max(1, r.tokens.length - 1);
  const real = await timed(true);
  const truth = plain.tokens;
  const oracle = await timed(true, ({ generated, proposed, k }) => (generated.length + k <= truth.length ? truth.slice(generated.length, generated.length + k) : proposed));
  for (const r of [real, oracle]) if (r.tokens.join() !== plain.tokens.join()) throw new Error("speculative output differs from plain greedy");
  const row = (r: typeof plain) => ({ acceptance: r.stats.speculative.acceptanceRate, ms_per_token: perTok(r), speedup: perTok(plain) / perTok(r) });
  const out = { preset: "tiny", tokens, plain_ms_per_token: perTok(plain), mtp: row(real), oracle: row(oracle) };
  log(`  plain ${out.plain_ms_per_token.toFixed(1)} ms/token; MTP acceptance ${(out.mtp.acceptance * 100).toFixed(0)}%, ${out.mtp.ms_per_token.toFixed(1)} ms/token (${out.mtp.speedup.toFixed(2)}x); oracle drafts ${(out.oracle.acceptance * 100).toFixed(0)}%, ${out.oracle.ms_per_token.toFixed(1)} ms/token (${out.oracle.speedup.toFixed(2)}x)`);
  return out;
}

/**
 * Grows a prefilled state to `length` positions by tiling its compressed rows: decode cost
 * depends on how many rows attention and the indexer scan, not on their values, so this
 * measures the time at that length without hours of reference-speed prefill.
 */
function extendSynthetic(seq: SequenceState, length: number): void {
  for (const l of seq.layers) {
    for (const c of [l.compressor, l.indexer]) {
      if (!c) continue;
      const have = c.rows.count;
      const want = Math.floor(length / c.ratio);
      for (let r = have; r < want; r++) {
        const at = c.rows.append();
        c.rows.data.copyWithin(at, (r % have) * c.rows.width, (r % have + 1) * c.rows.width);
      }
    }
  }
  seq.length = length;
}

async function longContext(backend: string | undefined, contexts: number[], prefillLimit: number, log: (s: string) => void): Promise<EngineBenchResult["long_context"]> {
  const dir = await cachedPreset("micro", { overrides: { max_position_embeddings: 1048576 }, tag: "-1m" });
  const model = Dsv4Model.load(dir, { backend: createBackend(backend) });
  const bpv = model.backend.alloc(1).BYTES_PER_ELEMENT;
  const flashLike = parseConfig(tinyHfConfig("flash-slice"));
  // Real V4-Flash: 21 CSA + 20 HCA(128) + 2 SWA layers and one MTP layer (spec §1.2); bf16 (spec §6).
  const flashBf16 = (T: number) => {
    const csa = flashLike.layers.find((l) => l.kind === "csa")!;
    const hca = flashLike.layers.find((l) => l.kind === "hca")!;
    const swa = { ...hca, kind: "swa" as const, compressRatio: 0 };
    const cfg = { ...flashLike, layers: [...Array(21).fill(csa), ...Array(20).fill(hca), ...Array(2).fill(swa)], mtpLayers: [swa] };
    return stateBytes(cfg, T, 2);
  };
  const seq = model.newSequence();
  const V = model.cfg.vocabSize;
  const rows: EngineBenchResult["long_context"]["rows"] = [];
  let pos = 0;
  let prefillS = 0;
  for (const ctx of [...contexts].sort((a, b) => a - b)) {
    let how: "prefilled" | "synthetic" = "prefilled";
    if (ctx <= prefillLimit) {
      const t0 = performance.now();
      while (pos < ctx) {
        const n = Math.min(512, ctx - pos);
        model.forward([{ seq, tokens: Array.from({ length: n }, (_, i) => ((pos + i) * 7919 + 11) % V) }], { logits: "none" });
        pos += n;
      }
      prefillS += (performance.now() - t0) / 1000;
    } else {
      extendSynthetic(seq, Math.min(ctx, model.cfg.maxPositions - 8));
      pos = seq.length;
      how = "synthetic";
    }
    const n = 8;
    if (pos + n > model.cfg.maxPositions) extendSynthetic(seq, model.cfg.maxPositions - n), (pos = model.cfg.maxPositions - n);
    const snap = seq.snapshot();
    const t1 = performance.now();
    for (let i = 0; i < n; i++) model.forward([{ seq, tokens: [(pos + i) % V] }], { logits: "last" });
    const ms = (performance.now() - t1) / n;
    seq.restore(snap);
    const row = { context: ctx, decode_ms_per_token: ms, state_bytes: stateBytes(model.cfg, ctx, bpv), state_bytes_bf16_flash: flashBf16(ctx), how };
    rows.push(row);
    log(`  ${String(ctx).padStart(8)}: ${ms.toFixed(2)} ms/token, state ${(row.state_bytes / 2 ** 20).toFixed(1)} MiB here (${bpv * 8}-bit values), V4-Flash bf16 ${(row.state_bytes_bf16_flash / 2 ** 30).toFixed(2)} GiB [${how}]`);
  }
  model.close();
  if (prefillS > 0) log(`  prefill to ${Math.min(pos, prefillLimit)} tokens: ${(Math.min(pos, prefillLimit) / prefillS).toFixed(0)} tok/s average`);
  return {
    preset: "micro (max_position_embeddings 1048576)",
    rows,
    prefill_tok_s: pos > 0 && prefillS > 0 ? Math.min(pos, prefillLimit) / prefillS : 0,
    note: `contexts up to ${prefillLimit} were prefilled for real; longer ones reuse that state with its compressed rows tiled to the target length (same row counts, so the same attention/indexer work per decoded token).`,
  };
}

export async function runEngineBench(opts: EngineBenchOptions = {}): Promise<EngineBenchResult> {
  const log = opts.log ?? (() => undefined);
  const tiny = await cachedPreset("tiny");
  const backend = opts.backend;
  const quick = opts.quick ?? false;
  log("throughput (tiny, greedy, 16-token prompts):");
  const tp = await throughput(tiny, backend, quick ? 8 : 32, log);
  log("time to first token with a shared prefix (tiny):");
  const tt = await ttft(tiny, backend, quick ? 512 : 2048, log);
  log("MTP speculative decoding (tiny, greedy):");
  const mt = await mtp(tiny, backend, quick ? 16 : 48, log);
  log("long context (micro):");
  const lc = await longContext(backend, [1024, 65536, 1048576], quick ? 8192 : 65536, log);
  const b = createBackend(backend);
  return { backend: b.name, throughput: tp, ttft: tt, mtp: mt, long_context: lc };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const args = process.argv.slice(2);
  const i = args.indexOf("--backend");
  const json = args.includes("--json");
  const result = await runEngineBench({ backend: i >= 0 ? args[i + 1] : undefined, quick: args.includes("--quick"), log: json ? undefined : (s) => console.log(s) });
  if (json) console.log(JSON.stringify(result));
}
