/**
 * The engine's text ↔ ids utilities (engine.tokenize / detokenize / tokenPieces): HF's
 * add_special_tokens from the tokenizer config, and refusals that name the field.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { EngineError } from "../../src/engine/errors.js";
import { detokenizeIds, tokenizeText, tokenPieces } from "../../src/engine/tokenize.js";
import { buildDefaultTokenizerJson, V4_TOKENIZER_CONFIG } from "../../src/text/default-vocab.js";
import { loadDefaultTokenizer, Tokenizer } from "../../src/text/tokenizer.js";

const v4 = loadDefaultTokenizer();

const refusal = (param: string) => (e: unknown) => e instanceof EngineError && e.code === "invalid_request" && e.param === param;

test("addSpecialTokens adds BOS and EOS only where the tokenizer config asks for them", () => {
  assert.deepEqual(tokenizeText(v4, "Hi", { addSpecialTokens: true }), v4.encode("Hi"));
  const v3Like = new Tokenizer(buildDefaultTokenizerJson(), { ...V4_TOKENIZER_CONFIG, add_bos_token: true, add_eos_token: true });
  assert.deepEqual(tokenizeText(v3Like, "Hi", { addSpecialTokens: true }), [v3Like.specialIds.bos, ...v3Like.encode("Hi"), v3Like.specialIds.eos]);
  assert.deepEqual(tokenizeText(v3Like, "Hi"), v3Like.encode("Hi"));
});

test("detokenize and tokenPieces refuse a non-integer or unknown id, naming its index", () => {
  assert.throws(() => detokenizeIds(v4, [1, 2.5]), refusal("tokens[1]"));
  assert.throws(() => tokenPieces(v4, [v4.vocabSize]), refusal("tokens[0]"));
  assert.equal(detokenizeIds(v4, []), "");
});

test("without a tokenizer every call is an invalid_request saying so", () => {
  assert.throws(() => tokenizeText(null, "Hi"), (e: unknown) => refusal("prompt")(e) && /no tokenizer\.json/.test((e as Error).message));
  assert.throws(() => detokenizeIds(null, [1]), refusal("tokens"));
});
