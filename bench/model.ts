/**
 * Model-core benchmark (reference backend): decode ms/token at several context lengths on
 * a small preset, state bytes per sequence, and resident memory against checkpoint size.
 * Run: `node dist/bench/model.js [--json] [--preset NAME] [--contexts 256,4096,32768]`.
 */
import { pathToFileURL } from "node:url";
import { Checkpoint } from "../src/formats/safetensors.js";
import { createBackend } from "../src/kernels/index.js";
import { Dsv4Model } from "../src/model/transformer.js";
import { cachedPreset } from "./checkpoints.js";

export interface ModelBenchResult {
  backend: string;
  preset: string;
  checkpoint_bytes: number;
  rss_growth_on_load_bytes: number;
  rss_over_checkpoint: number;
  /** Growth of memory held in ArrayBuffers (where weights live), a steadier figure than RSS. */
  array_buffer_growth_bytes: number;
  array_buffers_over_checkpoint: number;
  contexts: Array<{ context: number; decode_ms_per_token: number; prefill_tok_s: number; state_bytes: number }>;
}


export async function runModelBench(opts: { preset?: string; contexts?: number[]; backend?: string; decodeTokens?: number } = {}): Promise<ModelBenchResult> {
  const preset = opts.preset ?? "tiny";
  const contexts = opts.contexts ?? [256, 4096, 32768];
  const decodeTokens = opts.decodeTokens ?? 16;
  const dir = await cachedPreset(preset);
  const ckpt = Checkpoint.open(dir);
  const checkpointBytes = ckpt.totalBytes();
  ckpt.close();

  global.gc?.();
  const mem0 = process.memoryUsage();
  const model = Dsv4Model.load(dir, { backend: createBackend(opts.backend ?? "ref") });
  // Touch every routed expert so lazily loaded weights count too.
  for (const b of [...model.weights.blocks, ...model.weights.mtp]) for (let e = 0; e < model.cfg.numRoutedExperts; e++) b.moe.expert(e);
  global.gc?.();
  const mem1 = process.memoryUsage();
  const rssGrowth = mem1.rss - mem0.rss;
  const abGrowth = mem1.arrayBuffers - mem0.arrayBuffers;

  const V = model.cfg.vocabSize;
  const results: ModelBenchResult["contexts"] = [];
  const seq = model.newSequence();
  let pos = 0;
  let prefillSeconds = 0;
  let prefillTokens = 0;
  const token = (i: number) => (i * 7919 + 11) % V;
  for (const ctx of [...contexts].sort((a, b) => a - b)) {
    const t0 = performance.now();
    while (pos < ctx) {
      const n = Math.min(512, ctx - pos);
      model.forward([{ seq, tokens: Array.from({ length: n }, (_, i) => token(pos + i)) }], { logits: "none" });
      pos += n;
    }
    prefillSeconds += (performance.now() - t0) / 1000;
    prefillTokens = pos;
    const snap = seq.snapshot();
    const t1 = performance.now();
    for (let i = 0; i < decodeTokens; i++) model.forward([{ seq, tokens: [token(pos + i)] }], { logits: "last" });
    const ms = (performance.now() - t1) / decodeTokens;
    seq.restore(snap);
    results.push({ context: ctx, decode_ms_per_token: ms, prefill_tok_s: prefillTokens / prefillSeconds, state_bytes: seq.bytes });
  }
  model.close();
  return {
    backend: model.backend.name,
    preset,
    checkpoint_bytes: checkpointBytes,
    rss_growth_on_load_bytes: rssGrowth,
    rss_over_checkpoint: rssGrowth / checkpointBytes,
    array_buffer_growth_bytes: abGrowth,
    array_buffers_over_checkpoint: abGrowth / checkpointBytes,
    contexts: results,
  };
}

function printTable(r: ModelBenchResult): void {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  console.log(`model core, backend ${r.backend}, preset ${r.preset}`);
  console.log(`  checkpoint ${mib(r.checkpoint_bytes)}, on load: RSS +${mib(r.rss_growth_on_load_bytes)} (${r.rss_over_checkpoint.toFixed(2)}x), ArrayBuffers +${mib(r.array_buffer_growth_bytes)} (${r.array_buffers_over_checkpoint.toFixed(2)}x)`);
  console.log("  context   decode ms/token   prefill tok/s   state");
  for (const c of r.contexts) {
    console.log(`  ${String(c.context).padStart(7)}   ${c.decode_ms_per_token.toFixed(2).padStart(15)}   ${c.prefill_tok_s.toFixed(1).padStart(13)}   ${mib(c.state_bytes)}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const args = process.argv.slice(2);
  const arg = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const contexts = arg("--contexts")?.split(",").map(Number);
  const result = await runModelBench({ preset: arg("--preset"), contexts, backend: arg("--backend") });
  if (args.includes("--json")) console.log(JSON.stringify(result));
  else printTable(result);
}
