/**
 * Prefix-cache benchmark (issue 12's figures):
 *  - bytes_per_cached_token_flash: the cache's bytes per token it covers, from an agent-like
 *    workload on flash-slice (real V4-Flash layer dimensions), scaled by layer kind to the
 *    43 layers of V4-Flash (21 CSA, 20 HCA, 2 sliding-window);
 *  - agent_trace_hit_ratio: 8 concurrent 20-step tool loops (a shared system prompt, distinct
 *    tasks, tool_choice "required") against the engine with a memory budget smaller than the
 *    trace's state; prompt_cache_hit_tokens over what an ideal cache of the same block size
 *    could have served (the longest block-aligned prefix shared with any earlier finished
 *    request's prompt and answer);
 *  - ttft_warm_vs_cold: time to first token of a long prompt (16K tokens; --quick 4K) on
 *    flash-slice, cold against the same prompt plus a new turn after it was cached.
 *
 * Run: `dsv4 bench cache [--json] [--quick] [--backend NAME] [--context N]`.
 */
import { pathToFileURL } from "node:url";
import { Engine } from "../src/engine/engine.js";
import type { ChatMessage, GenerateRequest, ToolDefinition } from "../src/engine/types.js";
import { loadConfig } from "../src/model/config.js";
import { cachedPreset } from "./checkpoints.js";

export interface CacheBenchOptions {
  backend?: string;
  quick?: boolean;
  /** Context of the TTFT measurement (default 16,384; --quick 4,096). */
  context?: number;
  /** Tool loops and their steps in the agent trace (default 8 × 20). */
  loops?: number;
  steps?: number;
  log?: (line: string) => void;
}

export interface CacheBenchResult {
  backend: string;
  /** Block size of the agent trace (tiny preset) and of the flash-slice figures (128: every compression ratio divides it). */
  block_tokens: number;
  block_tokens_flash: number;
  bytes_per_cached_token_flash: number;
  /** The same figure on flash-slice's own two layers, unscaled. */
  bytes_per_cached_token_slice: number;
  bytes_breakdown_flash: { rows: number; window: number; compressor_state: number };
  agent_trace_hit_ratio: number;
  agent_trace: { requests: number; prompt_tokens: number; hit_tokens: number; ideal_hit_tokens: number; memory_budget_bytes: number; trace_state_bytes: number; evicting: boolean };
  ttft_cold_ms: number;
  ttft_warm_ms: number;
  ttft_warm_vs_cold: number;
  ttft_context_tokens: number;
  goals: Record<string, { value: number; goal: string; met: boolean }>;
}

const TOOLS: ToolDefinition[] = [
  { type: "function", function: { name: "read_file", description: "Read a file of the repository", parameters: { type: "object", properties: { path: { type: "string" } }, required: ["path"] } } },
  { type: "function", function: { name: "run_tests", description: "Run the test suite and return its output", parameters: { type: "object", properties: { filter: { type: "string" } } } } },
];

const SYSTEM = [
  "You are a careful software engineer working in a large TypeScript repository.",
  "Use the tools to read files and run tests before you answer. Keep answers short.",
  "Conventions: small files, one job each; comments say why; tests beside the behaviour they pin.",
].join(" ").repeat(6);

/** Longest common prefix of two token lists. */
function lcp(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

interface TraceResult {
  requests: number;
  promptTokens: number;
  hitTokens: number;
  idealHitTokens: number;
}

/** 8 tool loops at once against `engine`; the ideal is computed from the same requests' tokens. */
async function agentTrace(engine: Engine, loops: number, steps: number, block: number): Promise<TraceResult> {
  const finished: number[][] = []; // fed tokens (prompt + answer) of every finished request
  const out: TraceResult = { requests: 0, promptTokens: 0, hitTokens: 0, idealHitTokens: 0 };
  const loop = async (task: number) => {
    const messages: ChatMessage[] = [
      { role: "system", content: SYSTEM },
      { role: "user", content: `Task ${task}: find why test case ${task * 7 + 3} in suite ${task} fails and propose a fix.` },
    ];
    for (let step = 0; step < steps; step++) {
      const request: GenerateRequest = { messages, tools: TOOLS, tool_choice: "required", thinking: { type: "disabled" }, max_tokens: 48, temperature: 0 };
      const prompt = engine.promptTokens(request);
      // What an ideal cache could serve: everything finished before this request started.
      let best = 0;
      for (const f of finished) best = Math.max(best, lcp(prompt, f));
      const ideal = Math.floor(Math.min(best, prompt.length - 1) / block) * block;
      const r = await engine.generate(request).result();
      finished.push([...prompt, ...r.tokens.slice(0, -1)]);
      out.requests++;
      out.promptTokens += prompt.length;
      out.hitTokens += r.usage.prompt_cache_hit_tokens;
      out.idealHitTokens += ideal;
      const calls = r.message.tool_calls;
      messages.push({ role: "assistant", content: r.message.content, tool_calls: calls.map((c) => ({ id: c.id, type: "function" as const, function: c.function })) });
      for (const c of calls) messages.push({ role: "tool", tool_call_id: c.id, content: `step ${step} of task ${task}: ${c.function.name} returned ${"ok ".repeat(8 + ((task + step) % 5))}` });
      if (calls.length === 0) messages.push({ role: "user", content: `Go on with step ${step + 1}.` });
    }
  };
  await Promise.all(Array.from({ length: loops }, (_, i) => loop(i)));
  return out;
}

async function ttft(engine: Engine, prompt: number[]): Promise<number> {
  const t0 = performance.now();
  for await (const ev of engine.generate({ prompt_tokens: prompt, max_tokens: 1, temperature: 0 })) if (ev.type === "token") break;
  return performance.now() - t0;
}

export async function runCacheBench(opts: CacheBenchOptions = {}): Promise<CacheBenchResult> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const quick = opts.quick ?? false;
  const loops = opts.loops ?? 8;
  const steps = opts.steps ?? (quick ? 8 : 20);
  const context = opts.context ?? (quick ? 4096 : 16384);

  // The agent trace: the tiny preset (real tokenizer) shows the cache's policy; dimensions do not change it.
  const tiny = await cachedPreset("tiny");
  log(`cache: agent trace, ${loops} loops x ${steps} steps (tiny preset)`);
  const probe = await Engine.load(tiny, { backend: opts.backend, maxConcurrentSequences: loops, prefixCache: { memoryBytes: 2 ** 40 } });
  const block = probe.prefixCacheBlockTokens!;
  await agentTrace(probe, loops, steps, block);
  const traceBytes = probe.prefixCacheStats()!.bytes;
  await probe.dispose();
  const budget = Math.floor(traceBytes * 0.5);
  const engine = await Engine.load(tiny, { backend: opts.backend, maxConcurrentSequences: loops, prefixCache: { memoryBytes: budget } });
  const trace = await agentTrace(engine, loops, steps, block);
  await engine.dispose();
  const hitRatio = trace.idealHitTokens > 0 ? trace.hitTokens / trace.idealHitTokens : 0;
  log(`  ${trace.requests} requests, ${trace.promptTokens} prompt tokens: hit ${trace.hitTokens}, ideal ${trace.idealHitTokens} (${(100 * hitRatio).toFixed(1)}%) under a ${(budget / 2 ** 20).toFixed(1)} MiB budget (the trace's state: ${(traceBytes / 2 ** 20).toFixed(1)} MiB)`);

  // Flash dimensions: TTFT cold and warm, then the bytes the cache holds per token.
  const flash = await cachedPreset("flash-slice");
  const fe = await Engine.load(flash, { backend: opts.backend, prefixCache: { memoryBytes: 2 ** 40 } });
  const V = 100000;
  const prompt = Array.from({ length: context }, (_, i) => 1000 + ((i * 7919) % V));
  log(`cache: TTFT at a ${context}-token context (flash-slice)`);
  const cold = await ttft(fe, prompt);
  const next = [...prompt, ...Array.from({ length: 24 }, (_, i) => 500 + i)];
  const warm = await ttft(fe, next);
  log(`  cold ${(cold / 1000).toFixed(1)} s, warm ${(warm / 1000).toFixed(2)} s: ${(cold / warm).toFixed(1)}x`);
  // An answer after the prompt, as an agent's turn adds one (cached as it is generated).
  await fe.generate({ prompt_tokens: next, max_tokens: quick ? 130 : 260, temperature: 0 }).result();
  const st = fe.prefixCacheStats()!;
  const flashBlock = fe.prefixCacheBlockTokens!;
  const cfgLayers = loadConfig(flash).layers.map((l) => l.kind as string);
  await fe.dispose();
  const perKind = (kind: string) => {
    const i = cfgLayers.indexOf(kind);
    return i >= 0 ? st.layers[i]! : { rows: 0, window: 0, compressorState: 0 };
  };
  const csa = perKind("csa");
  const hca = perKind("hca");
  // V4-Flash: 21 CSA, 20 HCA, 2 sliding-window layers (a window only: the HCA layer's window part).
  const scaled = {
    rows: 21 * csa.rows + 20 * hca.rows,
    window: 21 * csa.window + 20 * hca.window + 2 * hca.window,
    compressor_state: 21 * csa.compressorState + 20 * hca.compressorState,
  };
  const flashBytes = (scaled.rows + scaled.window + scaled.compressor_state) / st.tokens;
  const per = (v: number) => v / st.tokens;
  log(`  ${st.nodes} nodes (${st.tips} with tips) over ${st.tokens} tokens: ${(st.bytes / st.tokens).toFixed(0)} B/token on flash-slice, ${flashBytes.toFixed(0)} B/token scaled to 43 layers`);

  const goals = {
    bytes_per_cached_token_flash: { value: flashBytes, goal: "<= 32768", met: flashBytes <= 32768 },
    agent_trace_hit_ratio: { value: hitRatio, goal: ">= 0.95", met: hitRatio >= 0.95 },
    ttft_warm_vs_cold: { value: cold / warm, goal: ">= 20", met: cold / warm >= 20 },
  };
  return {
    backend: opts.backend ?? process.env.DSV4_BACKEND ?? "default",
    block_tokens: block,
    block_tokens_flash: flashBlock,
    bytes_per_cached_token_flash: flashBytes,
    bytes_per_cached_token_slice: st.bytes / st.tokens,
    bytes_breakdown_flash: { rows: per(scaled.rows), window: per(scaled.window), compressor_state: per(scaled.compressor_state) },
    agent_trace_hit_ratio: hitRatio,
    agent_trace: {
      requests: trace.requests, prompt_tokens: trace.promptTokens, hit_tokens: trace.hitTokens, ideal_hit_tokens: trace.idealHitTokens,
      memory_budget_bytes: budget, trace_state_bytes: traceBytes, evicting: budget < traceBytes,
    },
    ttft_cold_ms: cold,
    ttft_warm_ms: warm,
    ttft_warm_vs_cold: cold / warm,
    ttft_context_tokens: context,
    goals,
  };
}

export function printCacheTable(r: CacheBenchResult): void {
  console.log(`prefix cache (blocks: ${r.block_tokens} tokens on tiny, ${r.block_tokens_flash} on flash-slice; backend ${r.backend})`);
  for (const [k, g] of Object.entries(r.goals)) console.log(`  ${k.padEnd(30)} ${g.value.toFixed(g.value < 10 ? 3 : 0).padStart(10)}  goal ${g.goal.padEnd(8)} ${g.met ? "met" : "NOT met"}`);
  const b = r.bytes_breakdown_flash;
  console.log(`  per cached token at 43 layers: rows ${b.rows.toFixed(0)} B, window KV ${b.window.toFixed(0)} B, compressor state ${b.compressor_state.toFixed(0)} B`);
  console.log(`  TTFT at ${r.ttft_context_tokens} tokens: cold ${(r.ttft_cold_ms / 1000).toFixed(1)} s, warm ${(r.ttft_warm_ms / 1000).toFixed(2)} s`);
  const t = r.agent_trace;
  console.log(`  agent trace: ${t.requests} requests, ${t.prompt_tokens} prompt tokens, ${t.hit_tokens} hit of ${t.ideal_hit_tokens} ideal; budget ${(t.memory_budget_bytes / 2 ** 20).toFixed(1)} of ${(t.trace_state_bytes / 2 ** 20).toFixed(1)} MiB`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const get = (flag: string) => {
    const i = args.indexOf(`--${flag}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const result = await runCacheBench({ backend: get("backend"), quick: args.includes("--quick"), context: get("context") ? Number(get("context")) : undefined });
  if (args.includes("--json")) console.log(JSON.stringify(result));
  else printCacheTable(result);
}
