/** POST /generate on `dsv4 serve`: token ids in, token ids out, in SGLang's shape. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MODEL, postJson, replicas, sseData } from "./helpers.js";
import type { TestServer } from "../server/helpers.js";

describe("dsv4 serve: /generate", () => {
  let server: TestServer;
  let prompt: number[];
  before(async () => {
    [server] = await replicas(1);
    prompt = server.engine.promptTokens({ messages: [{ role: "user", content: "Count to three." }], thinking: { type: "disabled" } });
  });
  after(() => server.close());

  const body = (extra: object = {}) => ({ input_ids: prompt, sampling_params: { max_new_tokens: 6, temperature: 1, sampling_seed: 5 }, ...extra });

  test("non-streamed: the ids the chat route generates for the same prompt and seed, with meta_info", async () => {
    const r = await postJson(`${server.url}/generate`, body());
    assert.equal(r.status, 200);
    assert.equal(r.json.output_ids.length, 6);
    assert.deepEqual(r.json.meta_info.finish_reason, { type: "length", length: 6 });
    assert.equal(r.json.meta_info.prompt_tokens, prompt.length);
    assert.equal(r.json.meta_info.completion_tokens, 6);
    assert.equal(typeof r.json.meta_info.cached_tokens, "number");
    const chat = await server.engine.generate({ prompt_tokens: prompt, max_tokens: 6, seed: 5 }).result();
    assert.deepEqual(r.json.output_ids, chat.tokens);
  });

  test("a text instead of input_ids (SGLang's bench_serving default): the same as its tokens", async () => {
    const text = "The quick brown fox";
    const viaText = await postJson(`${server.url}/generate`, { text, sampling_params: { max_new_tokens: 4, temperature: 1, sampling_seed: 5 } });
    assert.equal(viaText.status, 200, viaText.text);
    const viaIds = await postJson(`${server.url}/generate`, { input_ids: server.engine.tokenize(text), sampling_params: { max_new_tokens: 4, temperature: 1, sampling_seed: 5 } });
    assert.deepEqual(viaText.json.output_ids, viaIds.json.output_ids);
    assert.equal(viaText.json.meta_info.prompt_tokens, server.engine.tokenize(text).length);
    const empty = await postJson(`${server.url}/generate`, { text: "", sampling_params: { max_new_tokens: 4 } });
    assert.equal(empty.status, 400);
    assert.equal(empty.json.error.param, "text");
  });

  test("streamed: new ids per chunk, running completion_tokens, the last id with the finish, then [DONE]", async () => {
    const res = await fetch(`${server.url}/generate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body({ stream: true })) });
    const data = sseData(await res.text());
    assert.equal(data.at(-1), "[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    const ids = chunks.flatMap((c) => c.output_ids);
    const whole = await postJson(`${server.url}/generate`, body());
    assert.deepEqual(ids, whole.json.output_ids);
    // One chunk per id; the id that reaches max_new_tokens shares its chunk with the finish.
    assert.deepEqual(chunks.map((c) => c.meta_info.completion_tokens), [1, 2, 3, 4, 5, 6]);
    assert.equal(chunks.at(-1).output_ids.length, 1);
    assert.deepEqual(chunks.at(-1).meta_info.finish_reason, { type: "length", length: 6 });
    assert.ok(chunks.slice(0, -1).every((c) => c.meta_info.finish_reason === null && c.meta_info.e2e_latency === undefined));
  });

  test("the finish carries the engine's time: meta_info.e2e_latency in seconds, and Server-Timing on a whole answer", async () => {
    const res = await fetch(`${server.url}/generate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body()) });
    const json = (await res.json()) as { meta_info: { e2e_latency: number } };
    const timing = /^engine;dur=([\d.]+)$/.exec(res.headers.get("server-timing") ?? "");
    assert.ok(timing, `server-timing: ${res.headers.get("server-timing")}`);
    assert.ok(json.meta_info.e2e_latency > 0 && json.meta_info.e2e_latency < 60);
    assert.equal(Number(timing[1]), Number((json.meta_info.e2e_latency * 1000).toFixed(3)));
    const streamed = sseData(await (await fetch(`${server.url}/generate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body({ stream: true })) })).text());
    assert.ok(JSON.parse(streamed.at(-2)!).meta_info.e2e_latency > 0);
  });

  test("a bad token id is a 400 naming the field", async () => {
    const r = await postJson(`${server.url}/generate`, { input_ids: [0, -1] });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, "prompt_tokens");
  });

  test("prompt_tokens_mode thinking parses the output as reasoning: a tool_choice is enforced as in a chat request", async () => {
    const tools = [{ type: "function", function: { name: "get_time", parameters: { type: "object", properties: {} } } }];
    const messages = [{ role: "user" as const, content: "Time?" }];
    const ids = server.engine.promptTokens({ messages, tools, thinking: { type: "disabled" } });
    const r = await postJson(`${server.url}/generate`, {
      input_ids: ids,
      sampling_params: { max_new_tokens: 60, sampling_seed: 1 },
      dsv4: { prompt_tokens_mode: { thinking: false }, tools, tool_choice: { type: "function", function: { name: "get_time" } } },
    });
    assert.equal(r.status, 200);
    const chat = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages, tools, tool_choice: { type: "function", function: { name: "get_time" } }, thinking: { type: "disabled" }, max_tokens: 60, seed: 1 });
    assert.equal(chat.json.choices[0].message.tool_calls?.[0]?.function.name, "get_time");
    assert.equal(r.json.output_ids.length, chat.json.usage.completion_tokens);
  });
});
