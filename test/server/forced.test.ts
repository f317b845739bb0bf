/**
 * Tool calls from the real engine: the engine's logitsProcessor test hook
 * forces the random-weight model to write a token script (reasoning, then a
 * DSML tool call), so the whole path model → parser → server → client runs.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { Engine } from "../../src/engine/engine.js";
import { TOOL_CALL_ID_PATTERN } from "../../src/text/tool-call-id.js";
import { defaultModel, forceScript, MODEL, serve, type TestServer } from "./helpers.js";
import { toolCallPieces } from "./scripted-engine.js";

describe("real engine, forced tool-call script", () => {
  let server: TestServer;
  let client: OpenAI;
  let script: number[] = [];
  before(async () => {
    const engine = await Engine.load(await defaultModel(), {
      speculative: { enabled: false },
      logitsProcessor: forceScript(() => script),
    });
    const tok = engine.tokenizer!;
    script = tok.encode(["Need weather.", "</think>", ...toolCallPieces([{ name: "get_weather", args: { city: "Paris", days: 2 } }])].join(""));
    server = await serve(engine, {}, () => engine.dispose());
    client = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  const tools = [{ type: "function" as const, function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } } } } }];
  const body = { model: MODEL, messages: [{ role: "user" as const, content: "Weather?" }], tools, logprobs: true };

  test("non-streamed: reasoning, a parsed tool call, finish_reason tool_calls, usage and logprobs", async () => {
    const r: any = await client.chat.completions.create(body);
    const m = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, "tool_calls");
    assert.equal(m.reasoning_content, "Need weather.");
    assert.equal(m.content, "");
    assert.equal(m.tool_calls.length, 1);
    assert.match(m.tool_calls[0].id, TOOL_CALL_ID_PATTERN);
    assert.equal(m.tool_calls[0].function.name, "get_weather");
    assert.equal(m.tool_calls[0].function.arguments, '{"city": "Paris", "days": 2}');
    assert.equal(r.usage.completion_tokens, script.length - 1, "EOS ends generation without being an output token");
    assert.ok(r.usage.completion_tokens_details.reasoning_tokens >= 3);
    const lp = r.choices[0].logprobs;
    assert.equal((lp.content?.length ?? 0) + (lp.reasoning_content?.length ?? 0), r.usage.completion_tokens);
  });

  test("streamed: the same call, assembled from fragments", async () => {
    const stream: any = await client.chat.completions.create({ ...body, stream: true });
    let reasoning = "";
    let name = "";
    let args = "";
    let finish = "";
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (!c) continue;
      reasoning += c.delta.reasoning_content ?? "";
      for (const t of c.delta.tool_calls ?? []) {
        name += t.function?.name ?? "";
        args += t.function?.arguments ?? "";
      }
      finish = c.finish_reason ?? finish;
    }
    assert.equal(reasoning, "Need weather.");
    assert.equal(name, "get_weather");
    assert.deepEqual(JSON.parse(args), { city: "Paris", days: 2 });
    assert.equal(finish, "tool_calls");
  });
});
