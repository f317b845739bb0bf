import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { checkpoint, promptIds } from "./helpers.js";

describe("continuous batching", async () => {
  const dir = await checkpoint("micro");

  test("N sequences decoded together give the tokens each gives alone (greedy)", async () => {
    // Small chunks: long prompts are prefilled over several steps while others decode.
    const engine = await Engine.load(dir, { prefillChunkTokens: 16, prefixCache: { enabled: false }, speculative: { enabled: false } });
    try {
      const prompts = [promptIds(5, 1), promptIds(37, 2), promptIds(64, 3), promptIds(12, 4), promptIds(90, 5), promptIds(1, 6)];
      const alone: number[][] = [];
      for (const p of prompts) alone.push((await engine.generate({ prompt_tokens: p, max_tokens: 10, temperature: 0 }).result()).tokens);
      const stepsBefore = engine.metrics().steps_total;
      // Staggered arrivals: some join while others are mid-decode.
      const gens = [];
      for (const [i, p] of prompts.entries()) {
        gens.push(engine.generate({ prompt_tokens: p, max_tokens: 10, temperature: 0 }));
        if (i % 2 === 1) await new Promise((r) => setImmediate(r));
      }
      const together = await Promise.all(gens.map((g) => g.result()));
      together.forEach((r, i) => assert.deepEqual(r.tokens, alone[i], `sequence ${i}`));
      const steps = engine.metrics().steps_total - stepsBefore;
      const sequential = alone.reduce((n, t, i) => n + t.length + Math.ceil(prompts[i]!.length / 16), 0);
      assert.ok(steps < sequential / 2, `batched run took ${steps} steps (sequential would take ~${sequential})`);
    } finally {
      await engine.dispose();
    }
  });

  test("events arrive in order: queued, prefill progress, tokens, usage, finish", async () => {
    const engine = await Engine.load(dir, { prefillChunkTokens: 16, prefixCache: { enabled: false } });
    try {
      const types: string[] = [];
      let prefill = 0;
      for await (const ev of engine.generate({ prompt_tokens: promptIds(40), max_tokens: 3, temperature: 0 })) {
        types.push(ev.type);
        if (ev.type === "prefill") prefill = ev.processed;
      }
      assert.equal(types[0], "queued");
      assert.ok(types.filter((t) => t === "prefill").length >= 3);
      assert.equal(prefill, 40);
      assert.deepEqual(types.slice(-2), ["usage", "finish"]);
      assert.equal(types.filter((t) => t === "token").length, 3);
    } finally {
      await engine.dispose();
    }
  });

  test("a long prompt is prefilled in chunks between the decode steps of others", async () => {
    const engine = await Engine.load(dir, { prefillChunkTokens: 16, prefixCache: { enabled: false }, speculative: { enabled: false } });
    try {
      const order: string[] = [];
      const short = engine.generate({ prompt_tokens: promptIds(4, 1), max_tokens: 12, temperature: 0 });
      const readShort = (async () => {
        for await (const ev of short) if (ev.type === "token") order.push("token");
      })();
      // Let the short one start decoding, then send a prompt that needs 12 chunks.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      const long = engine.generate({ prompt_tokens: promptIds(190, 2), max_tokens: 1, temperature: 0 });
      const readLong = (async () => {
        for await (const ev of long) if (ev.type === "prefill") order.push("prefill");
      })();
      await Promise.all([readShort, readLong]);
      const firstPrefill = order.indexOf("prefill");
      const lastPrefill = order.lastIndexOf("prefill");
      const tokensDuring = order.slice(firstPrefill, lastPrefill).filter((x) => x === "token").length;
      assert.ok(tokensDuring >= 8, `only ${tokensDuring} short-sequence tokens while the long prompt prefilled: ${order.join(" ")}`);
    } finally {
      await engine.dispose();
    }
  });
});
