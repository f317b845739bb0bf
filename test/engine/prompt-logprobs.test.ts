/**
 * Prompt logprobs (vLLM's prompt_logprobs; echo with logprobs on /v1/completions, what
 * lm-eval's loglikelihood tasks read): each prompt token's logprob after the ones before it,
 * the same as one forward of the whole prompt gives, however the prompt is chunked.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { EngineError } from "../../src/engine/errors.js";
import { tokenLogprobs } from "../../src/engine/sampler.js";
import { createBackend } from "../../src/kernels/index.js";
import { Dsv4Model } from "../../src/model/transformer.js";
import { checkpoint, promptIds } from "./helpers.js";

describe("prompt logprobs", async () => {
  const dir = await checkpoint("micro");
  const prompt = promptIds(40, 5);

  // One forward of the whole prompt with logits everywhere, on the engine's backend.
  const expected = (() => {
    const model = Dsv4Model.load(dir, { backend: createBackend("ref") });
    try {
      const out = model.forward([{ seq: model.newSequence(), tokens: prompt, logits: "all" }])[0]!;
      return prompt.map((t, i) => (i === 0 ? null : tokenLogprobs(out.logits[i - 1]!, t, 3)));
    } finally {
      model.close();
    }
  })();

  for (const chunk of [Infinity, 7]) {
    test(`match one forward of the prompt (${chunk === Infinity ? "one prefill step" : `chunks of ${chunk}`})`, async () => {
      const engine = await Engine.load(dir, { backend: "ref", prefillChunkTokens: chunk === Infinity ? undefined : chunk });
      try {
        const r = await engine.generate({ prompt_tokens: prompt, max_tokens: 1, temperature: 0, prompt_logprobs: 3 }).result();
        const got = r.prompt_logprobs!;
        assert.equal(got.length, prompt.length);
        assert.equal(got[0], null);
        for (let i = 1; i < prompt.length; i++) {
          const e = expected[i]!;
          assert.equal(got[i]!.logprob, e.logprob, `position ${i}`);
          assert.deepEqual(got[i]!.top_logprobs.map((t) => t.logprob), e.top.map((t) => t.logprob), `position ${i}`);
        }
      } finally {
        await engine.dispose();
      }
    });
  }

  test("they come on the last prefill event, and a request with them takes nothing from the prefix cache", async () => {
    const engine = await Engine.load(dir, { backend: "ref" });
    const long = promptIds(150, 6); // past the cache's 64-token blocks
    try {
      await engine.generate({ prompt_tokens: long, max_tokens: 1, temperature: 0 }).result();
      const again = await engine.generate({ prompt_tokens: long, max_tokens: 1, temperature: 0 }).result();
      assert.ok(again.usage.prompt_cache_hit_tokens > 0, "the plain request hits the cache");
      const events = [];
      for await (const e of engine.generate({ prompt_tokens: long, max_tokens: 1, temperature: 0, prompt_logprobs: 0 })) events.push(e);
      const prefills = events.filter((e) => e.type === "prefill");
      assert.equal(prefills.at(-1)!.type === "prefill" && prefills.at(-1)!.prompt_logprobs?.length, long.length);
      assert.ok(prefills.every((e) => e.type === "prefill" && e.cached === 0));
    } finally {
      await engine.dispose();
    }
  });

  test("a sequence preempted halfway through its prompt still reports every prompt logprob, once", async () => {
    const engine = await Engine.load(dir, { backend: "ref", schedulingPolicy: "priority", maxConcurrentSequences: 1, prefillChunkTokens: 7 });
    try {
      const background = engine.generate({ prompt_tokens: prompt, max_tokens: 1, temperature: 0, priority: 5, prompt_logprobs: 3 });
      const it = background[Symbol.asyncIterator]();
      const events = [];
      // Two chunks in, an urgent request takes the only slot.
      while (events.filter((e) => e.type === "prefill").length < 2) events.push((await it.next()).value);
      await engine.generate({ prompt_tokens: promptIds(5, 9), max_tokens: 2, temperature: 0, priority: -1 }).result();
      for (let r = await it.next(); !r.done; r = await it.next()) events.push(r.value);
      assert.ok(engine.metrics().preemptions_total >= 1);
      const reported = events.filter((e) => e.type === "prefill" && e.prompt_logprobs);
      assert.equal(reported.length, 1);
      const got = (await background.result()).prompt_logprobs!;
      for (let i = 1; i < prompt.length; i++) assert.equal(got[i]!.logprob, expected[i]!.logprob, `position ${i}`);
    } finally {
      await engine.dispose();
    }
  });

  test("more than 20 alternatives is an invalid request naming the field", async () => {
    const engine = await Engine.load(dir, { backend: "ref" });
    try {
      assert.throws(() => engine.generate({ prompt_tokens: prompt, prompt_logprobs: 21 }), (e: unknown) => e instanceof EngineError && e.param === "prompt_logprobs");
    } finally {
      await engine.dispose();
    }
  });
});
