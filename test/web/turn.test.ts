/** One assistant turn assembled from the chat route's chunks, as the page shows it. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { applyChunk, emptyTurn, hasOutput } from "../../web/src/turn.js";

const chunk = (delta: Record<string, unknown>, finish: string | null = null, usage: unknown = null) => ({ choices: [{ index: 0, delta, finish_reason: finish }], usage });

test("reasoning and content accumulate apart", () => {
  let t = emptyTurn();
  for (const c of [chunk({ role: "assistant", content: null, reasoning_content: "" }), chunk({ reasoning_content: "Let me" }), chunk({ reasoning_content: " think." }), chunk({ content: "Hi" }), chunk({ content: "!" })]) {
    t = applyChunk(t, c);
  }
  assert.equal(t.reasoning, "Let me think.");
  assert.equal(t.content, "Hi!");
  assert.equal(t.chunks, 5);
});

test("tool-call fragments merge by index: id and name first, arguments in pieces", () => {
  let t = emptyTurn();
  t = applyChunk(t, chunk({ tool_calls: [{ index: 0, id: "call_00_a", type: "function", function: { name: "get_weather", arguments: "" } }] }));
  t = applyChunk(t, chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city": ' } }] }));
  t = applyChunk(t, chunk({ tool_calls: [{ index: 1, id: "call_01_b", type: "function", function: { name: "get_time", arguments: "{}" } }] }));
  t = applyChunk(t, chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }));
  assert.deepEqual(t.toolCalls, [
    { id: "call_00_a", type: "function", function: { name: "get_weather", arguments: '{"city": "Paris"}' } },
    { id: "call_01_b", type: "function", function: { name: "get_time", arguments: "{}" } },
  ]);
});

test("the last chunk's finish_reason and usage are kept", () => {
  const usage = { prompt_tokens: 10, completion_tokens: 3, prompt_cache_hit_tokens: 4, cost: 0.00001 };
  const t = applyChunk(applyChunk(emptyTurn(), chunk({ content: "x" })), chunk({}, "length", usage));
  assert.equal(t.finishReason, "length");
  assert.deepEqual(t.usage, usage);
});

test("an error event inside the stream becomes the turn's error", () => {
  const t = applyChunk(emptyTurn(), { error: { message: "the engine stopped", type: "server_error" } });
  assert.equal(t.error, "the engine stopped");
});

test("time to first token waits for output, not for the role chunk", () => {
  assert.equal(hasOutput(chunk({ role: "assistant", content: null, reasoning_content: "" })), false);
  assert.equal(hasOutput(chunk({ reasoning_content: "a" })), true);
  assert.equal(hasOutput(chunk({ tool_calls: [{ index: 0 }] })), true);
  assert.equal(hasOutput({ choices: [], usage: {} }), false);
});
