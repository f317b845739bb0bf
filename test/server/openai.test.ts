/** The official `openai` npm client against the real server and the tiny default model. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { TOOL_CALL_ID_PATTERN } from "../../src/text/tool-call-id.js";
import { MODEL, realServer, serve, type TestServer } from "./helpers.js";
import { ScriptedEngine, toolCallPieces } from "./scripted-engine.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const messages = [{ role: "user" as const, content: "Say hello." }];

interface Collected {
  reasoning: string;
  content: string;
  finish: string | null;
  usage: any;
  chunks: any[];
  logprobs: { content: any[]; reasoning: any[] };
}

async function collect(stream: AsyncIterable<any>): Promise<Collected> {
  const out: Collected = { reasoning: "", content: "", finish: null, usage: null, chunks: [], logprobs: { content: [], reasoning: [] } };
  for await (const chunk of stream) {
    out.chunks.push(chunk);
    if (chunk.usage) out.usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    out.reasoning += choice.delta.reasoning_content ?? "";
    out.content += choice.delta.content ?? "";
    if (choice.finish_reason) out.finish = choice.finish_reason;
    out.logprobs.content.push(...(choice.logprobs?.content ?? []));
    out.logprobs.reasoning.push(...(choice.logprobs?.reasoning_content ?? []));
  }
  return out;
}

describe("openai client, real engine", () => {
  let server: TestServer;
  let client: OpenAI;
  before(async () => {
    server = await realServer();
    client = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  test("a non-streamed chat completion has DeepSeek's fields", async () => {
    const r: any = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 4, seed: 11 } as any);
    assert.match(r.id, UUID);
    assert.equal(r.object, "chat.completion");
    assert.equal(r.model, MODEL);
    assert.match(r.system_fingerprint, /^fp_[0-9a-f]{10}_dsv4$/);
    assert.ok(Math.abs(r.created - Date.now() / 1000) < 60);
    const choice = r.choices[0];
    assert.equal(choice.index, 0);
    assert.equal(choice.message.role, "assistant");
    assert.equal(typeof choice.message.content, "string");
    assert.equal(typeof choice.message.reasoning_content, "string", "thinking is on by default");
    assert.equal(choice.logprobs, null);
    assert.ok(["stop", "length"].includes(choice.finish_reason));
    const u = r.usage;
    assert.equal(u.prompt_tokens, u.prompt_cache_hit_tokens + u.prompt_cache_miss_tokens);
    assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    assert.equal(u.prompt_tokens_details.cached_tokens, u.prompt_cache_hit_tokens);
    assert.ok(u.completion_tokens >= 1 && u.completion_tokens <= 4);
    assert.ok(u.completion_tokens_details.reasoning_tokens <= u.completion_tokens);
    const cost = (u.prompt_cache_hit_tokens * 0.0028 + u.prompt_cache_miss_tokens * 0.14 + u.completion_tokens * 0.28) / 1e6;
    assert.ok(Math.abs(u.cost - cost) < 1e-12, `cost ${u.cost} vs ${cost}`);
  });

  for (const thinking of ["enabled", "disabled"] as const) {
    test(`streamed deltas concatenated equal the non-streamed answer for the same seed (thinking ${thinking})`, async () => {
      const body = { model: MODEL, messages, max_tokens: 6, seed: 1234, thinking: { type: thinking } } as any;
      const whole: any = await client.chat.completions.create(body);
      const streamed = await collect((await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } })) as any);
      const m = whole.choices[0].message;
      assert.equal(streamed.content, m.content);
      assert.equal(thinking === "enabled" ? streamed.reasoning : (m.reasoning_content ?? ""), m.reasoning_content ?? "");
      assert.equal(streamed.finish, whole.choices[0].finish_reason);
      assert.equal(streamed.usage.completion_tokens, whole.usage.completion_tokens);
      assert.equal(streamed.usage.prompt_tokens, whole.usage.prompt_tokens);
      // Wire format (spec §A.6): first chunk, shared identity, usage on the finish chunk and the extra usage chunk.
      const [first, ...rest] = streamed.chunks;
      assert.deepEqual(first.choices[0].delta, thinking === "enabled" ? { role: "assistant", content: null, reasoning_content: "" } : { role: "assistant", content: "" });
      assert.equal(first.usage, null);
      for (const c of streamed.chunks) {
        assert.equal(c.id, first.id);
        assert.equal(c.object, "chat.completion.chunk");
        assert.equal(c.system_fingerprint, first.system_fingerprint);
      }
      const last = rest[rest.length - 1];
      assert.deepEqual(last.choices, []);
      const finish = rest[rest.length - 2];
      assert.ok(finish.choices[0].finish_reason);
      assert.deepEqual(finish.usage, last.usage);
      if (thinking === "disabled") assert.equal(whole.choices[0].message.reasoning_content, undefined);
    });
  }

  test("logprobs: per token, split into content and reasoning, the same streamed and not", async () => {
    const body = { model: MODEL, messages, max_tokens: 4, seed: 5, logprobs: true, top_logprobs: 3, thinking: { type: "disabled" } } as any;
    const whole: any = await client.chat.completions.create(body);
    const lp = whole.choices[0].logprobs;
    assert.equal(lp.content.length, whole.usage.completion_tokens);
    for (const t of lp.content) {
      assert.equal(typeof t.token, "string");
      assert.ok(t.logprob <= 0);
      assert.ok(Array.isArray(t.bytes));
      assert.equal(t.top_logprobs.length, 3);
    }
    const streamed = await collect((await client.chat.completions.create({ ...body, stream: true })) as any);
    assert.deepEqual(streamed.logprobs.content, lp.content);

    const thinkingRun: any = await client.chat.completions.create({ ...body, thinking: { type: "enabled" } });
    const tl = thinkingRun.choices[0].logprobs;
    const n = (tl.content?.length ?? 0) + (tl.reasoning_content?.length ?? 0);
    assert.equal(n, thinkingRun.usage.completion_tokens);
    assert.equal(tl.reasoning_content.length, thinkingRun.usage.completion_tokens_details.reasoning_tokens);
  });

  test("tools, tool_choice and a tool-call history are accepted by the real model", async () => {
    const tools = [{ type: "function" as const, function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
    const r: any = await client.chat.completions.create({
      model: MODEL,
      max_tokens: 2,
      tools,
      tool_choice: "auto",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: "", reasoning_content: "I should call it.", tool_calls: [{ id: "call_00_abcdefghijklmnopqrstuvwx", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] } as any,
        { role: "tool", tool_call_id: "call_00_abcdefghijklmnopqrstuvwx", content: "sunny" },
      ],
    });
    assert.ok(r.usage.prompt_tokens > 40, "tool schemas are rendered into the prompt");
  });

  test("models.list and models.retrieve", async () => {
    const list = await client.models.list();
    assert.deepEqual(list.data.map((m) => m.id), [MODEL]);
    assert.deepEqual(await client.models.retrieve(MODEL), { id: MODEL, object: "model", owned_by: "deepseek" });
    await assert.rejects(client.models.retrieve("gpt-4o"), (e: any) => e.status === 400 && /Model Not Exist/.test(e.message));
  });

  test("errors surface as the SDK's typed errors", async () => {
    await assert.rejects(client.chat.completions.create({ model: "deepseek-chat", messages, max_tokens: 1 }), (e: any) => e instanceof OpenAI.BadRequestError && (e as { error?: { message?: string } }).error?.message === "Model Not Exist");
    await assert.rejects(
      client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: 42 as any }], max_tokens: 1 }),
      (e: any) => e instanceof OpenAI.UnprocessableEntityError && e.param === "messages[0].content",
    );
  });

  test("FIM and chat prefix completion under /beta", async () => {
    const beta = new OpenAI({ baseURL: `${server.url}/beta`, apiKey: "unused", maxRetries: 0 });
    const fim: any = await beta.completions.create({ model: MODEL, prompt: "def add(a, b):\n", suffix: "\n    return c", max_tokens: 3, seed: 2 } as any);
    assert.equal(fim.object, "text_completion");
    assert.equal(typeof fim.choices[0].text, "string");
    assert.ok(fim.usage.completion_tokens >= 1);
    const prefix: any = await beta.chat.completions.create({
      model: MODEL,
      max_tokens: 2,
      thinking: { type: "disabled" },
      messages: [{ role: "user", content: "Write code" }, { role: "assistant", content: "```python\n", prefix: true }],
    } as any);
    assert.equal(prefix.choices[0].message.role, "assistant");
    assert.ok(!prefix.choices[0].message.content.startsWith("```python"), "only the continuation is returned");
  });
});

describe("openai client, scripted tool calls", () => {
  let server: TestServer;
  let engine: ScriptedEngine;
  let client: OpenAI;
  const calls = [
    { name: "get_weather", args: { location: "Hangzhou", days: 2 } },
    { name: "get_time", args: { zone: "Asia/Shanghai" } },
  ];
  before(async () => {
    engine = new ScriptedEngine(() => ({ pieces: ["Let me", " check.", "</think>", ...toolCallPieces(calls)] }));
    server = await serve(engine);
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  const tools = ["get_weather", "get_time"].map((name) => ({ type: "function" as const, function: { name, parameters: { type: "object", properties: {} } } }));

  test("parallel tool calls, non-streamed", async () => {
    const r: any = await client.chat.completions.create({ model: MODEL, messages, tools });
    const m = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, "tool_calls");
    assert.equal(m.reasoning_content, "Let me check.");
    assert.equal(m.content, "");
    assert.equal(m.tool_calls.length, 2);
    m.tool_calls.forEach((c: any, i: number) => {
      assert.equal(c.index, i);
      assert.match(c.id, TOOL_CALL_ID_PATTERN);
      assert.ok(c.id.startsWith(`call_0${i}_`));
      assert.equal(c.type, "function");
      assert.equal(c.function.name, calls[i]!.name);
      assert.deepEqual(JSON.parse(c.function.arguments), calls[i]!.args);
    });
    assert.equal(m.tool_calls[0].function.arguments, '{"location": "Hangzhou", "days": 2}', "DeepSeek's separators");
  });

  test("streamed tool calls: first fragment has id, type and name, then argument pieces", async () => {
    const streamed = await collect(await client.chat.completions.create({ model: MODEL, messages, tools, stream: true }));
    const fragments = streamed.chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    const byIndex = new Map<number, { id: string; name: string; args: string }>();
    for (const f of fragments) {
      if (f.id) {
        assert.equal(f.type, "function");
        assert.equal(f.function.arguments, "");
        byIndex.set(f.index, { id: f.id, name: f.function.name, args: "" });
      } else {
        assert.equal(f.function.name, undefined);
        byIndex.get(f.index)!.args += f.function.arguments;
      }
    }
    assert.equal(byIndex.size, 2);
    assert.deepEqual(JSON.parse(byIndex.get(0)!.args), calls[0]!.args);
    assert.deepEqual(JSON.parse(byIndex.get(1)!.args), calls[1]!.args);
    assert.equal(streamed.finish, "tool_calls");
    assert.equal(streamed.reasoning, "Let me check.");
    // The SDK's own accumulator agrees.
    const final = await client.chat.completions.stream({ model: MODEL, messages, tools }).finalChatCompletion();
    assert.deepEqual(final.choices[0]!.message.tool_calls!.map((c: any) => JSON.parse(c.function.arguments)), calls.map((c) => c.args));
  });
});
