/** max_tokens when a request sets none: a bounded default, never more than the context leaves. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_MAX_TOKENS, resolveRequest, type ResolveContext } from "../../src/engine/request.js";

const ctx = (contextLength: number, defaultMaxTokens?: number): ResolveContext => ({
  tokenizer: null,
  contextLength,
  vocabSize: 1000,
  speculativeDefault: false,
  canSpeculate: false,
  ...(defaultMaxTokens === undefined ? {} : { defaultMaxTokens }),
});
const prompt = { prompt_tokens: [1, 2, 3, 4] };

test("no max_tokens: DEFAULT_MAX_TOKENS (32,768), not the whole context", () => {
  assert.equal(DEFAULT_MAX_TOKENS, 32_768);
  assert.equal(resolveRequest(prompt, ctx(1_048_576)).maxTokens, DEFAULT_MAX_TOKENS);
});

test("no max_tokens on a short context: what the context leaves", () => {
  assert.equal(resolveRequest(prompt, ctx(100)).maxTokens, 96);
});

test("EngineOptions.defaultMaxTokens replaces the default; an explicit max_tokens wins over it", () => {
  assert.equal(resolveRequest(prompt, ctx(1_048_576, 64)).maxTokens, 64);
  assert.equal(resolveRequest({ ...prompt, max_tokens: 500 }, ctx(1_048_576, 64)).maxTokens, 500);
});
