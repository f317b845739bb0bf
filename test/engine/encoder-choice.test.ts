/**
 * The engine renders chat prompts with the checkpoint's encoder unless told
 * otherwise (EngineOptions.encoding), and maps reasoning_effort per that encoder.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { EngineError } from "../../src/engine/errors.js";
import { encodeMessages, type ChatMessage } from "../../src/text/encoding.js";
import { writeTinyCheckpoint } from "../../src/tiny/tiny.js";
import { checkpoint, tempDir } from "./helpers.js";

const messages: ChatMessage[] = [{ role: "user", content: "Hi" }];
const opts = { runner: "inline", speculative: { enabled: false }, prefixCache: { enabled: false } } as const;

/** The token ids `messages` renders to with this encoder setting. */
const tokens = (engine: Engine, effort: string | null, encoding: "april" | "0731") =>
  engine.tokenizer!.encode(encodeMessages(messages, { reasoning_effort: effort, effort_prompts: encoding }));

describe("encoder choice (tiny preset: April layout, real V4 tokenizer)", () => {
  let april: Engine;
  let forced: Engine;
  before(async () => {
    const dir = await checkpoint("tiny");
    april = await Engine.load(dir, opts);
    forced = await Engine.load(dir, { ...opts, encoding: "0731" });
  });
  after(async () => {
    await april?.dispose();
    await forced?.dispose();
  });

  test("an April checkpoint gets the April encoder, and says so", () => {
    assert.equal(april.model.release, "april");
    assert.equal(april.model.encoding, "april");
  });

  test("EngineOptions.encoding overrides the checkpoint's encoder; the release stays the checkpoint's", () => {
    assert.equal(forced.model.release, "april");
    assert.equal(forced.model.encoding, "0731");
  });

  test("reasoning_effort renders per the encoder in use: medium is no text on April, 0731's high text on 0731", () => {
    assert.deepEqual(april.promptTokens({ messages, reasoning_effort: "medium" }), tokens(april, null, "april"));
    assert.deepEqual(forced.promptTokens({ messages, reasoning_effort: "medium" }), tokens(forced, "high", "0731"));
  });

  test("max renders each encoder's own max text", () => {
    assert.deepEqual(april.promptTokens({ messages, reasoning_effort: "max" }), tokens(april, "max", "april"));
    assert.deepEqual(forced.promptTokens({ messages, reasoning_effort: "max" }), tokens(forced, "max", "0731"));
    assert.notDeepEqual(tokens(april, "max", "april"), tokens(forced, "max", "0731"));
  });

  test("the OpenAI-shaped chat.completions takes reasoning_effort none as thinking off", async () => {
    const r = await forced.chat.completions.create({ messages, reasoning_effort: "none", max_tokens: 1 });
    // In thinking mode the one token would be reasoning; without it, it is the answer.
    assert.equal(r.choices[0]!.message.reasoning_content, undefined);
    assert.equal(r.usage.completion_tokens_details.reasoning_tokens, 0);
  });

  test("an unknown reasoning_effort is an invalid_request naming reasoning_effort", () => {
    assert.throws(
      () => forced.generate({ messages, reasoning_effort: "extreme", max_tokens: 1 }),
      (e: unknown) => e instanceof EngineError && e.code === "invalid_request" && e.param === "reasoning_effort",
    );
  });

  test("an unknown encoding option is refused before the weights load", async () => {
    const dir = await checkpoint("tiny");
    await assert.rejects(Engine.load(dir, { ...opts, encoding: "0813" as never }), /encoding must be "april" or "0731", got "0813"/);
  });
});

describe("encoder choice (tiny-0731 preset: 0731 layout with DSpark stages, real V4 tokenizer)", () => {
  let dir: string;
  let own: Engine;
  before(async () => {
    dir = tempDir("tiny-0731");
    await writeTinyCheckpoint(dir, { preset: "tiny-0731", seed: 1 });
    own = await Engine.load(dir, opts);
  });
  after(() => own?.dispose());

  test("a 0731 checkpoint gets the 0731 encoder, and says so", () => {
    assert.equal(own.model.release, "0731");
    assert.equal(own.model.encoding, "0731");
  });

  test("reasoning_effort high renders 0731's high text (April's max text), absent renders none", () => {
    assert.deepEqual(own.promptTokens({ messages, reasoning_effort: "high" }), tokens(own, "high", "0731"));
    assert.deepEqual(own.promptTokens({ messages }), tokens(own, null, "0731"));
  });

  test("encoding april on a 0731 checkpoint renders April's texts: high adds nothing", async () => {
    const april = await Engine.load(dir, { ...opts, encoding: "april" });
    try {
      assert.equal(april.model.release, "0731");
      assert.equal(april.model.encoding, "april");
      assert.deepEqual(april.promptTokens({ messages, reasoning_effort: "high" }), tokens(april, null, "april"));
    } finally {
      await april.dispose();
    }
  });
});
