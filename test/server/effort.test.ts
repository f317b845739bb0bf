/**
 * reasoning_effort (and Anthropic's output_config.effort) through the real
 * clients, rendered per the encoder in use (api.md §B.2): the prompt's token
 * count shows which effort text went in.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import type { Engine } from "../../src/engine/engine.js";
import { encodeMessages } from "../../src/text/encoding.js";
import { MODEL, realServer, type TestServer } from "./helpers.js";

const messages = [{ role: "user" as const, content: "Hi" }];

describe("effort on an engine with the 0731 encoder (injected: no 0731 checkpoint yet)", () => {
  let server: TestServer;
  let openai: OpenAI;
  let anthropic: Anthropic;
  before(async () => {
    server = await realServer({ encoding: "0731" });
    openai = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: `${server.url}/anthropic`, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  /** Prompt tokens of `messages` rendered in thinking mode with this 0731 effort word. */
  const rendered = (effort: string | null) => (server.engine as Engine).tokenizer!.encode(encodeMessages(messages, { reasoning_effort: effort, effort_prompts: "0731" })).length;
  const promptTokens = async (effort?: string) => {
    const r = await openai.chat.completions.create({ model: MODEL, messages, max_tokens: 1, ...(effort ? { reasoning_effort: effort as never } : {}) });
    return r.usage!.prompt_tokens;
  };

  test("the premise: the three 0731 renderings differ in token count, so prompt_tokens tells them apart", () => {
    assert.ok(rendered(null) < rendered("high") && rendered("high") !== rendered("max"));
  });

  test("no reasoning_effort renders 0731's default, low: no effort text", async () => {
    assert.equal(await promptTokens(), rendered(null));
  });

  for (const [requested, word] of [["minimal", "low"], ["low", "low"], ["medium", "high"], ["high", "high"], ["xhigh", "high"], ["max", "max"]] as const) {
    test(`reasoning_effort ${requested} renders 0731's ${word}`, async () => {
      assert.equal(await promptTokens(requested), rendered(word === "low" ? null : word));
    });
  }

  test("an unknown reasoning_effort is a 400 naming reasoning_effort, in DeepSeek's error shape", async () => {
    await assert.rejects(promptTokens("extreme"), (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.equal(e.status, 400);
      assert.equal(e.param, "reasoning_effort");
      assert.equal((e.error as any).type, "invalid_request_error");
      assert.match(e.message, /unknown reasoning_effort "extreme"; use one of none, minimal, low, medium, high, xhigh, max/);
      return true;
    });
  });

  test("Anthropic output_config.effort maps by the same table (max → 0731's max)", async () => {
    const n = await anthropic.messages.countTokens({ model: "claude-sonnet-4-5", messages, output_config: { effort: "max" } } as never);
    assert.equal(n.input_tokens, rendered("max"));
  });

  test("/health and /metrics say which encoder is in use", async () => {
    assert.equal(((await (await fetch(`${server.url}/health`)).json()) as { encoding: string }).encoding, "0731");
    assert.match(await (await fetch(`${server.url}/metrics`)).text(), /^dsv4_info\{model="deepseek-v4-flash",release="april",encoding="0731"\} 1$/m);
  });
});

describe("effort on the April encoder (the default model)", () => {
  let server: TestServer;
  let openai: OpenAI;
  before(async () => {
    server = await realServer();
    openai = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  const rendered = (effort: string | null) => (server.engine as Engine).tokenizer!.encode(encodeMessages(messages, { reasoning_effort: effort })).length;

  test("low, medium, high and xhigh add nothing; max adds April's max text", async () => {
    for (const effort of ["low", "medium", "high", "xhigh"] as const) {
      const r = await openai.chat.completions.create({ model: MODEL, messages, max_tokens: 1, reasoning_effort: effort });
      assert.equal(r.usage!.prompt_tokens, rendered(null), effort);
    }
    const max = await openai.chat.completions.create({ model: MODEL, messages, max_tokens: 1, reasoning_effort: "max" as never });
    assert.equal(max.usage!.prompt_tokens, rendered("max"));
    assert.ok(rendered("max") > rendered(null));
  });
});
