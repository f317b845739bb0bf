/** Responses request items → chat messages, and finished generations → output items (no server). */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ParsedOutput } from "../../src/engine/types.js";
import { prepareResponses, renameParam, toChatRequest } from "../../src/server/responses/request.js";
import { finalStatus, outputItems } from "../../src/server/responses/response.js";
import type { ResponsesRequest } from "../../src/server/responses/schema.js";

const ctx = { beta: false, samplingInThinking: false };
const body = (extra: Partial<ResponsesRequest>): ResponsesRequest => ({ model: "deepseek-v4-flash", ...extra }) as ResponsesRequest;

test("instructions become the first system message and a string input one user message", () => {
  const { chat } = toChatRequest(body({ instructions: "Be brief.", input: "Hi" }));
  assert.deepEqual(chat.messages, [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi" },
  ]);
});

test("a developer message is a system message", () => {
  const { chat } = toChatRequest(body({ input: [{ role: "developer", content: [{ type: "input_text", text: "Rules." }] }, { role: "user", content: "Hi" }] }));
  assert.deepEqual(chat.messages[0], { role: "system", content: "Rules." });
});

test("reasoning, assistant text and function calls join one assistant turn; outputs become tool messages", () => {
  const { chat, sources } = toChatRequest(
    body({
      input: [
        { role: "user", content: "Weather?" },
        { type: "reasoning", id: "rs_1", summary: [], content: [{ type: "reasoning_text", text: "Look it up." }] },
        { type: "message", role: "assistant", content: [{ type: "output_text", text: "Checking." }] },
        { type: "function_call", call_id: "call_a", name: "get_weather", arguments: '{"city":"Paris"}' },
        { type: "function_call", call_id: "call_b", name: "get_time", arguments: "{}" },
        { type: "function_call_output", call_id: "call_a", output: "sunny" },
        { type: "function_call_output", call_id: "call_b", output: [{ type: "input_text", text: "noon" }] },
      ],
    }),
  );
  assert.deepEqual(chat.messages, [
    { role: "user", content: "Weather?" },
    {
      role: "assistant",
      content: "Checking.",
      reasoning_content: "Look it up.",
      tool_calls: [
        { id: "call_a", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
        { id: "call_b", type: "function", function: { name: "get_time", arguments: "{}" } },
      ],
    },
    { role: "tool", tool_call_id: "call_a", content: "sunny" },
    { role: "tool", tool_call_id: "call_b", content: "noon" },
  ]);
  assert.deepEqual(sources, ["input[0]", "input[1]", "input[5]", "input[6]"]);
});

test("a reasoning item after a finished turn starts a new assistant turn", () => {
  const { chat } = toChatRequest(
    body({
      input: [
        { role: "user", content: "Hi" },
        { type: "message", role: "assistant", content: "One." },
        { type: "reasoning", summary: [{ type: "summary_text", text: "Again." }] },
        { type: "message", role: "assistant", content: "Two." },
      ],
    }),
  );
  assert.deepEqual(
    chat.messages.map((m) => [m.role, m.content, m.reasoning_content]),
    [
      ["user", "Hi", undefined],
      ["assistant", "One.", ""],
      ["assistant", "Two.", "Again."],
    ],
  );
});

test("tools, tool_choice and text.format map to the chat fields", () => {
  const { chat } = toChatRequest(
    body({
      input: "Hi",
      tools: [{ type: "function", name: "f", parameters: { type: "object", properties: {} }, strict: true }],
      tool_choice: { type: "function", name: "f" },
      text: { format: { type: "json_schema", name: "out", schema: { type: "object" }, strict: true } },
    }),
  );
  assert.deepEqual(chat.tools, [{ type: "function", function: { name: "f", parameters: { type: "object", properties: {} }, strict: true } }]);
  assert.deepEqual(chat.tool_choice, { type: "function", function: { name: "f" } });
  assert.deepEqual(chat.response_format, { type: "json_schema", json_schema: { name: "out", schema: { type: "object" }, strict: true } });
});

test("reasoning.effort none turns thinking off; other efforts reach the engine request", () => {
  assert.equal(prepareResponses(body({ input: "Hi", reasoning: { effort: "none" } }), ctx).thinking, false);
  const on = prepareResponses(body({ input: "Hi", reasoning: { effort: "max" } }), ctx);
  assert.equal(on.thinking, true);
  assert.equal(on.request.reasoning_effort, "max");
  assert.equal(prepareResponses(body({ input: "Hi", reasoning: null }), ctx).thinking, true, "DeepSeek's default: thinking on");
});

test("chat field names in errors become Responses ones", () => {
  const sources = ["instructions", "input[2]"];
  assert.equal(renameParam("messages[1].tool_call_id", sources), "input[2].tool_call_id");
  assert.equal(renameParam("max_tokens", sources), "max_output_tokens");
  assert.equal(renameParam("response_format.type", sources), "text.format.type");
  assert.equal(renameParam("tools[3].function.parameters", sources), "tools[3].parameters");
  assert.equal(renameParam("tool_choice.function.name", sources), "tool_choice.name");
});

test("output items: reasoning, text and one function_call per call, in the model's order", () => {
  const message: ParsedOutput = {
    content: "Checking.",
    reasoning_content: "Think.",
    tool_calls: [{ index: 0, id: "call_00_x", type: "function", function: { name: "f", arguments: '{"a": 1}' } }],
    finish_reason: "tool_calls",
    warnings: [],
  };
  const items = outputItems(message, true, "completed");
  assert.deepEqual(items.map((i) => i.type), ["reasoning", "message", "function_call"]);
  assert.deepEqual((items[2] as any).call_id, "call_00_x");
  assert.deepEqual(outputItems({ ...message, content: "" }, false, "completed").map((i) => i.type), ["function_call"], "no empty message beside calls; no reasoning in chat mode");
});

test("length ends a response as incomplete (max_output_tokens)", () => {
  assert.deepEqual(finalStatus("length"), { status: "incomplete", incomplete_details: { reason: "max_output_tokens" }, error: null });
  assert.equal(finalStatus("tool_calls").status, "completed");
});

test("text.format json_object reaches the engine as the chat route's response_format", () => {
  const p = prepareResponses(body({ input: "Give JSON.", text: { format: { type: "json_object" } } }), ctx);
  assert.deepEqual(p.request.response_format, { type: "json_object" });
});

test("tool_choice required and max_output_tokens reach the engine request", () => {
  const p = prepareResponses(body({ input: "Hi", tools: [{ type: "function", name: "f" }], tool_choice: "required", max_output_tokens: 77 }), ctx);
  assert.equal(p.request.tool_choice, "required");
  assert.equal(p.request.max_tokens, 77);
});
