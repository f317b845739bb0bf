/** The request the page sends and the JSON it exports and imports (the API's message format). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultSettings, exportJson, importJson, InputError, newConversation, pendingToolCalls, requestBody, type Conversation } from "../../web/src/conversation.js";

function withTurns(): Conversation {
  const c = newConversation({ ...defaultSettings(), system: "Be brief.", thinking: true, effort: "max", temperature: 0.5, maxTokens: 64, stop: "END\nSTOP" });
  c.settings.tools = [{ name: "get_weather", description: "Weather", parameters: '{"type":"object","properties":{"city":{"type":"string"}}}' }];
  c.settings.toolChoice = "function:get_weather";
  c.messages = [
    { id: "1", role: "user", content: "Weather?" },
    { id: "2", role: "assistant", content: "", reasoning: "Call it.", toolCalls: [{ id: "call_00_x", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
    { id: "3", role: "tool", content: "sunny", toolCallId: "call_00_x" },
  ];
  return c;
}

test("the request carries the settings in DeepSeek's fields", () => {
  const body = requestBody(withTurns());
  assert.deepEqual(body.thinking, { type: "enabled" });
  assert.equal(body.reasoning_effort, "max");
  assert.equal(body.temperature, 0.5);
  assert.equal(body.max_tokens, 64);
  assert.deepEqual(body.stop, ["END", "STOP"]);
  assert.deepEqual(body.tool_choice, { type: "function", function: { name: "get_weather" } });
  assert.deepEqual(body.messages, [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Weather?" },
    { role: "assistant", content: "", reasoning_content: "Call it.", tool_calls: [{ id: "call_00_x", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
    { role: "tool", tool_call_id: "call_00_x", content: "sunny" },
  ]);
});

test("thinking off sends no reasoning_effort", () => {
  const c = withTurns();
  c.settings.thinking = false;
  const body = requestBody(c);
  assert.deepEqual(body.thinking, { type: "disabled" });
  assert.equal("reasoning_effort" in body, false);
});

test("a tool schema that is not JSON is refused with the tool's name", () => {
  const c = withTurns();
  c.settings.tools[0]!.parameters = "{type: object}";
  assert.throws(() => requestBody(c), (err: unknown) => err instanceof InputError && /tool "get_weather": the parameters are not valid JSON/.test(err.message));
});

test("export then import gives back the same request", () => {
  const c = withTurns();
  const again = importJson(exportJson(c), defaultSettings());
  assert.deepEqual(requestBody(again), requestBody(c));
});

test("a bare messages array imports, and an unknown role is named", () => {
  const c = importJson('[{"role":"system","content":"S"},{"role":"user","content":"Hello there"}]', defaultSettings());
  assert.equal(c.settings.system, "S");
  assert.equal(c.title, "Hello there");
  assert.throws(() => importJson('[{"role":"robot","content":"x"}]', defaultSettings()), /messages\[0\]: unknown role "robot"/);
});

test("a tool call stays pending until its result is written", () => {
  const c = withTurns();
  assert.deepEqual(pendingToolCalls(c), []);
  c.messages.pop();
  assert.deepEqual(pendingToolCalls(c).map((t) => t.id), ["call_00_x"]);
});
