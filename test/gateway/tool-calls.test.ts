/**
 * Tool calls through the gateway are parsed as `dsv4 serve` parses them: a replica whose model is
 * forced (logitsProcessor test hook) to write reasoning and a DSML call, asked directly and through
 * the gateway; and tool_choice, which a dsv4 upstream enforces while decoding.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { Engine } from "../../src/engine/engine.js";
import type { RunningGateway } from "../../src/gateway/index.js";
import { TOOL_CALL_ID_PATTERN } from "../../src/text/tool-call-id.js";
import { defaultModel, forceScript, serve, type TestServer } from "../server/helpers.js";
import { toolCallPieces } from "../server/scripted-engine.js";
import { gatewayOver, MODEL } from "./helpers.js";

/** A response without what differs per request (ids, times, fingerprints). */
function comparable(r: any) {
  const message = { ...r.choices[0].message };
  if (message.tool_calls) {
    for (const c of message.tool_calls) assert.match(c.id, TOOL_CALL_ID_PATTERN);
    message.tool_calls = message.tool_calls.map(({ id: _id, ...rest }: any) => rest);
  }
  // The second of two equal prompts hits the first one's cache, whichever path came first.
  const { prompt_tokens, completion_tokens, completion_tokens_details } = r.usage;
  return { message, finish: r.choices[0].finish_reason, usage: { prompt_tokens, completion_tokens, completion_tokens_details } };
}

const tools = [{ type: "function" as const, function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } } } } }];

describe("tool calls through the gateway", () => {
  let replica: TestServer;
  let gw: RunningGateway;
  let direct: OpenAI;
  let via: OpenAI;
  let script: number[] = [];
  before(async () => {
    const engine = await Engine.load(await defaultModel(), {
      speculative: { enabled: false },
      logitsProcessor: forceScript(() => script),
    });
    replica = await serve(engine, {}, () => engine.dispose());
    gw = await gatewayOver([replica]);
    direct = new OpenAI({ baseURL: replica.url, apiKey: "unused", maxRetries: 0 });
    via = new OpenAI({ baseURL: gw.url, apiKey: "unused", maxRetries: 0 });
    script = engine.tokenizer!.encode(["Need weather.", "</think>", ...toolCallPieces([{ name: "get_weather", args: { city: "Paris", days: 2 } }])].join(""));
  });
  after(async () => {
    await gw.close();
    await replica.close();
  });

  test("non-streamed: the same reasoning, tool call, finish and usage as the replica's own answer", async () => {
    const body = { model: MODEL, messages: [{ role: "user" as const, content: "Weather?" }], tools };
    const a = comparable(await direct.chat.completions.create(body));
    const b = comparable(await via.chat.completions.create(body));
    assert.deepEqual(b, a);
    assert.equal(b.finish, "tool_calls");
    assert.equal(b.message.tool_calls[0].function.arguments, '{"city": "Paris", "days": 2}');
  });

  test("streamed: the call's fragments assemble to the same call", async () => {
    const stream = await via.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "Weather?" }], tools, stream: true });
    let name = "";
    let args = "";
    let finish = "";
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (!c) continue;
      for (const t of c.delta.tool_calls ?? []) {
        name += t.function?.name ?? "";
        args += t.function?.arguments ?? "";
      }
      finish = c.finish_reason ?? finish;
    }
    assert.equal(name, "get_weather");
    assert.deepEqual(JSON.parse(args), { city: "Paris", days: 2 });
    assert.equal(finish, "tool_calls");
  });

  test("a named tool_choice is enforced by the dsv4 upstream as by serve itself", async () => {
    const saved = script;
    script = []; // the model writes freely: only the constraint can make it call the tool
    try {
      const body = { model: MODEL, messages: [{ role: "user" as const, content: "Anything" }], tools, tool_choice: { type: "function" as const, function: { name: "get_weather" } }, thinking: { type: "disabled" }, max_tokens: 40, seed: 5 } as any;
      const a = comparable(await direct.chat.completions.create(body));
      const b = comparable(await via.chat.completions.create(body));
      assert.deepEqual(b, a);
      assert.equal(b.message.tool_calls?.[0]?.function.name, "get_weather");
    } finally {
      script = saved;
    }
  });
});
