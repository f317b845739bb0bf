/**
 * Lenient by default, exact on request: what the hosted service refuses for
 * its own reasons is served, schema keywords dsv4 cannot enforce are refused
 * by name and path only where strictness is asked for.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MODEL, postJson, realServer, serve, type TestServer } from "./helpers.js";

const CALL_ID = "call_00_abcdefghijklmnopqrstuvwx";
const weather = { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false };
const toolLoop = (reasoning: string | undefined) => [
  { role: "user", content: "Weather in Paris?" },
  { role: "assistant", content: "", ...(reasoning === undefined ? {} : { reasoning_content: reasoning }), tool_calls: [{ id: CALL_ID, type: "function", function: { name: "get_weather", arguments: '{"city": "Paris"}' } }] },
  { role: "tool", tool_call_id: CALL_ID, content: "sunny" },
];

describe("lenient API (default) and --strict-api", () => {
  let server: TestServer;
  let hosted: TestServer;
  before(async () => {
    server = await realServer();
    hosted = await serve(server.engine, { strictApi: true });
  });
  after(async () => {
    await hosted.close();
    await server.close();
  });
  const chat = (s: TestServer, body: Record<string, unknown>, path = "/chat/completions") => postJson(s.url + path, { model: MODEL, max_tokens: 2, ...body });
  const tools = [{ type: "function", function: { name: "get_weather", parameters: weather } }];

  test("a thinking-mode tool-call turn without reasoning_content is encoded as if it were empty", async () => {
    const missing = await chat(server, { messages: toolLoop(undefined), tools });
    const empty = await chat(server, { messages: toolLoop(""), tools });
    assert.equal(missing.status, 200, missing.text);
    assert.equal(missing.json.usage.prompt_tokens, empty.json.usage.prompt_tokens);
  });

  test("--strict-api refuses that turn with the hosted service's message", async () => {
    const r = await chat(hosted, { messages: toolLoop(undefined), tools });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.message, "The reasoning_content in the thinking mode must be passed back to the API.");
  });

  test("strict tools work on the main path by default, and need /beta under --strict-api", async () => {
    const strict = [{ type: "function", function: { name: "get_weather", parameters: weather, strict: true } }];
    const body = { messages: [{ role: "user", content: "Weather?" }], tools: strict, tool_choice: "required", thinking: { type: "disabled" }, max_tokens: 60 };
    const r = await chat(server, body);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].finish_reason, "tool_calls");
    assert.equal(typeof JSON.parse(r.json.choices[0].message.tool_calls[0].function.arguments).city, "string");
    assert.equal((await chat(hosted, body)).json.error.param, "tools");
    assert.equal((await chat(hosted, body, "/beta/chat/completions")).status, 200);
  });

  test("a strict tool with a keyword dsv4 cannot enforce is a 400 naming it and its path", async () => {
    const params = { type: "object", properties: { city: { type: "string", pattern: "^[A-Z]" } }, required: ["city"] };
    const r = await chat(server, { messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f", parameters: params, strict: true } }] });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, "tools[0].function.parameters.properties.city.pattern");
    assert.match(r.json.error.message, /"pattern" is not supported/);
  });

  test("a forced call to a non-strict tool ignores what it cannot enforce and still follows the rest", async () => {
    const params = { type: "object", properties: { city: { type: "string", pattern: "^[A-Z]" } }, required: ["city"] };
    const r = await chat(server, { messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f", parameters: params } }], tool_choice: "required", thinking: { type: "disabled" }, max_tokens: 60 });
    assert.equal(r.status, 200, r.text);
    assert.ok("city" in JSON.parse(r.json.choices[0].message.tool_calls[0].function.arguments));
  });

  test("json_schema with strict: true refuses unsupported keywords by path", async () => {
    const schema = { type: "object", properties: { n: { type: "integer", not: { const: 3 } } } };
    const r = await chat(server, { messages: [{ role: "user", content: "x" }], response_format: { type: "json_schema", json_schema: { name: "x", schema, strict: true } } });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, "response_format.json_schema.schema.properties.n.not");
  });

  test("json_schema: a max_tokens too small for the shortest valid value is a 400 naming max_tokens", async () => {
    const schema = { type: "object", properties: { name: { type: "string", minLength: 40 } }, required: ["name"], additionalProperties: false };
    const r = await chat(server, { messages: [{ role: "user", content: "x" }], response_format: { type: "json_schema", json_schema: { name: "x", schema, strict: true } }, max_tokens: 20 });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, "max_tokens");
  });
});
