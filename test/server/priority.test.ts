/**
 * vLLM's `priority` request field through dsv4 serve: refused, naming the switch, unless the
 * engine schedules by priority (--scheduling-policy priority); then the clients' extra body
 * field reaches the scheduler (test/engine/scheduler.test.ts pins the order it makes).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { MODEL, postJson as post, realServer, type TestServer } from "./helpers.js";

describe("priority under the default fcfs policy", () => {
  let server: TestServer;
  before(async () => {
    server = await realServer();
  });
  after(() => server.close());

  test("a chat, FIM or Responses request with a priority is a 400 naming the field and the switch", async () => {
    for (const [path, body] of [
      ["/v1/responses", { model: MODEL, input: "Hi", max_output_tokens: 2, priority: 1 }],
      ["/chat/completions", { model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 2, priority: 2 }],
      ["/beta/completions", { model: MODEL, prompt: "def f():", max_tokens: 2, priority: -1 }],
    ] as const) {
      const r = await post(`${server.url}${path}`, body);
      assert.equal(r.status, 400, path);
      assert.equal(r.json.error.param, "priority");
      assert.match(r.json.error.message, /--scheduling-policy priority/);
    }
    assert.equal((await post(`${server.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 2, priority: 0 })).status, 200);
  });
});

describe("priority under --scheduling-policy priority", () => {
  let server: TestServer;
  before(async () => {
    server = await realServer({ schedulingPolicy: "priority" });
  });
  after(() => server.close());

  test("the openai client's extra body field is accepted, on chat, FIM and Responses", async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 3, priority: -5 } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    assert.equal(chat.usage!.completion_tokens, 3);
    const fim = await post(`${server.url}/beta/completions`, { model: MODEL, prompt: "def f():", max_tokens: 2, priority: 7 });
    assert.equal(fim.status, 200);
    const responses = await client.responses.create({ model: MODEL, input: "Hi", max_output_tokens: 2, priority: 1 } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    assert.equal(responses.status, "incomplete");
    const wrong = await post(`${server.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "Hi" }], priority: "high" });
    assert.equal(wrong.status, 422);
    assert.equal(wrong.json.error.param, "priority");
  });
});
