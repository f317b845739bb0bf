/**
 * Engine-level speculative decoding with the oracle drafter: decode tokens/s with
 * `speculative: "off"`, with k = 1…5 drafts per step all accepted (the oracle proposes the
 * main model's own greedy continuation; `overrideOnly`, so the checkpoint's drafter does not
 * run and only verification is timed), the same at the largest k with the drafter running,
 * and `auto` (random weights: drafts almost never agree, so auto should stop drafting).
 * Every run must give the plain tokens. Figures are ratios to `off` in the same process.
 * Run: `node dist/bench/spec-oracle.js [--preset tiny-0731] [--tokens 64] [--streams 1] [--json]`.
 */
import { pathToFileURL } from "node:url";
import { Engine } from "../src/engine/engine.js";
import type { SpeculativeMode, SpeculativeOptions } from "../src/engine/types.js";
import { cachedPreset } from "./checkpoints.js";
import { benchPrompts, engineRun, type EngineRun } from "./engine-runs.js";

export interface OracleRow {
  tokens_per_s: number;
  vs_off: number;
  /** Generated tokens per engine step (prefill steps included). */
  tokens_per_step: number;
}

export interface SpecOracleResult {
  preset: string;
  streams: number;
  tokens: number;
  off_tokens_per_s: number;
  /** k drafts per step, all accepted, drafter not run. */
  verify_only: Record<number, OracleRow>;
  /** The largest k with the checkpoint's drafter running (its cost included). */
  with_drafter: OracleRow & { k: number };
  auto: OracleRow & { drafted: number; accepted: number; chosen_k: number };
}

export async function runSpecOracleBench(opts: { preset?: string; tokens?: number; streams?: number } = {}): Promise<SpecOracleResult> {
  const preset = opts.preset ?? "tiny-0731";
  const N = opts.tokens ?? 64;
  const streams = opts.streams ?? 1;
  const dir = await cachedPreset(preset);
  const first = await Engine.load(dir, { speculative: "off" });
  const vocab = first.model.vocabSize;
  const mode: SpeculativeMode = first.model.release === "0731" ? "dspark" : "mtp";
  await first.dispose();
  const prompts = benchPrompts(vocab, streams);
  const run = (speculative: SpeculativeMode | SpeculativeOptions) => engineRun(dir, speculative, prompts, N);
  // The faster of two plain runs: a conservative baseline on a shared machine.
  const offs = [await run("off"), await run("off")];
  const off = offs[0]!.tps >= offs[1]!.tps ? offs[0]! : offs[1]!;
  const truth = off.tokens;
  const byPrefix = new Map<string, number[]>();
  for (const t of truth) for (let i = 0; i <= t.length; i++) byPrefix.set(t.slice(0, i).join(","), t.slice(i));
  const oracle: SpeculativeOptions["draftOverride"] = ({ generated, k }) => {
    const rest = byPrefix.get(generated.join(",")) ?? [];
    return Array.from({ length: k }, (_, i) => rest[i] ?? 0);
  };
  const row = (r: EngineRun): OracleRow => {
    if (r.tokens.join("|") !== truth.join("|")) throw new Error("speculative output differs from plain greedy");
    return { tokens_per_s: r.tps, vs_off: r.tps / off.tps, tokens_per_step: (N * streams) / r.steps };
  };
  const verifyOnly: Record<number, OracleRow> = {};
  for (const k of [1, 2, 3, 4, 5]) verifyOnly[k] = row(await run({ mode, drafts: k, maxMtpDrafts: 5, draftOverride: oracle, overrideOnly: true }));
  const kMax = 5;
  const withDrafter = { k: kMax, ...row(await run({ mode, drafts: kMax, maxMtpDrafts: 5, draftOverride: oracle })) };
  const a = await run("auto");
  return {
    preset, streams, tokens: N, off_tokens_per_s: off.tps, verify_only: verifyOnly, with_drafter: withDrafter,
    auto: { ...row(a), drafted: a.drafted, accepted: a.accepted, chosen_k: a.k },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const get = (flag: string) => {
    const i = args.indexOf(`--${flag}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const num = (flag: string) => (get(flag) === undefined ? undefined : Number(get(flag)));
  const r = await runSpecOracleBench({ preset: get("preset"), tokens: num("tokens"), streams: num("streams") });
  if (args.includes("--json")) console.log(JSON.stringify(r));
  else {
    const f = (x: OracleRow) => `${x.tokens_per_s.toFixed(1)} tok/s (${x.vs_off.toFixed(2)}x off, ${x.tokens_per_step.toFixed(2)} tokens/step)`;
    console.log(`${r.preset}, ${r.streams} stream(s), ${r.tokens} tokens: off ${r.off_tokens_per_s.toFixed(1)} tok/s`);
    for (const [k, x] of Object.entries(r.verify_only)) console.log(`  oracle, ${k} drafts accepted, verification only: ${f(x)}`);
    console.log(`  oracle, ${r.with_drafter.k} drafts, drafter running: ${f(r.with_drafter)}`);
    console.log(`  auto: ${f(r.auto)}; drafted ${r.auto.drafted}, accepted ${r.auto.accepted}, chose k=${r.auto.chosen_k}`);
  }
  process.exit(0);
}
