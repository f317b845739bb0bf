import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { EngineError } from "../../src/engine/errors.js";
import { checkpoint, promptIds } from "./helpers.js";

const isCode = (code: string) => (e: unknown) => e instanceof EngineError && e.code === code;

describe("engine lifecycle and limits", async () => {
  const dir = await checkpoint("micro");

  test("a running sequence's reservation shows in the metrics, within the budget", async () => {
    const engine = await Engine.load(dir, { prefixCache: { enabled: false } });
    try {
      const gen = engine.generate({ prompt_tokens: promptIds(20), max_tokens: 200, temperature: 0 });
      const it = gen[Symbol.asyncIterator]();
      for (let r = await it.next(); !r.done && r.value.type !== "token"; r = await it.next());
      const m = engine.metrics();
      assert.equal(m.state_reserved_bytes, engine.stateBytesFor(20 + 200), "reserved for its prompt and max_tokens");
      assert.ok(m.state_budget_bytes! >= m.state_reserved_bytes!);
      gen.cancel();
      await gen.result().catch(() => undefined);
    } finally {
      await engine.dispose();
    }
  });

  test("cancellation frees the sequence", async () => {
    const engine = await Engine.load(dir, { prefixCache: { enabled: false } });
    try {
      const ac = new AbortController();
      const gen = engine.generate({ prompt_tokens: promptIds(20), max_tokens: 200, temperature: 0, signal: ac.signal });
      let tokens = 0;
      await assert.rejects(
        (async () => {
          for await (const ev of gen) {
            if (ev.type === "token" && ++tokens === 3) ac.abort();
          }
        })(),
        isCode("aborted"),
      );
      await assert.rejects(gen.result(), isCode("aborted"));
      const m = engine.metrics();
      assert.equal(m.active_sequences, 0);
      assert.equal(m.state_bytes_in_use, 0);
      assert.equal(m.state_reserved_bytes, 0, "its reservation is returned too");
      assert.equal(m.requests_cancelled_total, 1);
      // A queued request can be cancelled too, and the engine keeps serving.
      const g2 = engine.generate({ prompt_tokens: promptIds(5), max_tokens: 3, temperature: 0 });
      g2.cancel();
      await assert.rejects(g2.result(), isCode("aborted"));
      const r = await engine.generate({ prompt_tokens: promptIds(5), max_tokens: 3, temperature: 0 }).result();
      assert.equal(r.tokens.length, 3);
      assert.equal(r.finish_reason, "length");
    } finally {
      await engine.dispose();
    }
  });

  test("a full queue answers overloaded", async () => {
    const engine = await Engine.load(dir, { maxConcurrentSequences: 1, maxQueuedRequests: 1, prefixCache: { enabled: false } });
    try {
      const a = engine.generate({ prompt_tokens: promptIds(5), max_tokens: 4, temperature: 0 });
      const b = engine.generate({ prompt_tokens: promptIds(6), max_tokens: 4, temperature: 0 });
      assert.throws(() => engine.generate({ prompt_tokens: promptIds(7), max_tokens: 4, temperature: 0 }), (e: unknown) => {
        assert.ok(e instanceof EngineError);
        assert.equal(e.code, "overloaded");
        assert.equal(e.status, 429);
        return true;
      });
      assert.equal(engine.metrics().requests_rejected_total, 1);
      await Promise.all([a.result(), b.result()]);
    } finally {
      await engine.dispose();
    }
  });

  test("requests that cannot fit are refused before any work", async () => {
    const probe = await Engine.load(dir, { prefixCache: { enabled: false } });
    const ctx = probe.model.contextLength;
    const small = probe.stateBytesFor(20);
    const big = probe.stateBytesFor(ctx);
    await probe.dispose();
    assert.ok(big > small);
    const budget = Math.floor((small + big) / 2);
    const engine = await Engine.load(dir, { stateMemoryBytes: budget, prefixCache: { enabled: false } });
    try {
      assert.throws(() => engine.generate({ prompt_tokens: promptIds(ctx - 4), max_tokens: 10 }), (e: unknown) => {
        assert.ok(isCode("context_length_exceeded")(e));
        assert.match((e as Error).message, new RegExp(`maximum context length is ${ctx} tokens`));
        return true;
      });
      assert.throws(() => engine.generate({ prompt_tokens: promptIds(10), max_tokens: ctx - 10 }), isCode("insufficient_memory"));
      assert.throws(() => engine.generate({ prompt_tokens: [5000] }), isCode("invalid_request"));
      assert.throws(() => engine.generate({ prompt_tokens: [5], top_logprobs: 21 }), isCode("invalid_request"));
      assert.equal(engine.metrics().steps_total, 0);
    } finally {
      await engine.dispose();
    }
  });

  for (const speculative of [false, true]) {
  test(`a sequence that cannot grow its reservation preempts the newest, which resumes with the same greedy tokens (speculative ${speculative})`, async () => {
    const probe = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: { enabled: speculative } });
    const budget = probe.stateBytesFor(212) + probe.stateBytesFor(40);
    const alone = await Promise.all([1, 2].map((i) => probe.generate({ prompt_tokens: promptIds(10, i), max_tokens: 200, temperature: 0 }).result()));
    await probe.dispose();
    const engine = await Engine.load(dir, { stateMemoryBytes: budget, reserveTokens: 8, prefixCache: { blockTokens: 16 }, speculative: { enabled: speculative } });
    try {
      const rs = await Promise.all([1, 2].map((i) => engine.generate({ prompt_tokens: promptIds(10, i), max_tokens: 200, temperature: 0 }).result()));
      assert.deepEqual(rs.map((r) => r.finish_reason), ["length", "length"]);
      assert.ok(engine.metrics().preemptions_total > 0, "the budget fits one whole sequence and part of the other");
      rs.forEach((r, i) => assert.deepEqual(r.tokens, alone[i]!.tokens));
      assert.deepEqual(rs.map((r) => r.usage.prompt_tokens), [10, 10]);
      assert.equal(engine.metrics().active_sequences, 0);
    } finally {
      await engine.dispose();
    }
  });
  }

  test("by priority, an urgent arrival preempts a running background sequence, which resumes with the same greedy tokens", async () => {
    const probe = await Engine.load(dir, { prefixCache: { enabled: false } });
    const alone = await probe.generate({ prompt_tokens: promptIds(10, 1), max_tokens: 60, temperature: 0 }).result();
    await probe.dispose();
    const engine = await Engine.load(dir, { schedulingPolicy: "priority", maxConcurrentSequences: 1, prefixCache: { blockTokens: 16 } });
    try {
      const order: string[] = [];
      const background = engine.generate({ prompt_tokens: promptIds(10, 1), max_tokens: 60, temperature: 0, priority: 5 });
      const it = background[Symbol.asyncIterator]();
      let tokens = 0;
      while (tokens < 5) if ((await it.next()).value?.type === "token") tokens++;
      const urgent = engine.generate({ prompt_tokens: promptIds(10, 2), max_tokens: 8, temperature: 0, priority: -1 });
      const done = Promise.all([
        (async () => {
          for (let r = await it.next(); !r.done; r = await it.next());
          order.push("background");
        })(),
        urgent.result().then(() => order.push("urgent")),
      ]);
      await done;
      assert.deepEqual(order, ["urgent", "background"]);
      assert.ok(engine.metrics().preemptions_total >= 1);
      assert.deepEqual((await background.result()).tokens, alone.tokens);
    } finally {
      await engine.dispose();
    }
  });

  test("a priority other than 0 is refused unless the engine schedules by priority", async () => {
    const engine = await Engine.load(dir, { prefixCache: { enabled: false } });
    try {
      assert.throws(() => engine.generate({ prompt_tokens: [5], priority: 1 }), (e: unknown) => isCode("invalid_request")(e) && (e as EngineError).param === "priority" && /--scheduling-policy priority/.test((e as Error).message));
      assert.throws(() => engine.generate({ prompt_tokens: [5], priority: 0.5 }), isCode("invalid_request"));
      await engine.generate({ prompt_tokens: [5], max_tokens: 1, priority: 0 }).result();
    } finally {
      await engine.dispose();
    }
  });

  test("logprobs: chosen token and up to 20 alternatives per position", async () => {
    const engine = await Engine.load(dir, { prefixCache: { enabled: false } });
    try {
      const r = await engine.generate({ prompt_tokens: promptIds(8), max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 20 }).result();
      const lp = r.logprobs!.content!;
      assert.equal(lp.length, 4);
      for (const item of lp) {
        assert.equal(item.top_logprobs.length, 20);
        assert.equal(item.top_logprobs[0]!.logprob, item.logprob, "greedy picks the most likely");
        assert.ok(item.logprob <= 0);
      }
    } finally {
      await engine.dispose();
    }
  });

  test("a generation's asyncDispose cancels it and waits until it has stopped", async () => {
    const engine = await Engine.load(dir, { prefixCache: { enabled: false } });
    try {
      const g = engine.generate({ prompt_tokens: promptIds(5), max_tokens: 200 });
      await g[Symbol.asyncDispose]();
      await assert.rejects(g.result(), isCode("aborted"));
      assert.equal(engine.metrics().active_sequences + engine.metrics().queued_requests, 0);
    } finally {
      await engine.dispose();
    }
  });

  test("dispose fails what is running and refuses new work", async () => {
    const engine = await Engine.load(dir, { prefixCache: { enabled: false } });
    const g = engine.generate({ prompt_tokens: promptIds(5), max_tokens: 100 });
    await engine.dispose();
    await assert.rejects(g.result(), isCode("disposed"));
    assert.throws(() => engine.generate({ prompt_tokens: [5] }), isCode("disposed"));
  });
});
