/**
 * The model computes on its own thread: while one long step runs (a 512-token prompt in
 * one step on the float64 reference backend, about two seconds), the server still answers.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { realServer } from "./helpers.js";

describe("the event loop during a long step", () => {
  test("/health answers while a long prefill step computes", async () => {
    const server = await realServer({ backend: "ref", prefixCache: { enabled: false }, maxBatchTokens: 4096 });
    try {
      const ids = Array.from({ length: 512 }, (_, i) => 1000 + ((i * 7919) % 50000));
      const t0 = performance.now();
      let done = false;
      const generation = server.engine.generate({ prompt_tokens: ids, max_tokens: 1 }).result().finally(() => (done = true));
      const latencies: number[] = [];
      while (!done) {
        const a = performance.now();
        const r = await fetch(`${server.url}/health`);
        assert.equal(r.status, 200);
        await r.arrayBuffer();
        latencies.push(performance.now() - a);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await generation;
      const stepMs = performance.now() - t0;
      assert.equal(server.engine.metrics().steps_total, 1, "the prompt went through in one step");
      assert.ok(stepMs > 500, `the step took ${stepMs.toFixed(0)} ms: too short to tell a blocked loop from a free one`);
      const worst = Math.max(...latencies);
      // A step on the event loop would hold the first probe for the whole step.
      assert.ok(worst < stepMs / 4, `a probe waited ${worst.toFixed(0)} ms during a ${stepMs.toFixed(0)} ms step`);
      assert.ok(latencies.length >= 5, `only ${latencies.length} probes answered during the step`);
    } finally {
      await server.close();
    }
  });
});
