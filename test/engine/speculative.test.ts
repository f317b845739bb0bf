import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { samplingProbs } from "../../src/engine/sampler.js";
import { SpecPolicy } from "../../src/engine/spec-policy.js";
import type { EngineOptions, SpeculativeOptions } from "../../src/engine/types.js";
import { createBackend } from "../../src/kernels/index.js";
import { Dsv4Model } from "../../src/model/transformer.js";
import { checkpoint, promptIds } from "./helpers.js";

/** Per request and position: the logits the sequence chose from (after them: the token). */
type Seen = Map<string, Float32Array | Float64Array>;

async function generate(dir: string, prompts: number[][], n: number, opts: EngineOptions): Promise<{ tokens: number[][]; seen: Seen; engine: Engine }> {
  const seen: Seen = new Map();
  const engine = await Engine.load(dir, {
    prefixCache: { enabled: false },
    ...opts,
    logitsProcessor: ({ id, generated, logits }) => {
      const key = `${id}@${generated.length}`;
      assert.ok(!seen.has(key), `position ${key} was read twice`);
      seen.set(key, logits.slice());
    },
  });
  try {
    const rs = await Promise.all(prompts.map((p, i) => engine.generate({ id: `r${i}`, prompt_tokens: p, max_tokens: n, temperature: 0 }).result()));
    return { tokens: rs.map((r) => r.tokens), seen, engine };
  } finally {
    await engine.dispose();
  }
}

/**
 * An oracle drafter: the main model's own greedy continuation, cut after `cut(position)`
 * tokens and followed by wrong ones up to k, so exactly that many drafts are accepted.
 */
function oracle(truth: number[][], cut: (generated: number, k: number, pending: number) => number): SpeculativeOptions["draftOverride"] {
  const byPrefix = new Map<string, number[]>();
  for (const t of truth) for (let i = 0; i <= t.length; i++) byPrefix.set(t.slice(0, i).join(","), t.slice(i));
  return ({ generated, k, pending }) => {
    const rest = byPrefix.get(generated.join(",")) ?? [];
    const a = Math.min(cut(generated.length, k, pending), rest.length);
    const wrong = Array.from({ length: k - a }, (_, i) => ((rest[a + i] ?? 7) + 1 + i) % 1024);
    return [...rest.slice(0, a), ...wrong];
  };
}

function hash(x: number): number {
  let h = Math.imul(x ^ 0x5bd1e995, 0x45d9f3b);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

/** The drafters on their smallest checkpoints: window 8, ratios 4 and 8. */
const DRAFTERS = [
  { preset: "micro", mode: "mtp" as const, ks: [1, 3, 5], maxMtpDrafts: 5 },
  { preset: "micro-0731", mode: "dspark" as const, ks: [1, 2, 4], maxMtpDrafts: undefined },
];

for (const { preset, mode, ks, maxMtpDrafts } of DRAFTERS) describe(`speculative decoding (${mode}, ${preset})`, async () => {
  const dir = await checkpoint(preset);
  // Lengths around the ratio-4 and ratio-8 boundaries and past the 8-token window; 40 tokens each.
  const prompts = [promptIds(30, 1), promptIds(7, 2), promptIds(50, 3), promptIds(3, 4)];
  const N = 40;
  const plain = generate(dir, prompts, N, { speculative: "off" });

  test(`${mode} drafts, ${ks.join("/")} per step, batched, give plain greedy tokens and logits`, async () => {
    const ref = await plain;
    for (const drafts of ks) {
      const spec = await generate(dir, prompts, N, { speculative: { mode, drafts, maxMtpDrafts, warmupTokens: 4 } });
      assert.deepEqual(spec.tokens, ref.tokens, `${drafts} drafts`);
      assert.deepEqual([...spec.seen.keys()].sort(), [...ref.seen.keys()].sort());
      for (const [key, logits] of spec.seen) assert.deepEqual(logits, ref.seen.get(key), `${drafts} drafts: logits at ${key}`);
      assert.ok(spec.engine.metrics().speculative_drafted_total > 0);
    }
  });

  test("drafts over a draft vocabulary propose only its ids and give plain greedy tokens and logits", async () => {
    const ref = await plain;
    const proposed: number[] = [];
    const record: SpeculativeOptions["draftOverride"] = ({ proposed: p }) => {
      proposed.push(...p);
      return p;
    };
    // No tokenizer in these checkpoints: the draft vocabulary is ids 0-299 of 1024.
    const spec = await generate(dir, prompts, N, { speculative: { mode, drafts: ks[ks.length - 1]!, maxMtpDrafts, warmupTokens: 4, draftVocab: 300, draftOverride: record } });
    assert.deepEqual(spec.tokens, ref.tokens);
    for (const [key, logits] of spec.seen) assert.deepEqual(logits, ref.seen.get(key), `logits at ${key}`);
    assert.ok(proposed.length > 0);
    assert.deepEqual(proposed.filter((t) => t >= 300), [], "proposals outside the draft vocabulary");
  });

  test("oracle drafts cut at every accepted length 0…k give plain greedy tokens and logits", async () => {
    const ref = await plain;
    for (const k of [2, ks[ks.length - 1]!]) {
      // The accepted length is a hash of the position and token, so every length meets many boundary phases.
      const override = oracle(ref.tokens, (g, k, pending) => hash(g * 4099 + pending) % (k + 1));
      const spec = await generate(dir, prompts, N, { speculative: { mode, drafts: k, maxMtpDrafts, draftOverride: override } });
      assert.deepEqual(spec.tokens, ref.tokens, `k=${k}`);
      for (const [key, logits] of spec.seen) assert.deepEqual(logits, ref.seen.get(key), `k=${k}: logits at ${key}`);
      assert.equal(spec.seen.size, ref.seen.size);
      const m = spec.engine.metrics();
      // Every accepted length occurred.
      for (let a = 0; a <= k; a++) assert.ok(m.speculative_accepted_per_step[a]! > 0, `k=${k}: no step accepted exactly ${a}`);
      assert.ok(m.steps_total < prompts.length * N);
    }
  });

  test("with the prefix cache on, verify steps stop short of block boundaries and later hits stay exact", async () => {
    const ref = await plain;
    const override = oracle(ref.tokens, (g, k) => (g % 2 === 0 ? k : g % (k + 1)));
    const engine = await Engine.load(dir, { prefixCache: { blockTokens: 16 }, speculative: { mode, drafts: 4, draftOverride: override } });
    try {
      const run = () => Promise.all(prompts.map((p) => engine.generate({ prompt_tokens: p, max_tokens: N, temperature: 0 }).result().then((r) => r.tokens)));
      assert.deepEqual(await run(), ref.tokens);
      // Second round: prompts restored from the tip captured at the last block boundary each answer reached.
      for (const [i, p] of prompts.entries()) {
        const g = Math.floor((p.length + N - 1) / 16) * 16 + 3 - p.length;
        const r = await engine.generate({ prompt_tokens: [...p, ...ref.tokens[i]!.slice(0, g)], max_tokens: Math.min(10, N - g), temperature: 0 }).result();
        assert.equal(r.usage.prompt_cache_hit_tokens, p.length + g - 3, `prompt ${i} hit the answer's last block`);
        assert.deepEqual(r.tokens, ref.tokens[i]!.slice(g, g + r.tokens.length), `prompt ${i} after a cache hit`);
      }
    } finally {
      await engine.dispose();
    }
  });

  test("auto stops drafting when drafts are never accepted, and probes again rarely", async () => {
    // Every proposal is wrong: auto must notice and verify (almost) nothing.
    const never: SpeculativeOptions["draftOverride"] = ({ k }) => Array.from({ length: k }, () => 0);
    const engine = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: { mode: "auto", draftOverride: never } });
    try {
      // How fast auto learns depends on the step times it measures (a loaded machine blurs
      // them); once it has, only probes draft: one draft each, spaced by doubling intervals.
      await engine.generate({ prompt_tokens: prompts[0]!, max_tokens: 120, temperature: 0 }).result();
      const learning = engine.metrics().speculative_drafted_total;
      assert.ok(learning < 60, `${learning} drafts while learning, in 120 tokens`);
      await engine.generate({ prompt_tokens: prompts[1]!, max_tokens: 120, temperature: 0 }).result();
      const m = engine.metrics();
      assert.equal(m.speculative_accepted_total, 0);
      assert.ok(m.speculative_drafted_total - learning <= 8, `${m.speculative_drafted_total - learning} drafts in the next 120 tokens`);
      assert.equal(engine.speculationState()!.chosenDrafts, 0);
    } finally {
      await engine.dispose();
    }
  });

  if (mode === "dspark") test("auto's probes, drafted after steps that owed their ring rows, propose what drafting every step proposes", async () => {
    // The drafter's own proposals, by generated length, passed through unchanged.
    const recorder = (into: Map<number, number>): SpeculativeOptions["draftOverride"] => ({ generated, proposed }) => {
      if (proposed.length > 0) into.set(generated.length, proposed[0]!);
      return proposed;
    };
    const run = async (speculative: SpeculativeOptions, into: Map<number, number>) => {
      const engine = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: { ...speculative, draftOverride: recorder(into) } });
      try {
        return await engine.generate({ prompt_tokens: prompts[3]!, max_tokens: 250, temperature: 0 }).result();
      } finally {
        await engine.dispose();
      }
    };
    const every = new Map<number, number>();
    const probes = new Map<number, number>();
    await run({ mode: "dspark", drafts: 1 }, every);
    // A probe every 20 steps (the real budget spaces them hundreds apart on this model): each
    // comes after steps that owed their ring rows, more than a window of them.
    const proto = SpecPolicy.prototype as unknown as { probeDue: (seqs: number) => number };
    const probeDue = proto.probeDue;
    proto.probeDue = () => 20;
    try {
      await run({ mode: "auto", priorDraftSteps: null }, probes);
    } finally {
      proto.probeDue = probeDue;
    }
    const compared = [...probes].filter(([g]) => every.has(g));
    assert.ok(compared.filter(([g]) => g > 20).length >= 3, `probes at ${[...probes.keys()]} leave too few after owed steps to compare`);
    for (const [g, token] of compared) assert.equal(token, every.get(g), `the probe's draft after ${g} generated tokens`);
  });

  if (mode === "mtp") test("while the next draft is further off than the warm-up, a prompt's last chunk returns one MTP entry, not the warm-up's", async () => {
    const never: SpeculativeOptions["draftOverride"] = ({ k }) => Array.from({ length: k }, () => 0);
    const proto = SpecPolicy.prototype as unknown as { probeDue: (seqs: number) => number };
    const probeDue = proto.probeDue;
    const engine = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: { mode: "auto", draftOverride: never } });
    try {
      type Req = { tokens: number[]; logits: string; residualLast: number };
      const runner = (engine as unknown as { runner: { step(reqs: Req[]): Promise<unknown> } }).runner;
      const step = runner.step.bind(runner);
      const prompted: number[] = [];
      runner.step = (reqs) => {
        for (const r of reqs) if (r.tokens.length > 1 && r.logits === "last") prompted.push(r.residualLast);
        return step(reqs);
      };
      await engine.generate({ prompt_tokens: prompts[0]!, max_tokens: 120, temperature: 0 }).result();
      // Before anything is measured a prompt gives the warm-up's entries (the window's 8 here).
      assert.deepEqual(prompted, [8]);
      // The choice rests on measured step times: on a loaded machine (CI, two test files at
      // once) a noisy pair can make one draft look free for a while, so give it a little longer.
      for (let i = 0; i < 3 && engine.speculationState()!.chosenDrafts !== 0; i++) await engine.generate({ prompt_tokens: prompts[1]!, max_tokens: 60, temperature: 0 }).result();
      assert.equal(engine.speculationState()!.chosenDrafts, 0, "auto should have stopped drafting");
      proto.probeDue = () => 1000;
      const before = prompted.length;
      const r = await engine.generate({ prompt_tokens: prompts[2]!, max_tokens: N, temperature: 0 }).result();
      assert.deepEqual(prompted.slice(before), [1]);
      assert.deepEqual(r.tokens, (await plain).tokens[2]);
    } finally {
      proto.probeDue = probeDue;
      await engine.dispose();
    }
  });

  if (mode === "dspark") test("while drafting does not pay, only the sequence a probe drafts for writes its rings ahead of it", async () => {
    // Proposals are always wrong, so auto stops drafting; probes every 6 steps. Ahead of each,
    // one sequence writes its ring rows (the probe's), not the whole batch.
    const never: SpeculativeOptions["draftOverride"] = ({ k }) => Array.from({ length: k }, () => 0);
    const proto = SpecPolicy.prototype as unknown as { probeDue: (seqs: number) => number };
    const probeDue = proto.probeDue;
    proto.probeDue = () => 6;
    const engine = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: { mode: "auto", draftOverride: never, priorDraftSteps: null } });
    try {
      type Req = { tokens: number[]; dspark?: boolean | "defer"; saveTail?: number };
      const runner = (engine as unknown as { runner: { step(reqs: Req[]): Promise<unknown> } }).runner;
      const step = runner.step.bind(runner);
      const fedPerStep: number[] = [];
      runner.step = (reqs) => {
        if (reqs.every((r) => r.tokens.length === 1 || r.saveTail !== undefined)) fedPerStep.push(reqs.filter((r) => r.dspark === true && r.saveTail === undefined).length);
        return step(reqs);
      };
      const rs = await Promise.all(prompts.map((p) => engine.generate({ prompt_tokens: p, max_tokens: N, temperature: 0 }).result()));
      assert.deepEqual(rs.map((r) => r.tokens), (await plain).tokens);
      const m = engine.metrics();
      assert.equal(m.speculative_accepted_total, 0);
      assert.ok(m.speculative_drafted_total >= 3, `${m.speculative_drafted_total} probes`);
      assert.ok(fedPerStep.length >= 30);
      assert.ok(Math.max(...fedPerStep) <= 1, `rows writing their rings per decode step: ${fedPerStep.join(",")}`);
    } finally {
      proto.probeDue = probeDue;
      await engine.dispose();
    }
  });

  if (mode === "dspark") test("the engine counts the ring rows each sequence owes as the model does", async () => {
    // A probe every 20 steps: between them every sequence owes, ahead of one a sequence settles.
    const never: SpeculativeOptions["draftOverride"] = ({ k }) => Array.from({ length: k }, () => 0);
    const proto = SpecPolicy.prototype as unknown as { probeDue: (seqs: number) => number };
    const probeDue = proto.probeDue;
    proto.probeDue = () => 20;
    const engine = await Engine.load(dir, { runner: "inline", prefixCache: { enabled: false }, speculative: { mode: "auto", draftOverride: never, priorDraftSteps: null } });
    try {
      type Req = { id: number };
      const inner = engine as unknown as {
        runner: { step(reqs: Req[]): Promise<unknown>; host: { states: Map<number, { dsparkOwed: { count: number } | null }> } };
        scheduler: { running: Array<{ state: { id: number; owed: number } | null }> };
      };
      const runner = inner.runner;
      const step = runner.step.bind(runner);
      const seen: Array<{ id: number; engine: number; model: number }> = [];
      // Before each step: what the engine knows from the last one (and any draft since) against the model.
      runner.step = async (reqs) => {
        for (const seq of inner.scheduler.running) {
          const state = seq.state && runner.host.states.get(seq.state.id);
          if (state) seen.push({ id: seq.state!.id, engine: seq.state!.owed, model: state.dsparkOwed?.count ?? 0 });
        }
        return step(reqs);
      };
      await Promise.all(prompts.slice(0, 3).map((p) => engine.generate({ prompt_tokens: p, max_tokens: N, temperature: 0 }).result()));
      const settled = seen.some((e, i) => e.engine === 0 && seen.slice(0, i).some((d) => d.id === e.id && d.engine > 0));
      assert.ok(settled, "sequences owed rows and settled them");
      for (const e of seen) assert.equal(e.engine, e.model, `sequence state ${e.id}`);
    } finally {
      proto.probeDue = probeDue;
      await engine.dispose();
    }
  });

  if (mode === "dspark") test("auto times a draft and a plain step at load (no prior given), and not when one is", async () => {
    const measured = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: "auto" });
    try {
      const s = measured.speculationState()!;
      assert.ok(s.draftMs !== null && s.draftMs > 0, "a draft was timed");
      assert.ok((s.stepMs[1] ?? 0) > 0, "a one-row step was timed");
      assert.ok(s.settleMs !== null && s.settleMs >= 0, "settling owed ring rows was timed");
      assert.equal(measured.metrics().speculative_drafted_total, 0, "the calibration drafts are not counted as verified drafts");
      // The scratch sequence is gone: a request still gets the plain greedy tokens.
      const r = await measured.generate({ prompt_tokens: prompts[1]!, max_tokens: N, temperature: 0 }).result();
      assert.deepEqual(r.tokens, (await plain).tokens[1]);
    } finally {
      await measured.dispose();
    }
    const given = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: { mode: "auto", priorDraftSteps: 50 } });
    try {
      assert.equal(given.speculationState()!.draftMs, null);
    } finally {
      await given.dispose();
    }
  });

  test("auto explores with one sequence's draft, not the whole batch's", async () => {
    // Without a cost prior auto probes before anything is measured; with 4 sequences decoding, only one of them drafts.
    const never: SpeculativeOptions["draftOverride"] = ({ k }) => Array.from({ length: k }, () => 0);
    const engine = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: { mode: "auto", draftOverride: never, priorDraftSteps: null } });
    try {
      await Promise.all(prompts.slice(0, 4).map((p) => engine.generate({ prompt_tokens: p, max_tokens: 6, temperature: 0 }).result()));
      assert.equal(engine.metrics().speculative_drafted_total, 1);
    } finally {
      await engine.dispose();
    }
  });

  test("with the config's cost prior, auto does not draft before it has timed a step, and a costly drafter waits", async () => {
    const never: SpeculativeOptions["draftOverride"] = ({ k }) => Array.from({ length: k }, () => 0);
    const engine = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: { mode: "auto", draftOverride: never, priorDraftSteps: 50 } });
    try {
      await Promise.all(prompts.slice(0, 4).map((p) => engine.generate({ prompt_tokens: p, max_tokens: 12, temperature: 0 }).result()));
      assert.equal(engine.metrics().speculative_drafted_total, 0);
    } finally {
      await engine.dispose();
    }
  });

  test("sampled speculative output is reproducible with a seed", async () => {
    const engine = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: { mode, drafts: 3 } });
    try {
      const run = () => engine.generate({ prompt_tokens: prompts[0]!, max_tokens: 10, temperature: 0.8, top_p: 0.95, seed: 42 }).result();
      const a = await run();
      const b = await run();
      assert.deepEqual(a.tokens, b.tokens);
      assert.equal(a.tokens.length, 10);
    } finally {
      await engine.dispose();
    }
  });

  test("an explicit drafter the checkpoint lacks is refused before loading", async () => {
    const other = mode === "mtp" ? "dspark" : "mtp";
    await assert.rejects(Engine.load(dir, { speculative: other }), new RegExp(`speculative: "${other}" needs a checkpoint with`));
  });
});

/** A generous 99.9% bound: mean dof, sd sqrt(2 dof). */
const chiBound = (dof: number) => dof + 4.5 * Math.sqrt(2 * dof) + 5;

// tiny-0731 has the real 129k vocabulary: each sampled row is a full-vocabulary pass, so fewer draws over fewer cells.
// With a draft vocabulary of half the ids, q is 0 on some of the tokens p samples: those come
// only from the residual of rejected drafts.
const SAMPLERS: Array<{ preset: string; mode: "mtp" | "dspark"; n: number; topK: number; draftVocab?: number }> = [
  { preset: "micro", mode: "mtp", n: 1500, topK: 5 },
  { preset: "micro-0731", mode: "dspark", n: 1500, topK: 5 },
  { preset: "micro-0731", mode: "dspark", n: 1500, topK: 5, draftVocab: 512 },
  { preset: "tiny-0731", mode: "dspark", n: 200, topK: 3 },
];

for (const { preset, mode, n, topK, draftVocab } of SAMPLERS) describe(`speculative sampling keeps the main model's distribution (${mode}, ${preset}${draftVocab ? `, draft vocabulary ${draftVocab}` : ""})`, async () => {
  const dir = await checkpoint(preset);

  test("the first two verified tokens are distributed as under plain sampling (chi-square, fixed seeds)", async () => {
    const prompt = promptIds(12, 9, 1024);
    const params = { temperature: 1.3, topP: 1, topK, minP: 0 };
    const FIRST = 17; // forced first token (chosen from the prefill row), so the verified tokens start at a known context
    const force = ({ generated, logits }: { generated: readonly number[]; logits: Float32Array | Float64Array }) => {
      if (generated.length === 0) logits.forEach((_, i) => (logits[i] = i === FIRST ? 0 : -1e30));
    };
    // Exact targets from the model: P(x1) and the marginal of x2 = Σ_x1 P(x1) P(x2 | x1).
    const model = Dsv4Model.load(dir, { backend: createBackend() });
    const row = (ids: number[]) => samplingProbs(model.forward([{ seq: model.newSequence(), tokens: ids }])[0]!.logits[0]!, params);
    const p1 = row([...prompt, FIRST]);
    const p2 = new Float64Array(p1.length);
    p1.forEach((p, x) => {
      if (p > 0) row([...prompt, FIRST, x]).forEach((q, y) => (p2[y] = p2[y]! + p * q));
    });
    model.close();

    const engine = await Engine.load(dir, {
      prefixCache: { blockTokens: 64 }, maxConcurrentSequences: 64, maxQueuedRequests: 4096, logitsProcessor: force,
      speculative: { mode, drafts: 3, warmupTokens: 4, draftVocab },
    });
    const counts = [new Array<number>(p1.length).fill(0), new Array<number>(p1.length).fill(0)];
    try {
      const rs = await Promise.all(
        Array.from({ length: n }, (_, seed) => engine.generate({ prompt_tokens: prompt, max_tokens: 5, temperature: params.temperature, top_k: params.topK, seed }).result()),
      );
      for (const r of rs) {
        assert.equal(r.tokens[0], FIRST);
        counts[0]![r.tokens[1]!]!++;
        counts[1]![r.tokens[2]!]!++;
      }
      const m = engine.metrics();
      // Both paths ran: drafts kept and drafts replaced from the residual (random 129k-vocabulary
      // drafts are never kept: there only the residual path is checked).
      assert.ok(m.speculative_accepted_total < m.speculative_drafted_total);
      // Tokens the drafts could never propose were drawn (from the residual) all the same.
      if (draftVocab) assert.ok(counts.every((c) => c.some((k, t) => k > 0 && t >= draftVocab)), "no verified token outside the draft vocabulary");
      if (preset !== "tiny-0731") assert.ok(m.speculative_accepted_total > 0);
    } finally {
      await engine.dispose();
    }
    [p1, p2].forEach((p, j) => {
      let chi2 = 0;
      let dof = -1;
      p.forEach((pi, i) => {
        if (pi === 0) return assert.equal(counts[j]![i], 0, `token ${i} cannot follow but was drawn`);
        chi2 += (counts[j]![i]! - n * pi) ** 2 / (n * pi);
        dof++;
      });
      assert.ok(chi2 < chiBound(dof), `verified token ${j + 1}: chi2 ${chi2.toFixed(1)} with ${dof} dof`);
    });
  });
});
