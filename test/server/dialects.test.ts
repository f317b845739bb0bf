/**
 * DeepSeek's dialects through the real clients: one effort table for OpenAI `reasoning_effort`,
 * Anthropic `output_config.effort` and Responses `reasoning.effort`; `developer` read as
 * `system`; Anthropic `thinking.budget_tokens` as the reasoning budget; /anthropic/v1/models;
 * the max_tokens cap.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import type { Engine } from "../../src/engine/engine.js";
import { encodeMessages } from "../../src/text/encoding.js";
import { API_EFFORTS, EFFORT_LEVELS } from "../../src/text/effort.js";
import { MODEL, postJson, realServer, serve, type TestServer } from "./helpers.js";
import { ScriptedEngine } from "./scripted-engine.js";

const messages = [{ role: "user" as const, content: "Hi" }];

test("the table: minimal→low, low→low, medium→high, high→high, xhigh→high, max→max, ultra→max", () => {
  assert.deepEqual(EFFORT_LEVELS, { minimal: "low", low: "low", medium: "high", high: "high", xhigh: "high", max: "max", ultra: "max" });
});

describe("one effort table for three formats (0731 encoder: each level renders differently)", () => {
  let server: TestServer;
  let openai: OpenAI;
  let anthropic: Anthropic;
  before(async () => {
    server = await realServer({ encoding: "0731" });
    openai = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: `${server.url}/anthropic`, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  /** Prompt tokens of "Hi" in thinking mode at a 0731 level (low renders no text). */
  const rendered = (level: string) =>
    (server.engine as Engine).tokenizer!.encode(encodeMessages(messages, { reasoning_effort: level === "low" ? null : level, effort_prompts: "0731" })).length;

  test("OpenAI reasoning_effort", async () => {
    for (const effort of API_EFFORTS) {
      const r = await openai.chat.completions.create({ model: MODEL, messages, max_tokens: 1, reasoning_effort: effort as never });
      assert.equal(r.usage!.prompt_tokens, rendered(EFFORT_LEVELS[effort]), effort);
    }
  });

  test("Anthropic output_config.effort", async () => {
    for (const effort of API_EFFORTS) {
      const r = await anthropic.messages.countTokens({ model: "claude-sonnet-4-5", messages, output_config: { effort } } as never);
      assert.equal(r.input_tokens, rendered(EFFORT_LEVELS[effort]), effort);
    }
  });

  test("Responses reasoning.effort", async () => {
    for (const effort of API_EFFORTS) {
      const r = await openai.responses.create({ model: MODEL, input: messages, max_output_tokens: 1, reasoning: { effort: effort as never } });
      assert.equal(r.usage!.input_tokens, rendered(EFFORT_LEVELS[effort]), effort);
    }
  });

  test("developer is read as system", async () => {
    const asSystem = await openai.chat.completions.create({ model: MODEL, max_tokens: 1, messages: [{ role: "system", content: "Be brief." }, ...messages] });
    const asDeveloper = await openai.chat.completions.create({ model: MODEL, max_tokens: 1, messages: [{ role: "developer", content: "Be brief." }, ...messages] });
    assert.equal(asDeveloper.usage!.prompt_tokens, asSystem.usage!.prompt_tokens);
  });
});

describe("Anthropic thinking.budget_tokens on the real engine", () => {
  let server: TestServer;
  let anthropic: Anthropic;
  before(async () => {
    server = await realServer();
    anthropic = new Anthropic({ baseURL: `${server.url}/anthropic`, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  test("the reasoning is cut at the budget and the answer gets the rest of max_tokens", async () => {
    const engine = server.engine as Engine;
    const before = engine.metrics().reasoning_tokens_total;
    const r = await anthropic.messages.create({ model: "claude-sonnet-4-5", max_tokens: 24, messages, thinking: { type: "enabled", budget_tokens: 4 } });
    assert.ok(r.content.find((b) => b.type === "thinking"), "a thinking block");
    // The engine's own count: re-encoding the random model's text need not give its tokens back.
    const thinkingTokens = engine.metrics().reasoning_tokens_total - before;
    assert.ok(thinkingTokens <= 4, `thinking holds ${thinkingTokens} tokens, the budget is 4`);
    assert.ok(r.usage.output_tokens > 4 || r.stop_reason === "end_turn", "generation went on past the budget (or ended there)");
  });
});

describe("Anthropic budget and models, scripted engine", () => {
  let server: TestServer;
  let engine: ScriptedEngine;
  let anthropic: Anthropic;
  before(async () => {
    engine = new ScriptedEngine(() => ({ pieces: ["a", "</think>", "b"] }));
    server = await serve(engine, { aliases: ["deepseek-v4-pro"] });
    anthropic = new Anthropic({ baseURL: `${server.url}/anthropic`, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  test("budget_tokens reaches the engine as reasoning_budget only when thinking is enabled", async () => {
    await anthropic.messages.create({ model: "claude-sonnet-4-5", max_tokens: 64, messages, thinking: { type: "enabled", budget_tokens: 1024 } });
    assert.equal(engine.requests.at(-1)!.reasoning_budget, 1024);
    await anthropic.messages.create({ model: "claude-sonnet-4-5", max_tokens: 64, messages });
    assert.equal(engine.requests.at(-1)!.reasoning_budget, undefined);
  });

  test("GET /anthropic/v1/models lists the served names in Anthropic's shape", async () => {
    const page = await anthropic.models.list();
    assert.deepEqual(page.data.map((m) => m.id), [MODEL, "deepseek-v4-pro"]);
    assert.equal(page.data[0]!.type, "model");
    assert.equal(typeof page.data[0]!.display_name, "string");
    assert.equal(page.has_more, false);
  });

  test("GET /anthropic/v1/models/{id}: served and claude-* names; others a 404 in Anthropic's envelope", async () => {
    assert.equal((await anthropic.models.retrieve(MODEL)).id, MODEL);
    assert.equal((await anthropic.models.retrieve("claude-sonnet-4-5")).id, "claude-sonnet-4-5");
    await assert.rejects(anthropic.models.retrieve("gpt-4o"), (e: unknown) => e instanceof Anthropic.NotFoundError && (e.error as any).error.type === "not_found_error");
  });
});

describe("the max_tokens cap", () => {
  let server: TestServer;
  let engine: ScriptedEngine;
  before(async () => {
    engine = new ScriptedEngine(() => ({ pieces: ["ok"] }));
    server = await serve(engine, { maxOutputTokens: 100 });
  });
  after(() => server.close());

  test("above the cap: a 400 naming max_tokens and the cap", async () => {
    const r = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages, max_tokens: 101 });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, "max_tokens");
    assert.match(r.json.error.message, /\[1, 100\]/);
  });

  test("without max_tokens, a cap below the default is the default (chat, Responses)", async () => {
    await postJson(`${server.url}/chat/completions`, { model: MODEL, messages });
    assert.equal(engine.requests.at(-1)!.max_tokens, 100);
    await postJson(`${server.url}/responses`, { model: MODEL, input: "Hi" });
    assert.equal(engine.requests.at(-1)!.max_tokens, 100);
  });

  test("completions: FIM and text completions are capped too, and FIM defaults to its 4K limit under the cap", async () => {
    for (const path of ["/beta/completions", "/v1/completions"]) {
      const r = await postJson(`${server.url}${path}`, { model: MODEL, prompt: "def f(", max_tokens: 101 });
      assert.equal(r.status, 400, path);
      assert.match(r.json.error.message, /\[1, 100\]/);
    }
    await postJson(`${server.url}/beta/completions`, { model: MODEL, prompt: "def f(" });
    assert.equal(engine.requests.at(-1)!.max_tokens, 100);
    const open = await serve(new ScriptedEngine(() => ({ pieces: ["ok"] })));
    try {
      assert.equal((await postJson(`${open.url}/beta/completions`, { model: MODEL, prompt: "def f(", max_tokens: 4097 })).status, 400);
      await postJson(`${open.url}/beta/completions`, { model: MODEL, prompt: "def f(" });
      assert.equal((open.engine as ScriptedEngine).requests.at(-1)!.max_tokens, 4096);
    } finally {
      await open.close();
    }
  });

  test("Anthropic max_tokens above the cap is refused too", async () => {
    const r = await postJson(`${server.url}/anthropic/v1/messages`, { model: "claude-sonnet-4-5", max_tokens: 101, messages });
    assert.equal(r.status, 400);
    assert.match(r.text, /max_tokens/);
  });

  test("the hosted maximum is the default cap, and a cap above it is refused at start", async () => {
    const open = await serve(new ScriptedEngine(() => ({ pieces: ["ok"] })));
    try {
      assert.equal((await postJson(`${open.url}/chat/completions`, { model: MODEL, messages, max_tokens: 393_217 })).status, 400);
    } finally {
      await open.close();
    }
    await assert.rejects(serve(new ScriptedEngine(() => ({ pieces: ["ok"] })), { maxOutputTokens: 393_217 }), /maxOutputTokens must be an integer from 1 to 393216/);
  });
});

describe("vLLM's chat_template_kwargs, as clients of a vLLM-served DeepSeek send them", () => {
  let server: TestServer;
  let engine: ScriptedEngine;
  let openai: OpenAI;
  before(async () => {
    engine = new ScriptedEngine(() => ({ pieces: ["ok"] }));
    server = await serve(engine);
    openai = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  const sent = async (extra: object) => {
    await openai.chat.completions.create({ model: MODEL, messages, max_tokens: 4, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const r = engine.requests.at(-1)!;
    return { thinking: r.thinking, effort: r.reasoning_effort };
  };

  test("thinking (or Qwen's enable_thinking) and reasoning_effort select the mode when the DeepSeek fields are absent", async () => {
    assert.deepEqual(await sent({ chat_template_kwargs: { thinking: false } }), { thinking: { type: "disabled" }, effort: undefined });
    assert.deepEqual(await sent({ chat_template_kwargs: { enable_thinking: false } }), { thinking: { type: "disabled" }, effort: undefined });
    assert.deepEqual(await sent({ chat_template_kwargs: { thinking: true, reasoning_effort: "max" } }), { thinking: { type: "enabled" }, effort: "max" });
  });

  test("the DeepSeek fields win over them", async () => {
    assert.deepEqual(await sent({ thinking: { type: "enabled" }, chat_template_kwargs: { thinking: false } }), { thinking: { type: "enabled" }, effort: undefined });
  });
});
