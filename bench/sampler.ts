/**
 * Sampling at the real vocabulary (129,280): milliseconds per sampled token on the engine's
 * thread, for the usual client settings, against the textbook form run in the same process
 * (Math.exp softmax, then a full sort of the probabilities for top_k / top_p), which is what
 * the engine did before. Two rows: a peaked one shaped like a trained model's logits (a few
 * strong tokens over a Gaussian tail) and a flat one like a random-weight checkpoint's.
 * The loops run in the addon where it is built (softmax.ts), else in JavaScript; run once with
 * DSV4_NATIVE_SAMPLING=0 to compare the two.
 * Run: `node dist/bench/sampler.js [--json]`.
 */
import { pathToFileURL } from "node:url";
import { Rng } from "../src/engine/rng.js";
import { sampleToken, type SamplingParams } from "../src/engine/sampler.js";
import { nativeSampling } from "../src/engine/softmax.js";

const V = 129_280;

export interface SamplerBenchRow {
  row: string;
  params: string;
  ms_per_token: number;
  textbook_ms_per_token: number;
  speedup_vs_textbook: number;
}

function textbook(logits: Float32Array, p: SamplingParams, rng: Rng): number {
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i]! > max) max = logits[i]!;
  const probs = new Float64Array(V);
  let sum = 0;
  for (let i = 0; i < V; i++) sum += probs[i] = Math.exp((logits[i]! - max) / p.temperature);
  for (let i = 0; i < V; i++) probs[i]! /= sum;
  if (p.topK > 0 || p.topP < 1) {
    const sorted = Float64Array.from(probs).sort().reverse();
    let kept = 0;
    let mass = 0;
    while (kept < V && !(p.topK > 0 && kept >= p.topK) && !(kept > 0 && mass >= p.topP)) mass += sorted[kept++]!;
    const threshold = sorted[kept - 1]!;
    for (let i = 0; i < V; i++) if (probs[i]! < threshold) probs[i] = 0;
  }
  if (p.minP > 0) {
    const floor = p.minP * probs.reduce((a, b) => Math.max(a, b), 0);
    for (let i = 0; i < V; i++) if (probs[i]! < floor) probs[i] = 0;
  }
  let total = 0;
  for (let i = 0; i < V; i++) total += probs[i]!;
  const u = rng.next() * total;
  let acc = 0;
  for (let i = 0; i < V; i++) if ((acc += probs[i]!) > u) return i;
  return V - 1;
}

function msPer(f: () => void): number {
  for (let i = 0; i < 20; i++) f();
  let best = Infinity;
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) f();
    best = Math.min(best, (performance.now() - t0) / 10);
  }
  return best;
}

export function runSamplerBench(): SamplerBenchRow[] {
  const random = new Rng(3);
  const gaussian = () => Array.from({ length: 12 }, () => random.next()).reduce((a, b) => a + b, 0) - 6;
  const rows: Array<[string, Float32Array]> = [
    ["peaked", Float32Array.from({ length: V }, (_, i) => gaussian() * 3 + (i % 6000 === 0 ? 14 + random.next() * 4 : 0))],
    ["flat", Float32Array.from({ length: V }, () => random.next() * 4 - 2)],
  ];
  const settings: SamplingParams[] = [
    { temperature: 1, topP: 1, topK: 0, minP: 0 },
    { temperature: 0.7, topP: 0.95, topK: 0, minP: 0 },
    { temperature: 1, topP: 1, topK: 40, minP: 0 },
    { temperature: 1, topP: 1, topK: 0, minP: 0.05 },
  ];
  const out: SamplerBenchRow[] = [];
  const rng = new Rng(1);
  for (const [row, logits] of rows) {
    for (const p of settings) {
      const ms = msPer(() => sampleToken(logits, p, rng));
      const ref = msPer(() => textbook(logits, p, rng));
      const r = (x: number) => Math.round(x * 1000) / 1000;
      out.push({ row, params: `temperature ${p.temperature}${p.topP < 1 ? `, top_p ${p.topP}` : ""}${p.topK ? `, top_k ${p.topK}` : ""}${p.minP ? `, min_p ${p.minP}` : ""}`, ms_per_token: r(ms), textbook_ms_per_token: r(ref), speedup_vs_textbook: r(ref / ms) });
    }
  }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const rows = runSamplerBench();
  const loops = nativeSampling() ? "native" : "javascript";
  if (process.argv.includes("--json")) console.log(JSON.stringify({ vocab: V, loops, rows }));
  else {
    console.log(`sampling one token over ${V.toLocaleString("en")} logits (${loops} loops; ms, best of 7; textbook: Math.exp softmax and a full sort, same process)`);
    for (const r of rows) console.log(`  ${r.row.padEnd(7)} ${r.params.padEnd(32)} ${r.ms_per_token.toFixed(3).padStart(7)}   textbook ${r.textbook_ms_per_token.toFixed(3).padStart(7)}   ${r.speedup_vs_textbook.toFixed(1)}x`);
  }
}
