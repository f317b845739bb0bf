/** The Vercel AI SDK's `@ai-sdk/deepseek` provider against the server. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createDeepSeek } from "@ai-sdk/deepseek";
import { generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";
import { MODEL, realServer, serve, type TestServer } from "./helpers.js";
import { ScriptedEngine, toolCallPieces } from "./scripted-engine.js";

const weatherTool = (calls: string[]) =>
  tool({
    description: "Current weather for a city",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      calls.push(city);
      return { city, sky: "sunny", celsius: 21 };
    },
  });

describe("@ai-sdk/deepseek, real engine", () => {
  let server: TestServer;
  before(async () => {
    server = await realServer();
  });
  after(() => server.close());

  test("generateText returns reasoning and usage (thinking is the V4 default)", async () => {
    const deepseek = createDeepSeek({ baseURL: server.url, apiKey: "unused" });
    const r = await generateText({ model: deepseek(MODEL), prompt: "Hello", maxOutputTokens: 4, maxRetries: 0 });
    assert.equal(typeof r.reasoningText, "string");
    assert.ok((r.reasoningText ?? "").length > 0, "4 tokens of a random model are all reasoning");
    assert.ok((r.usage.inputTokens ?? 0) > 0);
    assert.equal(r.usage.outputTokens, 4);
    assert.equal(r.usage.outputTokenDetails?.reasoningTokens ?? r.usage.reasoningTokens, 4);
    assert.equal(r.finishReason, "length");
  });

  test("streamText streams reasoning deltas, then finishes with usage", async () => {
    const deepseek = createDeepSeek({ baseURL: `${server.url}/v1`, apiKey: "unused" });
    const result = streamText({ model: deepseek(MODEL), prompt: "Hello", maxOutputTokens: 4, maxRetries: 0 });
    const kinds = new Set<string>();
    let reasoning = "";
    for await (const part of result.fullStream) {
      kinds.add(part.type);
      if (part.type === "reasoning-delta") reasoning += part.text;
      if (part.type === "error") throw part.error;
    }
    assert.ok(kinds.has("reasoning-delta"));
    assert.ok(kinds.has("finish"));
    assert.equal(reasoning, await result.reasoningText);
    assert.equal((await result.usage).outputTokens, 4);
  });

  test("non-thinking mode and tools are accepted by the real model", async () => {
    const deepseek = createDeepSeek({ baseURL: server.url, apiKey: "unused" });
    const r = await generateText({
      model: deepseek(MODEL),
      prompt: "Weather in Paris?",
      tools: { get_weather: weatherTool([]) },
      maxOutputTokens: 3,
      maxRetries: 0,
      providerOptions: { deepseek: { thinking: { type: "disabled" } } },
    });
    assert.equal(r.reasoningText, undefined);
    assert.ok((r.usage.inputTokens ?? 0) > 40, "the tool schema is in the prompt");
  });
});

describe("@ai-sdk/deepseek, scripted multi-step tool loop", () => {
  let server: TestServer;
  let engine: ScriptedEngine;
  before(async () => {
    // First turn: reason, then call the tool; once a tool result is in the conversation: answer.
    engine = new ScriptedEngine((req) => {
      const answered = (req.messages ?? []).some((m) => m.role === "tool");
      return answered
        ? { pieces: ["The tool", " says sunny.", "</think>", "It is", " sunny in", " Paris.", "<｜end▁of▁sentence｜>"] }
        : { pieces: ["I need", " the weather.", "</think>", ...toolCallPieces([{ name: "get_weather", args: { city: "Paris" } }])] };
    });
    server = await serve(engine);
  });
  after(() => server.close());

  function checkSecondRequest(call: number): void {
    const second = engine.requests[call]!;
    const assistant = second.messages!.find((m) => m.role === "assistant")!;
    // V4 tool loops must send the reasoning back (spec §A.3); the server would answer 400 otherwise.
    assert.equal(assistant.reasoning_content, "I need the weather.");
    const sent = assistant.tool_calls![0]!;
    assert.match(sent.id!, /^call_00_[A-Za-z0-9]{24}$/);
    assert.deepEqual(JSON.parse(sent.function.arguments as string), { city: "Paris" });
    const toolMessage = second.messages!.find((m) => m.role === "tool")!;
    assert.equal(toolMessage.tool_call_id, sent.id);
    assert.deepEqual(JSON.parse(toolMessage.content as string), { city: "Paris", sky: "sunny", celsius: 21 });
  }

  test("generateText: tool call, execution, reasoning sent back, final answer", async () => {
    const start = engine.requests.length;
    const calls: string[] = [];
    const deepseek = createDeepSeek({ baseURL: server.url, apiKey: "unused" });
    const r = await generateText({ model: deepseek(MODEL), prompt: "Weather in Paris?", tools: { get_weather: weatherTool(calls) }, stopWhen: stepCountIs(3), maxRetries: 0 });
    assert.deepEqual(calls, ["Paris"]);
    assert.equal(r.steps.length, 2);
    assert.equal(r.steps[0]!.finishReason, "tool-calls");
    assert.equal(r.steps[0]!.reasoningText, "I need the weather.");
    assert.equal(r.text, "It is sunny in Paris.");
    assert.equal(r.reasoningText, "The tool says sunny.");
    checkSecondRequest(start + 1);
  });

  test("streamText: the same loop streamed", async () => {
    const start = engine.requests.length;
    const calls: string[] = [];
    const deepseek = createDeepSeek({ baseURL: `${server.url}/v1`, apiKey: "unused" });
    const result = streamText({
      model: deepseek(MODEL),
      prompt: "Weather in Paris?",
      tools: { get_weather: weatherTool(calls) },
      stopWhen: stepCountIs(3),
      maxRetries: 0,
    });
    const kinds: string[] = [];
    for await (const part of result.fullStream) {
      if (part.type === "error") throw part.error;
      if (!kinds.includes(part.type)) kinds.push(part.type);
    }
    for (const k of ["reasoning-delta", "tool-call", "tool-result", "text-delta", "finish"]) assert.ok(kinds.includes(k), `${k} in ${kinds.join(", ")}`);
    assert.equal(await result.text, "It is sunny in Paris.");
    assert.deepEqual(calls, ["Paris"]);
    checkSecondRequest(start + 1);
  });

  test("a JSON-schema tool definition passes the server's schema checks", async () => {
    const deepseek = createDeepSeek({ baseURL: server.url, apiKey: "unused" });
    const schemaTool = tool({
      inputSchema: jsonSchema<{ city: string }>({ type: "object", properties: { city: { type: "string", description: "City" } }, required: ["city"], additionalProperties: false }),
      execute: async () => "ok",
    });
    const r = await generateText({ model: deepseek(MODEL), prompt: "x", tools: { get_weather: schemaTool }, stopWhen: stepCountIs(2), maxRetries: 0 });
    assert.equal(r.text, "It is sunny in Paris.");
  });
});
