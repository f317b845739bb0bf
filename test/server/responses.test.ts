/** The Responses API (`POST /responses`) with the official `openai` client's `responses.create`. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import type { GenerateRequest } from "../../src/engine/types.js";
import { MODEL, postJson, realServer, serve, type TestServer } from "./helpers.js";
import { ScriptedEngine, toolCallPieces } from "./scripted-engine.js";

const tools = [
  { type: "function" as const, name: "get_weather", description: "Weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }, strict: false },
];

/** First turn: think, then call get_weather; once a tool result is in the prompt: think, then answer. */
function toolLoop(request: GenerateRequest) {
  const last = request.messages?.[request.messages.length - 1];
  if (last?.role === "tool") return { pieces: ["The tool", " says sunny.", "</think>", "It is", " sunny in Paris.", "<｜end▁of▁sentence｜>"] };
  return { pieces: ["I should", " look it up.", "</think>", ...toolCallPieces([{ name: "get_weather", args: { city: "Paris" } }])] };
}

describe("responses API, scripted tool loop", () => {
  let server: TestServer;
  let engine: ScriptedEngine;
  let client: OpenAI;
  before(async () => {
    engine = new ScriptedEngine(toolLoop);
    server = await serve(engine);
    client = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  test("non-streamed: function_call → function_call_output → final message", async () => {
    const input: any[] = [{ role: "user", content: "Weather in Paris?" }];
    const first = await client.responses.create({ model: MODEL, input, tools, tool_choice: "auto" });
    assert.equal(first.object, "response");
    assert.match(first.id, /^resp_[0-9a-f]{48}$/);
    assert.equal(first.status, "completed");
    assert.deepEqual(first.output.map((o) => o.type), ["reasoning", "function_call"]);
    const reasoning = first.output[0] as any;
    assert.equal(reasoning.content[0].text, "I should look it up.");
    const call = first.output[1] as any;
    assert.equal(call.name, "get_weather");
    assert.deepEqual(JSON.parse(call.arguments), { city: "Paris" });
    assert.match(call.call_id, /^call_/);

    input.push(...first.output, { type: "function_call_output", call_id: call.call_id, output: '{"sky":"sunny"}' });
    const second = await client.responses.create({ model: MODEL, input, tools });
    assert.equal(second.status, "completed");
    assert.equal(second.output_text, "It is sunny in Paris.");
    assert.deepEqual(second.output.map((o) => o.type), ["reasoning", "message"]);

    const sent = engine.requests[engine.requests.length - 1]!.messages!;
    assert.deepEqual(sent.map((m) => m.role), ["user", "assistant", "tool"]);
    assert.equal(sent[1]!.reasoning_content, "I should look it up.", "the reasoning item goes back as reasoning_content");
    assert.equal(sent[1]!.tool_calls![0]!.id, call.call_id);
    assert.equal(sent[2]!.tool_call_id, call.call_id);
  });

  test("streamed: the SDK's accumulator rebuilds both turns from the semantic events", async () => {
    const input: any[] = [{ role: "user", content: "Weather in Paris?" }];
    const first = await client.responses.stream({ model: MODEL, input, tools }).finalResponse();
    const call = first.output.find((o) => o.type === "function_call") as any;
    assert.ok(call, "a function_call item");
    assert.deepEqual(JSON.parse(call.arguments), { city: "Paris" });
    input.push(...first.output, { type: "function_call_output", call_id: call.call_id, output: "sunny" });
    const second = await client.responses.stream({ model: MODEL, input, tools }).finalResponse();
    assert.equal(second.status, "completed");
    assert.equal(second.output_text, "It is sunny in Paris.");
  });

  test("streamed events: order, sequence numbers, no [DONE]", async () => {
    const stream = await client.responses.create({ model: MODEL, input: "Weather in Paris?", tools, stream: true });
    const events: any[] = [];
    for await (const e of stream) events.push(e);
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
    const types = events.map((e) => e.type).filter((t, i, all) => !(t.endsWith(".delta") && all[i - 1] === t));
    assert.deepEqual(types, [
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.reasoning_text.delta",
      "response.reasoning_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ]);
    const done = events[events.length - 1].response;
    assert.equal(done.usage.output_tokens, toolLoop({ messages: [{ role: "user", content: "" }] }).pieces.length, "one token per scripted piece");
    assert.equal(done.usage.output_tokens_details.reasoning_tokens, 3, "two reasoning pieces and </think>");
    assert.equal(typeof done.usage.cost, "number");
  });

  test("the raw stream ends with response.completed, not [DONE]", async () => {
    const r = await postJson(`${server.url}/v1/responses`, { model: MODEL, input: "hi", stream: true });
    assert.equal(r.status, 200);
    assert.ok(!r.text.includes("[DONE]"));
    assert.match(r.text, /event: response\.completed\ndata: /);
  });
});

describe("responses API, real engine", () => {
  let server: TestServer;
  let client: OpenAI;
  before(async () => {
    server = await realServer();
    client = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  test("non-streamed: usage with cached tokens, reasoning tokens and cost", async () => {
    const r: any = await client.responses.create({ model: MODEL, instructions: "Be brief.", input: "Say hello.", max_output_tokens: 6 });
    assert.ok(["completed", "incomplete"].includes(r.status));
    const u = r.usage;
    assert.ok(u.input_tokens > 0);
    assert.equal(typeof u.input_tokens_details.cached_tokens, "number");
    assert.ok(u.output_tokens >= 1 && u.output_tokens <= 6);
    assert.ok(u.output_tokens_details.reasoning_tokens <= u.output_tokens);
    assert.equal(u.total_tokens, u.input_tokens + u.output_tokens);
    assert.ok(u.cost > 0);
    assert.equal(r.max_output_tokens, 6);
    assert.equal(r.instructions, "Be brief.");
  });

  test("streamed with thinking off (reasoning.effort none): no reasoning item", async () => {
    const stream = await client.responses.create({ model: MODEL, input: "Say hello.", max_output_tokens: 4, reasoning: { effort: "none" as any }, stream: true });
    let final: any;
    for await (const e of stream) if (e.type === "response.completed" || e.type === "response.incomplete") final = e.response;
    assert.ok(final, "a final response event");
    assert.ok(final.output.every((o: any) => o.type === "message"));
    assert.equal(final.usage.output_tokens_details.reasoning_tokens, 0);
  });
});

describe("responses API, request errors", () => {
  let server: TestServer;
  before(async () => {
    server = await serve(new ScriptedEngine(() => ({ pieces: ["ok"] })));
  });
  after(() => server.close());

  const post = (body: unknown) => postJson(`${server.url}/responses`, { model: MODEL, input: "hi", ...(body as object) });

  test("previous_response_id is a 400 saying the API is stateless", async () => {
    const r = await post({ previous_response_id: "resp_123" });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, "previous_response_id");
    assert.match(r.json.error.message, /stateless/);
  });

  test("max_output_tokens out of range names max_output_tokens", async () => {
    const r = await post({ max_output_tokens: 0 });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, "max_output_tokens");
    assert.match(r.json.error.message, /max_output_tokens/);
  });

  test("an unknown effort names reasoning.effort", async () => {
    const r = await post({ reasoning: { effort: "extreme" } });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, "reasoning.effort");
  });

  test("a non-function tool names its type", async () => {
    const r = await post({ tools: [{ type: "web_search" }] });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, "tools[0].type");
  });

  test("an image part names the input item", async () => {
    const r = await post({ input: [{ role: "user", content: [{ type: "input_image", image_url: "x" }] }] });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, "input[0].content[0].type");
  });
});
