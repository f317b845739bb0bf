/** `@anthropic-ai/sdk` against /anthropic: messages, streaming events, thinking, tool use. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { makeKey } from "../../src/server/auth.js";
import { realServer, serve, type TestServer } from "./helpers.js";
import { ScriptedEngine, toolCallPieces } from "./scripted-engine.js";

const SONNET = "claude-sonnet-5-5";

describe("anthropic client, real engine", () => {
  let server: TestServer;
  let client: Anthropic;
  before(async () => {
    server = await realServer({}, { apiKeys: [makeKey("sk-ant-test")] });
    client = new Anthropic({ baseURL: `${server.url}/anthropic`, apiKey: "sk-ant-test", maxRetries: 0 });
  });
  after(() => server.close());

  test("a message: text block, max_tokens stop, usage; the model name is echoed", async () => {
    const m = await client.messages.create({ model: SONNET, max_tokens: 3, messages: [{ role: "user", content: "Hello" }] });
    assert.match(m.id, /^msg_[0-9a-f]{24}$/);
    assert.equal(m.type, "message");
    assert.equal(m.role, "assistant");
    assert.equal(m.model, SONNET);
    assert.equal(m.content.length, 1);
    assert.equal(m.content[0]!.type, "text");
    assert.equal(m.stop_reason, "max_tokens");
    assert.equal(m.usage.output_tokens, 3);
    assert.ok(m.usage.input_tokens > 0);
  });

  test("streaming with thinking: event order and the SDK's final message", async () => {
    const stream = client.messages.stream({
      model: SONNET,
      max_tokens: 4,
      thinking: { type: "adaptive" },
      system: "Be brief.",
      messages: [{ role: "user", content: [{ type: "text", text: "Hello" }] }],
    });
    const events: string[] = [];
    stream.on("streamEvent", (e) => events.push(e.type));
    const final = await stream.finalMessage();
    assert.equal(events[0], "message_start");
    assert.deepEqual(events.slice(-2), ["message_delta", "message_stop"]);
    assert.ok(events.includes("content_block_start") && events.includes("content_block_stop"));
    assert.equal(final.content[0]!.type, "thinking");
    assert.ok((final.content[0] as Anthropic.ThinkingBlock).thinking.length > 0);
    assert.equal(final.stop_reason, "max_tokens");
    assert.equal(final.usage.output_tokens, 4);
  });

  test("count_tokens and a wrong key", async () => {
    const n = await client.messages.countTokens({ model: SONNET, messages: [{ role: "user", content: "Hello there" }] });
    assert.ok(n.input_tokens > 0);
    const bad = new Anthropic({ baseURL: `${server.url}/anthropic`, apiKey: "nope", maxRetries: 0 });
    await assert.rejects(bad.messages.create({ model: SONNET, max_tokens: 1, messages: [{ role: "user", content: "x" }] }), (e: unknown) => e instanceof Anthropic.AuthenticationError);
  });
});

describe("anthropic client, scripted tool use", () => {
  let server: TestServer;
  let engine: ScriptedEngine;
  let client: Anthropic;
  const tools: Anthropic.Tool[] = [{ name: "get_weather", description: "Weather", input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }];
  before(async () => {
    engine = new ScriptedEngine((req) =>
      (req.messages ?? []).some((m) => m.role === "tool")
        ? { pieces: ["Done.", "</think>", "Sunny", " in Paris.", "<｜end▁of▁sentence｜>"] }
        : { pieces: ["Checking", "</think>", "Let me look.", ...toolCallPieces([{ name: "get_weather", args: { city: "Paris", days: 2 } }])] },
    );
    server = await serve(engine);
    client = new Anthropic({ baseURL: `${server.url}/anthropic`, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  test("tool_use blocks, non-streamed and streamed, then a tool_result round trip", async () => {
    const params = { model: SONNET, max_tokens: 100, tools, thinking: { type: "adaptive" as const }, messages: [{ role: "user" as const, content: "Weather in Paris?" }] };
    const m = await client.messages.create(params);
    assert.equal(m.stop_reason, "tool_use");
    assert.deepEqual(m.content.map((b) => b.type), ["thinking", "text", "tool_use"]);
    const use = m.content[2] as Anthropic.ToolUseBlock;
    assert.equal(use.name, "get_weather");
    assert.deepEqual(use.input, { city: "Paris", days: 2 });

    const streamed = await client.messages.stream(params).finalMessage();
    assert.deepEqual(streamed.content.map((b) => b.type), ["thinking", "text", "tool_use"]);
    assert.deepEqual((streamed.content[2] as Anthropic.ToolUseBlock).input, { city: "Paris", days: 2 }, "input_json_delta pieces join to the input");
    assert.equal((streamed.content[1] as Anthropic.TextBlock).text, "Let me look.");

    const final = await client.messages.create({
      ...params,
      messages: [
        ...params.messages,
        { role: "assistant", content: m.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: [{ type: "text", text: "sunny, 21C" }] }] },
      ],
    });
    assert.equal(final.stop_reason, "end_turn");
    assert.equal((final.content.find((b) => b.type === "text") as Anthropic.TextBlock).text, "Sunny in Paris.");
    const sent = engine.requests[engine.requests.length - 1]!.messages!;
    const assistant = sent.find((x) => x.role === "assistant")!;
    assert.equal(assistant.reasoning_content, "Checking");
    assert.equal(assistant.tool_calls![0]!.id, use.id);
    assert.deepEqual(sent[sent.length - 1], { role: "tool", tool_call_id: use.id, content: "sunny, 21C" });
  });
});
