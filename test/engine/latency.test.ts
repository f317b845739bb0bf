/**
 * Request latency histograms (src/engine/request-metrics.ts): what /metrics' time-to-first-token,
 * inter-token, end-to-end and queue-time histograms count.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { Histogram, type HistogramSnapshot } from "../../src/engine/histogram.js";
import { LATENCY_BOUNDS } from "../../src/engine/request-metrics.js";
import { checkpoint, promptIds } from "./helpers.js";

const total = (h: HistogramSnapshot) => h.counts.reduce((a, b) => a + b, 0);

test("an observation lands in the first bucket whose bound it does not exceed", () => {
  const r = new Histogram(LATENCY_BOUNDS.e2e);
  for (const s of [0.3, 0.31, 0, 8000]) r.observe(s);
  const h = r.snapshot();
  assert.equal(h.bounds[0], 0.3);
  assert.equal(h.counts[0], 2, "0 and 0.3 (a bound is inclusive)");
  assert.equal(h.counts[1], 1, "0.31");
  assert.equal(h.counts.at(-1), 1, "above every bound");
  assert.equal(h.count, 4);
  assert.ok(Math.abs(h.sum - 8000.61) < 1e-9);
});

describe("the engine's latency histograms", async () => {
  const dir = await checkpoint("tiny");
  const load = () => Engine.load(dir, { prefixCache: { enabled: false }, speculative: { enabled: false } });

  test("count each completed request's queue time, first token, token steps and end-to-end time", async () => {
    const engine = await load();
    try {
      const results = await Promise.all([1, 2, 3].map((salt) => engine.generate({ prompt_tokens: promptIds(10, salt), max_tokens: 6, temperature: 0 }).result()));
      const l = engine.metrics().latency!;
      assert.equal(l.queue.count, 3);
      assert.equal(l.ttft.count, 3);
      assert.equal(l.e2e.count, 3);
      // One token per step without speculation: a gap per token after the first.
      assert.equal(l.itl.count, results.reduce((n, r) => n + Math.max(0, r.tokens.length - 1), 0));
      for (const h of [l.queue, l.ttft, l.e2e, l.itl]) assert.equal(total(h), h.count);
      assert.ok(l.e2e.sum >= l.ttft.sum, "a request ends after its first token");
    } finally {
      await engine.dispose();
    }
  });

  test("step histograms: one observation per batched step, its tokens those fed to the model", async () => {
    const engine = await load();
    try {
      const results = await Promise.all([5, 6].map((salt) => engine.generate({ prompt_tokens: promptIds(10, salt), max_tokens: 6, temperature: 0 }).result()));
      assert.deepEqual(results.map((r) => r.finish_reason), ["length", "length"]);
      const m = engine.metrics();
      assert.equal(m.steps!.tokens.count, m.steps_total);
      assert.equal(m.steps!.seconds.count, m.steps_total);
      // Each prompt, then every generated token but the last fed back one step at a time.
      assert.equal(m.steps!.tokens.sum, 2 * 10 + 2 * 5);
    } finally {
      await engine.dispose();
    }
  });

  test("completed requests: their prompt and generated tokens, and a count per finish reason", async () => {
    const engine = await load();
    try {
      const results = await Promise.all([
        engine.generate({ prompt_tokens: promptIds(10, 7), max_tokens: 4, temperature: 0 }).result(),
        engine.generate({ prompt_tokens: promptIds(30, 8), max_tokens: 7, temperature: 0 }).result(),
      ]);
      const r = engine.metrics().requests!;
      assert.equal(r.prompt_tokens.count, 2);
      assert.equal(r.prompt_tokens.sum, 40);
      assert.equal(r.generation_tokens.sum, results.reduce((n, x) => n + x.tokens.length, 0));
      const reasons: Record<string, number> = {};
      for (const x of results) reasons[x.finish_reason] = (reasons[x.finish_reason] ?? 0) + 1;
      assert.deepEqual(r.finished, reasons);
    } finally {
      await engine.dispose();
    }
  });

  test("a cancelled request has a first token but no end-to-end time", async () => {
    const engine = await load();
    try {
      const gen = engine.generate({ prompt_tokens: promptIds(10, 4), max_tokens: 5000, temperature: 0 });
      const it = gen[Symbol.asyncIterator]();
      for (let r = await it.next(); !r.done && r.value.type !== "token"; r = await it.next());
      gen.cancel();
      await gen.result().catch(() => undefined);
      const l = engine.metrics().latency!;
      assert.equal(l.ttft.count, 1);
      assert.equal(l.e2e.count, 0);
      assert.equal(engine.metrics().requests!.prompt_tokens.count, 0, "nor a completed request's sizes");
    } finally {
      await engine.dispose();
    }
  });
});
