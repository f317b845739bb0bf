import { Engine } from "../src/engine/engine.js";
import type { EngineOptions, SpeculativeMode, SpeculativeOptions } from "../src/engine/types.js";

/** `streams` prompts of 32 tokens, the same in every run, so greedy outputs can be compared. */
export function benchPrompts(vocab: number, streams: number): number[][] {
  return Array.from({ length: streams }, (_, s) => Array.from({ length: 32 }, (_, i) => ((i + 1) * 7919 + (s + 5) * 104729) % (vocab - 3) + 3));
}

export interface EngineRun {
  tokens: number[][];
  /** Decode tokens per second: every generated token after the first, over the longest generation's decode time. */
  tps: number;
  steps: number;
  drafted: number;
  accepted: number;
  /** The k auto chose last (0 when not drafting). */
  k: number;
}

/** A fresh engine (prefix cache off) serving `prompts` greedily, `tokens` new tokens each. */
export async function engineRun(dir: string, speculative: SpeculativeMode | SpeculativeOptions, prompts: number[][], tokens: number, opts: EngineOptions = {}): Promise<EngineRun> {
  const engine = await Engine.load(dir, { ...opts, prefixCache: { enabled: false }, speculative });
  try {
    const rs = await Promise.all(prompts.map((p) => engine.generate({ prompt_tokens: p, max_tokens: tokens, temperature: 0 }).result()));
    const decodeMs = Math.max(...rs.map((r) => r.stats.decodeMs));
    const m = engine.metrics();
    return {
      tokens: rs.map((r) => r.tokens),
      tps: (rs.reduce((n, r) => n + r.tokens.length - 1, 0) * 1000) / decodeMs,
      steps: m.steps_total,
      drafted: m.speculative_drafted_total,
      accepted: m.speculative_accepted_total,
      k: engine.speculationState()?.chosenDrafts ?? 0,
    };
  } finally {
    await engine.dispose();
  }
}
