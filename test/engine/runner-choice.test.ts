/**
 * Tokens chosen on the runner's side (StepRequest.choose): the runner returns the token the
 * engine would have chosen from the same logits, masks and uniform, and no logits; the engine
 * hands it the choice only where nothing else reads the logits.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { ModelHost } from "../../src/engine/runner/model-host.js";
import type { StepRequest } from "../../src/engine/runner/protocol.js";
import { argmax, sampleTokenAt, type SamplingParams } from "../../src/engine/sampler.js";
import type { EngineOptions, GenerateRequest, SpeculativeOptions } from "../../src/engine/types.js";
import { createBackend } from "../../src/kernels/index.js";
import { Dsv4Model } from "../../src/model/transformer.js";
import { checkpoint, promptIds } from "./helpers.js";

describe("the runner chooses the token", async () => {
  const dir = await checkpoint("micro");
  const host = new ModelHost(Dsv4Model.load(dir, { backend: createBackend("ref") }));
  const ids = promptIds(9, 4);
  let nextId = 1;
  const step = (extra: Partial<StepRequest> = {}) => {
    const id = nextId++;
    host.create(id);
    const [out] = host.step([{ id, tokens: ids, logits: "last", residualLast: 0, ...extra }]);
    host.free(id);
    return out!;
  };
  const logits = step().logits[0]!;

  test("greedy: the argmax, and no logits travel back", () => {
    const out = step({ choose: { params: { temperature: 0, topP: 1, topK: 0, minP: 0 }, masked: [] } });
    assert.equal(out.token, argmax(logits));
    assert.equal(out.logits.length, 0);
  });

  test("masked ids are never chosen: the best of the rest", () => {
    const best = argmax(logits);
    const out = step({ choose: { params: { temperature: 0, topP: 1, topK: 0, minP: 0 }, masked: [best] } });
    const rest = logits.slice();
    rest[best] = -Infinity;
    assert.notEqual(out.token, best);
    assert.equal(out.token, argmax(rest));
  });

  test("sampled: sampleTokenAt's draw for the engine's uniform", () => {
    const params: SamplingParams = { temperature: 1.3, topP: 0.9, topK: 50, minP: 0 };
    const seen = new Set<number>();
    for (const uniform of [0, 0.17, 0.5, 0.83, 0.999]) {
      const out = step({ choose: { params, uniform, masked: [] } });
      assert.equal(out.token, sampleTokenAt(logits.slice(), params, uniform));
      seen.add(out.token!);
    }
    assert.ok(seen.size > 1, "different uniforms drew different tokens");
  });

  test("a prefill's last position can choose too", () => {
    const out = step({ choose: { params: { temperature: 0, topP: 1, topK: 0, minP: 0 }, masked: [] }, captureFrom: 0 });
    assert.equal(out.token, argmax(logits));
    assert.ok(out.block, "the rest of the step's output is unchanged");
  });
});

describe("the engine's tokens do not depend on where they are chosen", async () => {
  const dir = await checkpoint("micro");
  // A logits hook keeps every choice on the engine's thread (it must see the logits).
  const engineThread: EngineOptions["logitsProcessor"] = () => undefined;
  const requests: GenerateRequest[] = [
    { prompt_tokens: promptIds(12, 1), max_tokens: 12, temperature: 0 },
    { prompt_tokens: promptIds(7, 2), max_tokens: 12, temperature: 0.9, top_p: 0.95, seed: 11 },
    { prompt_tokens: promptIds(15, 3), max_tokens: 12, temperature: 1.5, top_k: 40, seed: 12 },
    { prompt_tokens: promptIds(5, 4), max_tokens: 12, temperature: 1, min_p: 0.05, seed: 13, min_tokens: 4 },
  ];
  const run = async (opts: EngineOptions) => {
    const engine = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: { enabled: false }, ...opts });
    // Count the rows the runner was asked to choose for (the runner is the engine's own).
    const runner = (engine as unknown as { runner: { step(r: StepRequest[]): Promise<unknown> } }).runner;
    const step = runner.step.bind(runner);
    let choices = 0;
    runner.step = (r) => ((choices += r.filter((x) => x.choose).length), step(r));
    try {
      return { tokens: await Promise.all(requests.map((r) => engine.generate(r).result().then((g) => g.tokens))), choices };
    } finally {
      await engine.dispose();
    }
  };

  for (const runner of ["worker", "inline"] as const) {
    test(`${runner} runner: greedy and seeded sampling give the same tokens as choices on the engine's thread`, async () => {
      const [there, here] = [await run({ runner }), await run({ runner, logitsProcessor: engineThread })];
      assert.deepEqual(there.tokens, here.tokens);
      assert.ok(there.tokens.every((t) => t.length > 0));
      assert.equal(here.choices, 0, "with a logits hook the engine chooses");
      assert.ok(there.choices >= there.tokens.reduce((n, t) => n + t.length, 0), "every token was chosen by the runner");
    });
  }

  test("logprobs keep the choice on the engine's thread (they read the logits)", async () => {
    const engine = await Engine.load(dir, { prefixCache: { enabled: false }, runner: "inline" });
    try {
      const r = await engine.generate({ prompt_tokens: promptIds(6, 9), max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2 }).result();
      assert.equal(r.logprobs?.content?.length ?? 0, r.tokens.length);
    } finally {
      await engine.dispose();
    }
  });
});

describe("greedy verification on the runner's side (StepRequest.argmaxes)", async () => {
  const dir = await checkpoint("micro");
  const host = new ModelHost(Dsv4Model.load(dir, { backend: createBackend("ref") }));
  const ids = promptIds(9, 4);

  test("each position's argmax after its own masks, and no logits travel back", () => {
    host.create(1);
    const [plain] = host.step([{ id: 1, tokens: ids, logits: "all", residualLast: 0 }]);
    host.free(1);
    host.create(2);
    const best = plain!.logits.map((row) => argmax(row));
    const masks = best.map((b, i) => (i % 2 === 0 ? [b] : []));
    const [out] = host.step([{ id: 2, tokens: ids, logits: "all", residualLast: 0, argmaxes: masks }]);
    host.free(2);
    assert.equal(out!.logits.length, 0);
    assert.deepEqual(
      out!.argmaxes,
      plain!.logits.map((row, i) => {
        const r = row.slice();
        for (const id of masks[i]!) r[id] = -Infinity;
        return argmax(r);
      }),
    );
    assert.notDeepEqual(out!.argmaxes, best, "the masks changed the even positions' choice");
  });

  /** The main model's greedy continuation, cut where `cut` says and wrong after: that many drafts are kept. */
  const oracle = (truth: number[][], cut: (generated: number, k: number) => number): SpeculativeOptions["draftOverride"] => ({ generated, k }) => {
    const t = truth.find((x) => generated.every((g, i) => x[i] === g)) ?? [];
    const rest = t.slice(generated.length);
    const a = Math.min(cut(generated.length, k), rest.length);
    return [...rest.slice(0, a), ...Array.from({ length: k - a }, (_, i) => ((rest[a + i] ?? 7) + 1 + i) % 1024)];
  };

  for (const { preset, mode } of [{ preset: "micro", mode: "mtp" as const }, { preset: "micro-0731", mode: "dspark" as const }]) {
    test(`${mode}: oracle drafts kept 0…k at a time give plain greedy tokens, judged on the runner's side`, async () => {
      const d = await checkpoint(preset);
      const prompts = [promptIds(30, 1), promptIds(7, 2), promptIds(3, 4)];
      const run = async (speculative: EngineOptions["speculative"]) => {
        const engine = await Engine.load(d, { prefixCache: { enabled: false }, speculative, runner: "inline" });
        const runner = (engine as unknown as { runner: { step(r: StepRequest[]): Promise<unknown> } }).runner;
        const step = runner.step.bind(runner);
        let judged = 0;
        runner.step = (r) => ((judged += r.filter((x) => x.argmaxes).length), step(r));
        try {
          const tokens = await Promise.all(prompts.map((p) => engine.generate({ prompt_tokens: p, max_tokens: 30, temperature: 0 }).result().then((g) => g.tokens)));
          return { tokens, judged, perStep: engine.metrics().speculative_accepted_per_step };
        } finally {
          await engine.dispose();
        }
      };
      const plain = await run("off");
      const k = 3;
      const spec = await run({ mode, drafts: k, maxMtpDrafts: 5, draftOverride: oracle(plain.tokens, (g, kk) => (g * 2654435761) % 7 % (kk + 1)) });
      assert.deepEqual(spec.tokens, plain.tokens);
      assert.ok(spec.judged > 0, "verify steps asked the runner for argmaxes");
      for (let a = 0; a <= k; a++) assert.ok(spec.perStep[a]! > 0, `no step kept exactly ${a} drafts`);
    });
  }
});
