/**
 * min_tokens and ignore_eos (vLLM's, for benchmark clients' fixed output lengths): the end of
 * sentence is masked until the count is reached, the same way with speculative decoding.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { EngineError } from "../../src/engine/errors.js";
import type { EngineOptions } from "../../src/engine/types.js";
import { checkpoint, promptIds } from "./helpers.js";

describe("min_tokens and ignore_eos", async () => {
  const dir = await checkpoint("micro");
  const eos = (JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as { eos_token_id: number }).eos_token_id;
  // The model would end at once: end of sentence is every position's top token.
  const eager: EngineOptions["logitsProcessor"] = ({ logits }) => {
    logits[eos] = 1e9;
  };
  const run = async (opts: EngineOptions, request: Record<string, unknown>) => {
    const engine = await Engine.load(dir, { prefixCache: { enabled: false }, logitsProcessor: eager, ...opts });
    try {
      return await engine.generate({ prompt_tokens: promptIds(12, 3), temperature: 0, ...request }).result();
    } finally {
      await engine.dispose();
    }
  };

  test("without them the sequence ends at its first token", async () => {
    const r = await run({}, { max_tokens: 20 });
    assert.equal(r.finish_reason, "stop");
    assert.equal(r.usage.completion_tokens, 0);
  });

  test("min_tokens: end of sentence comes only after that many tokens", async () => {
    const r = await run({}, { max_tokens: 20, min_tokens: 6 });
    assert.equal(r.finish_reason, "stop");
    assert.equal(r.tokens.length, 6);
    assert.ok(!r.tokens.includes(eos));
  });

  test("ignore_eos: the output runs to max_tokens", async () => {
    const r = await run({}, { max_tokens: 15, ignore_eos: true });
    assert.equal(r.finish_reason, "length");
    assert.equal(r.tokens.length, 15);
    assert.ok(!r.tokens.includes(eos));
  });

  test("with MTP drafts verified, the masked positions give plain decoding's tokens", async () => {
    const plain = await run({ speculative: "off" }, { max_tokens: 24, min_tokens: 18 });
    const spec = await run({ speculative: { mode: "mtp", drafts: 3, maxMtpDrafts: 3 } }, { max_tokens: 24, min_tokens: 18 });
    assert.deepEqual(spec.tokens, plain.tokens);
    assert.equal(spec.tokens.length, 18);
    assert.ok(spec.stats.speculative.drafted > 0, "drafts were verified");
  });

  test("min_tokens above max_tokens is refused, naming it", async () => {
    const engine = await Engine.load(dir, { prefixCache: { enabled: false } });
    try {
      assert.throws(() => engine.generate({ prompt_tokens: [5], max_tokens: 4, min_tokens: 5 }), (e: unknown) => e instanceof EngineError && e.param === "min_tokens");
      assert.throws(() => engine.generate({ prompt_tokens: [5], min_tokens: -1 }), (e: unknown) => e instanceof EngineError && e.param === "min_tokens");
    } finally {
      await engine.dispose();
    }
  });
});
