/**
 * The schema constraints' per-token mask at the real V4 vocabulary (129,280
 * tokens): the time to decide, for every token, whether it may come next (the
 * full mask the sampler falls back to when its first draws are refused), for
 * a forced DSML tool call and a json_schema answer, walked with a seeded
 * choice among the allowed tokens. Set against one decode step of the
 * flash-slice checkpoint (real V4-Flash dimensions, 2 layers, 1 row) measured
 * in the same process when that checkpoint is cached (`--no-step` skips it).
 *
 * Run: `node dist/bench/mask.js [--positions 48] [--no-step] [--json]`.
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { TokenConstraint } from "../src/engine/constraints/constraint.js";
import { JsonSchemaConstraint } from "../src/engine/constraints/json-schema.js";
import { compileSchema } from "../src/engine/constraints/schema-compile.js";
import { ToolCallConstraint } from "../src/engine/constraints/tool-call.js";
import { tokenTables } from "../src/engine/constraints/token-tables.js";
import { tokenBinary } from "../src/engine/constraints/token-text.js";
import { sampleAllowed } from "../src/engine/constraints/masked-sampler.js";
import { Rng } from "../src/engine/rng.js";
import { sampleToken } from "../src/engine/sampler.js";
import { loadDefaultTokenizer, type Tokenizer } from "../src/text/tokenizer.js";
import { seededRandom } from "../src/text/seeded-random.js";
import { runStepBench } from "./step.js";

/** The tool and answer schemas of the client tests: nested objects, arrays, enums, anyOf, a recursive $ref. */
const SEARCH = {
  type: "object",
  properties: {
    query: { type: "string", maxLength: 16 },
    filters: { type: "object", properties: { lang: { enum: ["en", "fr", "de"] }, limit: { type: ["integer", "null"] } }, required: ["lang", "limit"], additionalProperties: false },
    tags: { type: "array", items: { type: "string", maxLength: 6 }, minItems: 1, maxItems: 2 },
  },
  required: ["query", "filters", "tags"],
  additionalProperties: false,
};
const PERSON = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 12 },
    age: { type: "integer" },
    skills: { type: "array", items: { $ref: "#/$defs/skill" }, maxItems: 2 },
  },
  required: ["name", "age", "skills"],
  additionalProperties: false,
  $defs: { skill: { type: "object", properties: { label: { type: "string", maxLength: 8 }, sub: { anyOf: [{ $ref: "#/$defs/skill" }, { type: "null" }] } }, required: ["label", "sub"], additionalProperties: false } },
};

export interface MaskRun {
  constraint: string;
  /** Positions where the model chose (a mask was computed); forced positions need none. */
  masked_positions: number;
  forced_positions: number;
  /** Mean and worst time of one full mask over the vocabulary. */
  mask_us_mean: number;
  mask_us_max: number;
  /** Mean allowed tokens per masked position. */
  allowed_mean: number;
  /**
   * What decoding pays per chosen token: the sampler (temperature 1, random logits like the
   * default model's) asking the constraint only as far as it must, minus an unconstrained draw.
   */
  sampler_overhead_us_mean: number;
}

export interface MaskBenchResult {
  vocab: number;
  /** One-time per tokenizer: token bytes and the per-token tables. */
  tables_ms: number;
  runs: MaskRun[];
  /** One flash-slice decode step (1 row), same process; null when skipped or not cached. */
  decode_step_ms: number | null;
  /** Per run: the full mask and the sampler's overhead (means) as fractions of that step. */
  fraction_of_step: Record<string, { full_mask: number; sampler_overhead: number }> | null;
}

/** Walks `c` for `positions` positions, timing a full mask at each chosen one. */
function walk(name: string, tok: Tokenizer, c: TokenConstraint, positions: number, budget: number, seed: number): MaskRun {
  const rnd = seededRandom(seed);
  const times: number[] = [];
  const sampled: number[] = [];
  const rng = new Rng(seed);
  const logits = new Float32Array(tok.vocabSize);
  const params = { temperature: 1, topP: 1, topK: 0, minP: 0 };
  let forced = 0;
  let allowedSum = 0;
  for (let p = 0; p < positions && !c.complete; p++) {
    const view = { phase: "content" as const, remaining: budget - p };
    const f = c.forced(view);
    let token: number;
    if (f !== undefined) {
      forced++;
      token = f;
    } else {
      for (let i = 0; i < logits.length; i++) logits[i] = 4 * (rnd() - 0.5);
      const s0 = performance.now();
      sampleAllowed(logits, params, rng, (id) => c.allows(id, view));
      const s1 = performance.now();
      sampleToken(logits, params, rng);
      sampled.push((s1 - s0 - (performance.now() - s1)) * 1000);
      const allowed: number[] = [];
      const t0 = performance.now();
      for (let id = 0; id < tok.vocabSize; id++) if (c.allows(id, view)) allowed.push(id);
      times.push((performance.now() - t0) * 1000);
      if (allowed.length === 0) break;
      allowedSum += allowed.length;
      token = c.redirect(allowed[Math.floor(rnd() * allowed.length)]!, view);
    }
    if (token === tok.specialIds.eos) break;
    c.accept(token, view);
  }
  const mean = times.reduce((a, b) => a + b, 0) / Math.max(1, times.length);
  return {
    constraint: name,
    masked_positions: times.length,
    forced_positions: forced,
    mask_us_mean: Math.round(mean),
    mask_us_max: Math.round(Math.max(0, ...times)),
    allowed_mean: Math.round(allowedSum / Math.max(1, times.length)),
    sampler_overhead_us_mean: Math.round(sampled.reduce((a, b) => a + b, 0) / Math.max(1, sampled.length)),
  };
}

export async function runMaskBench(opts: { positions?: number; step?: boolean } = {}): Promise<MaskBenchResult> {
  const positions = opts.positions ?? 48;
  const tok = loadDefaultTokenizer();
  const t0 = performance.now();
  for (let id = 0; id < tok.vocabSize; id++) tokenBinary(tok, id);
  tokenTables(tok);
  const tablesMs = performance.now() - t0;
  const search = compileSchema(SEARCH, { strict: true });
  const person = compileSchema(PERSON, { strict: true });
  const runs = [
    walk("tool call (DSML, required)", tok, new ToolCallConstraint(tok, [{ name: "search", schema: search }], null, true), positions, 400, 1),
    walk("json_schema (nested, $ref)", tok, new JsonSchemaConstraint(tok, person), positions, 400, 2),
  ];
  let step: number | null = null;
  if (opts.step !== false && existsSync(join(process.env.DSV4_CACHE_DIR ?? join(homedir(), ".cache", "dsv4"), "flash-slice-seed0", "config.json"))) {
    const r = await runStepBench({ preset: "flash-slice", rows: [1], steps: 2 });
    step = Number(r.rows[0]!.step_ms.toFixed(1));
  }
  return {
    vocab: tok.vocabSize,
    tables_ms: Math.round(tablesMs),
    runs,
    decode_step_ms: step,
    fraction_of_step:
      step === null
        ? null
        : Object.fromEntries(runs.map((r) => [r.constraint, { full_mask: Number((r.mask_us_mean / 1000 / step!).toFixed(4)), sampler_overhead: Number((r.sampler_overhead_us_mean / 1000 / step!).toFixed(4)) }])),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const r = await runMaskBench({ positions: Number(arg("--positions") ?? 48), step: !process.argv.includes("--no-step") });
  if (process.argv.includes("--json")) console.log(JSON.stringify(r));
  else {
    console.log(`schema mask at the real vocabulary (${r.vocab} tokens); per-tokenizer tables ${r.tables_ms} ms once`);
    for (const x of r.runs) {
      const frac = r.fraction_of_step?.[x.constraint];
      console.log(
        `  ${x.constraint.padEnd(28)} full mask ${String(x.mask_us_mean).padStart(6)} µs mean, ${String(x.mask_us_max).padStart(6)} µs max over ${x.masked_positions} chosen positions (${x.forced_positions} forced, ${x.allowed_mean} tokens allowed on average); sampler overhead ${x.sampler_overhead_us_mean} µs/token` +
          (frac === undefined ? "" : `; of a flash-slice decode step (${r.decode_step_ms} ms): full mask ${(frac.full_mask * 100).toFixed(1)}%, sampler overhead ${(frac.sampler_overhead * 100).toFixed(1)}%`),
      );
    }
    if (r.decode_step_ms === null) console.log("  (no flash-slice decode step: checkpoint not cached or --no-step)");
  }
}
