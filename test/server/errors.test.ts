/**
 * Every error case over raw HTTP: DeepSeek's status codes and body, and the
 * field at fault named in `param`. Ends by checking that no bad request
 * disturbed the server or a concurrent good one.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { makeKey } from "../../src/server/auth.js";
import { MODEL, postJson, realServer, serve, sseData, waitFor, type TestServer } from "./helpers.js";
import { ScriptedEngine } from "./scripted-engine.js";

const user = (content: string) => ({ role: "user", content });
const base = { model: MODEL, messages: [user("hi")], max_tokens: 1 };
const tool = (name: string, parameters: unknown = { type: "object", properties: {} }) => ({ type: "function", function: { name, parameters } });
const CALL_ID = "call_00_abcdefghijklmnopqrstuvwx";
const toolTurn = (extra: Record<string, unknown> = {}) => ({
  role: "assistant",
  content: "",
  reasoning_content: "thinking",
  tool_calls: [{ id: CALL_ID, type: "function", function: { name: "f", arguments: "{}" } }],
  ...extra,
});

interface Case {
  name: string;
  path?: string;
  body: unknown;
  status: number;
  param: string | null;
  message?: RegExp | string;
  /** Only a --strict-api server refuses it (the hosted service's 400s; dsv4 accepts it by default). */
  strictApi?: boolean;
}

const CASES: Case[] = [
  { name: "invalid JSON", body: '{"model": "deepseek-v4-flash", "messages": [}', status: 400, param: "body", message: /^Failed to parse the request body as JSON: .* at line 1 column 45$/ },
  { name: "empty body", body: "", status: 400, param: "body", message: /empty/ },
  { name: "a body that is not an object", body: "[1, 2]", status: 422, param: "body", message: /invalid type: sequence/ },
  { name: "missing model", body: { messages: [user("x")] }, status: 422, param: "body", message: /missing field `model`/ },
  { name: "messages of the wrong type", body: { model: MODEL, messages: "hi" }, status: 422, param: "messages", message: /invalid type: string "hi", expected a sequence of messages/ },
  { name: "content of the wrong type", body: { ...base, messages: [{ role: "user", content: 5 }] }, status: 422, param: "messages[0].content", message: /invalid type: integer `5`/ },
  { name: "a content part without text", body: { ...base, messages: [{ role: "user", content: [{ type: "text" }] }] }, status: 422, param: "messages[0].content[0]", message: /missing field `text`/ },
  { name: "an image part", body: { ...base, messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }, status: 400, param: "messages[0].content[0].type" },
  { name: "thinking as a boolean", body: { ...base, thinking: true }, status: 422, param: "thinking", message: "Failed to deserialize the JSON body into the target type: thinking: invalid type: boolean `true`, expected struct ThinkingOptions" },
  { name: "an unknown thinking type", body: { ...base, thinking: { type: "on" } }, status: 422, param: "thinking.type" },
  { name: "max_tokens as a string", body: { ...base, max_tokens: "10" }, status: 422, param: "max_tokens", message: /expected an integer/ },
  { name: "max_tokens as a float", body: { ...base, max_tokens: 1.5 }, status: 422, param: "max_tokens" },
  { name: "unknown model", body: { ...base, model: "deepseek-chat" }, status: 400, param: "model", message: "Model Not Exist" },
  { name: "n = 2", body: { ...base, n: 2 }, status: 400, param: "n", message: "Invalid n value (currently only n = 1 is supported)" },
  { name: "max_tokens = 0", body: { ...base, max_tokens: 0 }, status: 400, param: "max_tokens", message: "Invalid max_tokens value, the valid range of max_tokens is [1, 393216]" },
  { name: "max_tokens = 393217", body: { ...base, max_tokens: 393217 }, status: 400, param: "max_tokens", message: "Invalid max_tokens value, the valid range of max_tokens is [1, 393216]" },
  { name: "max_completion_tokens out of range", body: { model: MODEL, messages: [user("x")], max_completion_tokens: -1 }, status: 400, param: "max_completion_tokens" },
  {
    name: "a prompt longer than the context",
    body: { ...base, messages: [user("word ".repeat(200))], max_tokens: 8 },
    status: 400,
    param: "messages",
    message: /^This model's maximum context length is 64 tokens\. However, you requested \d+ tokens \(\d+ in the messages, 8 in the completion\)\. Please reduce the length of the messages or completion\.$/,
  },
  { name: "empty messages", body: { ...base, messages: [] }, status: 400, param: "messages" },
  { name: "129 tools", body: { ...base, tools: Array.from({ length: 129 }, (_, i) => tool(`f${i}`)) }, status: 400, param: "tools", message: /too many tools: 129 given, at most 128/ },
  { name: "an invalid tool name", body: { ...base, tools: [tool("get weather")] }, status: 400, param: "tools[0].function.name" },
  { name: "a 65-character tool name", body: { ...base, tools: [tool("f".repeat(65))] }, status: 400, param: "tools[0].function.name" },
  { name: "duplicate tool names", body: { ...base, tools: [tool("f"), tool("f")] }, status: 400, param: "tools[1].function.name" },
  { name: "a non-object parameters schema", body: { ...base, tools: [tool("f", { type: "string" })] }, status: 400, param: "tools[0].function.parameters.type" },
  { name: "parameters that are not a schema", body: { ...base, tools: [tool("f", "x")] }, status: 422, param: "tools[0].function.parameters" },
  { name: "a property schema with an unknown type", body: { ...base, tools: [tool("f", { type: "object", properties: { a: { type: "str" } } })] }, status: 400, param: "tools[0].function.parameters.properties.a.type" },
  { name: "a tool type other than function", body: { ...base, tools: [{ type: "retrieval", function: { name: "f" } }] }, status: 400, param: "tools[0].type" },
  { name: "strict tools outside /beta", body: { ...base, tools: [{ type: "function", function: { name: "f", strict: true, parameters: { type: "object", properties: {}, required: [], additionalProperties: false } } }] }, status: 400, param: "tools", strictApi: true },
  { name: "tool_choice naming an unknown tool", body: { ...base, tools: [tool("f")], tool_choice: { type: "function", function: { name: "g" } } }, status: 400, param: "tool_choice.function.name" },
  { name: "tool_choice required without tools", body: { ...base, tool_choice: "required" }, status: 400, param: "tool_choice" },
  { name: "a tool message without tool_call_id", body: { ...base, messages: [user("x"), toolTurn(), { role: "tool", content: "r" }] }, status: 422, param: "messages[2]", message: /missing field `tool_call_id`/ },
  { name: "a tool_call_id that answers no call", body: { ...base, messages: [user("x"), toolTurn(), { role: "tool", tool_call_id: "call_00_zzz", content: "r" }] }, status: 400, param: "messages[2].tool_call_id" },
  { name: "a tool-call turn without reasoning_content (thinking)", body: { ...base, messages: [user("x"), toolTurn({ reasoning_content: null }), { role: "tool", tool_call_id: CALL_ID, content: "r" }] }, status: 400, param: "messages[1].reasoning_content", message: "The reasoning_content in the thinking mode must be passed back to the API.", strictApi: true },
  { name: "an unknown role", body: { ...base, messages: [{ role: "robot", content: "x" }] }, status: 422, param: "messages[0].role" },
  { name: "a user message without content", body: { ...base, messages: [{ role: "user" }] }, status: 422, param: "messages[0]", message: /missing field `content`/ },
  { name: "prefix completion outside /beta", body: { ...base, messages: [user("x"), { role: "assistant", content: "A", prefix: true }] }, status: 400, param: "messages[1].prefix", message: /only available when using beta api/ },
  { name: "a prefix that is not the last message", path: "/beta/chat/completions", body: { ...base, messages: [user("x"), { role: "assistant", content: "A", prefix: true }, user("y")] }, status: 400, param: "messages[1].prefix" },
  { name: "top_logprobs without logprobs", body: { ...base, top_logprobs: 2 }, status: 400, param: "top_logprobs" },
  { name: "top_logprobs = 21", body: { ...base, logprobs: true, top_logprobs: 21 }, status: 400, param: "top_logprobs" },
  { name: "17 stop strings", body: { ...base, stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }, status: 400, param: "stop" },
  { name: "an empty stop string", body: { ...base, stop: ["a", ""] }, status: 400, param: "stop[1]" },
  { name: "temperature = 3", body: { ...base, temperature: 3 }, status: 400, param: "temperature" },
  { name: "top_p = 1.5", body: { ...base, top_p: 1.5 }, status: 400, param: "top_p" },
  { name: "an invalid user_id", body: { ...base, user_id: "a b" }, status: 400, param: "user_id" },
  { name: "response_format json_schema", body: { ...base, response_format: { type: "json_schema" } }, status: 400, param: "response_format.type", strictApi: true },
  { name: "response_format json_schema without its json_schema object", body: { ...base, response_format: { type: "json_schema" } }, status: 400, param: "response_format.json_schema" },
  { name: "an unknown reasoning_effort", body: { ...base, reasoning_effort: "extreme" }, status: 400, param: "reasoning_effort" },
  { name: "stream_options of the wrong type", body: { ...base, stream: true, stream_options: 1 }, status: 422, param: "stream_options" },
  { name: "completions outside /beta", path: "/completions", body: { model: MODEL, prompt: "x" }, status: 400, param: "url", message: /^completions api is only available when using beta api \(set base_url="http:\/\/127\.0\.0\.1:\d+\/beta"\)$/, strictApi: true },
  { name: "text completion with two prompts", path: "/v1/completions", body: { model: MODEL, prompt: ["a", "b"] }, status: 400, param: "prompt", message: /one prompt per request/ },
  { name: "text completion with an empty prompt", path: "/v1/completions", body: { model: MODEL, prompt: "" }, status: 400, param: "prompt", message: /empty/ },
  { name: "text completion with a token id outside the vocabulary", path: "/v1/completions", body: { model: MODEL, prompt: [[1, 2, 999999999]] }, status: 400, param: "prompt[0][2]", message: /not in the vocabulary/ },
  { name: "text completion with token ids and a suffix", path: "/v1/completions", body: { model: MODEL, prompt: [1, 2], suffix: "x" }, status: 400, param: "suffix" },
  { name: "text completion longer than the context", path: "/v1/completions", body: { model: MODEL, prompt: "word ".repeat(80), max_tokens: 4 }, status: 400, param: "prompt", message: /maximum context length is 64 tokens.* in the prompt, 4 in the completion/ },
  { name: "text completion with a prompt object", path: "/v1/completions", body: { model: MODEL, prompt: { text: "x" } }, status: 422, param: "prompt", message: /expected a string, token ids, or a list of one of them/ },
  { name: "FIM max_tokens above 4K", path: "/beta/completions", body: { model: MODEL, prompt: "x", max_tokens: 4097 }, status: 400, param: "max_tokens", message: "Invalid max_tokens value, the valid range of max_tokens is [1, 4096]" },
  { name: "FIM without a prompt", path: "/beta/completions", body: { model: MODEL }, status: 422, param: "body", message: /missing field `prompt`/ },
  { name: "JSON nested 200 levels deep", body: `{"model": "${MODEL}", "messages": [{"role": "user", "content": "x", "extra": ${"[".repeat(200)}${"]".repeat(200)}}]}`, status: 400, param: "body", message: /nested deeper than 128 levels/ },
  { name: "an unknown route", path: "/chat/complete", body: base, status: 404, param: "url" },
];

describe("errors over raw HTTP", () => {
  let server: TestServer;
  let hosted: TestServer;
  before(async () => {
    server = await realServer({ contextLength: 64, maxConcurrentSequences: 1, maxQueuedRequests: 0 });
    hosted = await serve(server.engine, { strictApi: true });
  });
  after(async () => {
    await hosted.close();
    await server.close();
  });

  for (const c of CASES) {
    test(`${c.status}: ${c.name}${c.strictApi ? " (--strict-api)" : ""}`, async () => {
      const r = await postJson((c.strictApi ? hosted : server).url + (c.path ?? "/chat/completions"), c.body);
      assert.equal(r.status, c.status, r.text);
      assert.equal(r.headers.get("content-type"), "application/json; charset=utf-8");
      const err = r.json.error;
      assert.deepEqual(Object.keys(r.json), ["error"]);
      assert.deepEqual(Object.keys(err), ["message", "type", "param", "code"]);
      assert.equal(err.param, c.param, err.message);
      assert.equal(err.type, "invalid_request_error");
      if (typeof c.message === "string") assert.equal(err.message, c.message);
      else if (c.message) assert.match(err.message, c.message);
      if (c.status === 422) assert.match(err.message, /^Failed to deserialize the JSON body into the target type: /);
    });
  }

  test("503 when the engine's queue is full, and the busy request is unharmed", async () => {
    const controller = new AbortController();
    const first = await fetch(`${server.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...base, max_tokens: 40, stream: true }),
      signal: controller.signal,
    });
    const reader = first.body!.getReader();
    await reader.read();
    const second = await postJson(`${server.url}/chat/completions`, base);
    assert.equal(second.status, 503);
    assert.equal(second.json.error.type, "server_error");
    assert.match(second.json.error.message, /^Server Overloaded/);
    assert.equal(second.headers.get("retry-after"), "1");
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    assert.ok(text.endsWith("data: [DONE]\n\n"));
  });

  test("401 without the right key; /health stays open; x-api-key works too", async () => {
    const keyed = await serve(server.engine, { apiKeys: [makeKey("sk-good")] });
    try {
      for (const headers of [{}, { authorization: "Bearer sk-bad" }, { authorization: "sk-good" }] as Record<string, string>[]) {
        const r = await postJson(`${keyed.url}/chat/completions`, base, headers);
        assert.equal(r.status, 401);
        assert.deepEqual(r.json.error, { message: "Authentication Fails (no such user)", type: "authentication_error", param: "authorization", code: "invalid_request_error" });
      }
      assert.equal((await fetch(`${keyed.url}/models`)).status, 401);
      assert.equal((await fetch(`${keyed.url}/health`)).status, 200);
      assert.equal((await postJson(`${keyed.url}/chat/completions`, base, { authorization: "Bearer sk-good" })).status, 200);
      assert.equal((await fetch(`${keyed.url}/models`, { headers: { "x-api-key": "sk-good" } })).status, 200);
    } finally {
      await keyed.app.close();
    }
  });

  test("402 when a request's worst-case cost does not fit the key's budget", async () => {
    const keyed = await serve(server.engine, { apiKeys: [makeKey("sk-poor", 0)] });
    try {
      const auth = { authorization: "Bearer sk-poor" };
      const r = await postJson(`${keyed.url}/chat/completions`, base, auth);
      assert.equal(r.status, 402);
      assert.deepEqual(r.json.error, { message: "Insufficient Balance", type: "unknown_error", param: "authorization", code: "invalid_request_error" });
      const balance = (await (await fetch(`${keyed.url}/user/balance`, { headers: auth })).json()) as { is_available: boolean };
      assert.equal(balance.is_available, false);
    } finally {
      await keyed.app.close();
    }
  });

  test("429 beyond the concurrent-request limit", async () => {
    const limited = await serve(server.engine, { maxConcurrentRequests: 1, keepAliveMs: 0 });
    try {
      const slow = fetch(`${limited.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...base, max_tokens: 8 }) });
      await waitFor(() => server.engine.metrics().active_sequences + server.engine.metrics().queued_requests > 0, 5000, "the first request to start");
      const r = await postJson(`${limited.url}/chat/completions`, base);
      assert.equal(r.status, 429);
      assert.equal(r.json.error.type, "rate_limit_error");
      assert.equal((await slow).status, 200);
      assert.equal((await postJson(`${limited.url}/chat/completions`, base)).status, 200);
    } finally {
      await limited.app.close();
    }
  });

  test("413 above the body limit", async () => {
    const small = await serve(server.engine, { bodyLimit: 1024 });
    try {
      const r = await postJson(`${small.url}/chat/completions`, { ...base, messages: [user("x".repeat(2000))] });
      assert.equal(r.status, 413);
      assert.equal(r.json.error.param, "body");
    } finally {
      await small.app.close();
    }
  });

  test("Anthropic errors use Anthropic's envelope and name the field", async () => {
    const r = await postJson(`${server.url}/anthropic/v1/messages`, { model: "claude-sonnet-4-5", max_tokens: 0, messages: [user("x")] });
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { type: "error", error: { type: "invalid_request_error", message: "max_tokens: Invalid max_tokens value, the valid range of max_tokens is [1, 393216]" } });
    const bad = await postJson(`${server.url}/anthropic/v1/messages`, { model: "claude-sonnet-4-5", max_tokens: 1, messages: [{ role: "user", content: [{ type: "image", source: {} }] }] });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /^messages\[0\]\.content\[0\]\.type: /);
  });

  test("random and malformed bodies never crash the server or disturb a concurrent request", async () => {
    const seeded = { ...base, max_tokens: 3, seed: 9, thinking: { type: "disabled" } };
    const alone = (await postJson(`${server.url}/chat/completions`, seeded)).json.choices[0].message.content;
    let state = 12345;
    const rand = () => ((state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const values = [null, true, 0, -1, 1.5, 1e308, "", "x", [], {}, [1], { type: null }, "\u0000", "💥".repeat(3), [{ role: "user" }]];
    const fields = ["model", "messages", "thinking", "max_tokens", "stop", "tools", "tool_choice", "logprobs", "top_logprobs", "stream", "temperature", "response_format", "user_id", "n"];
    const bodies: unknown[] = [];
    for (let i = 0; i < 60; i++) {
      const body: Record<string, unknown> = { ...base };
      for (let k = 0; k < 3; k++) body[fields[Math.floor(rand() * fields.length)]!] = values[Math.floor(rand() * values.length)];
      bodies.push(body);
    }
    const good = postJson(`${server.url}/beta/chat/completions`, seeded);
    const paths = ["/chat/completions", "/beta/completions", "/anthropic/v1/messages"];
    const results = await Promise.all(bodies.map((b, i) => postJson(server.url + paths[i % paths.length], b)));
    for (const r of results) {
      assert.ok(r.status < 500 || r.status === 503, `status ${r.status}: ${r.text}`);
      if (r.status >= 400 && r.json?.error?.param !== undefined) assert.ok(r.json.error.param !== null || r.status === 503, r.text);
    }
    const g = await good;
    assert.equal(g.status, 200, g.text);
    assert.equal(g.json.choices[0].message.content, alone);
    await waitFor(() => server.engine.metrics().active_sequences === 0, 10_000, "every sequence to be freed");
  });
});

describe("server errors", () => {
  test("500 for an engine failure before the response, an SSE error event after it", async () => {
    const engine = new ScriptedEngine((req) =>
      req.max_tokens === 1 ? { pieces: [], refuse: new Error("kernel exploded") } : { pieces: ["a", "b", "c"], failAfter: { tokens: 2, error: new Error("kernel exploded") } },
    );
    const server = await serve(engine);
    try {
      const r = await postJson(`${server.url}/chat/completions`, base);
      assert.equal(r.status, 500);
      assert.deepEqual(r.json.error, { message: "Server Error", type: "server_error", param: null, code: "internal_error" }, "no internals leak");
      const s = await postJson(`${server.url}/chat/completions`, { ...base, max_tokens: 5, stream: true });
      assert.equal(s.status, 200);
      const events = sseData(s.text);
      assert.deepEqual(JSON.parse(events[events.length - 1]!), { error: { message: "Server Error", type: "server_error", param: null, code: "internal_error" } });
      assert.ok(!s.text.includes("[DONE]"));
    } finally {
      await server.close();
    }
  });
});
