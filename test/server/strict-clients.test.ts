/**
 * Forced and strict tool calls and json_schema answers through the real
 * clients, against the default model (random weights): every request must end
 * with a call (or an object) that validates against its schema, with the
 * client's finish reason for it. The suite runs a seeded sample per client;
 * DSV4_STRICT_CLIENT_RUNS=N runs N requests per client (the 200+).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { createDeepSeek } from "@ai-sdk/deepseek";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateObject, generateText, jsonSchema, tool } from "ai";
import { Ajv } from "ajv";
import OpenAI from "openai";
import { z } from "zod";
import { MODEL, realServer, type TestServer } from "./helpers.js";

const RUNS = Number(process.env.DSV4_STRICT_CLIENT_RUNS ?? 6);

const weather = {
  type: "object",
  properties: {
    city: { type: "string", description: "City name", minLength: 1, maxLength: 24 },
    days: { type: "integer" },
    units: { enum: ["celsius", "fahrenheit"] },
  },
  required: ["city", "days"],
  additionalProperties: false,
};
const search = {
  $schema: "http://json-schema.org/draft-07/schema#",
  type: "object",
  properties: {
    query: { type: "string", title: "Query", maxLength: 16 },
    filters: {
      type: "object",
      properties: { lang: { type: "string", enum: ["en", "fr", "de"] }, limit: { type: ["integer", "null"] }, exact: { type: "boolean" } },
      required: ["lang", "limit"],
      additionalProperties: false,
    },
    tags: { type: "array", items: { type: "string", maxLength: 6 }, minItems: 1, maxItems: 2 },
  },
  required: ["query", "filters", "tags"],
  additionalProperties: false,
};
/** Nested objects, arrays, anyOf, a recursive $ref. */
const person = {
  type: "object",
  properties: {
    name: { type: "string", minLength: 1, maxLength: 12 },
    age: { type: "integer" },
    address: { type: "object", properties: { city: { type: "string", maxLength: 10 }, zip: { anyOf: [{ type: "string", maxLength: 5 }, { type: "null" }] } }, required: ["city", "zip"], additionalProperties: false },
    skills: { type: "array", items: { $ref: "#/$defs/skill" }, maxItems: 2 },
  },
  required: ["name", "age", "address", "skills"],
  additionalProperties: false,
  $defs: {
    skill: { type: "object", properties: { label: { type: "string", maxLength: 8 }, level: { enum: [1, 2, 3] }, sub: { anyOf: [{ $ref: "#/$defs/skill" }, { type: "null" }] } }, required: ["label", "level", "sub"], additionalProperties: false },
  },
};

const ajv = new Ajv({ strict: false });
const valid = { get_weather: ajv.compile(weather), search: ajv.compile(search), person: ajv.compile(person) };
function check(name: keyof typeof valid, value: unknown, context: string): void {
  const v = valid[name];
  assert.ok(v(value), `${context}: ${JSON.stringify(value)} fails ${name}: ${ajv.errorsText(v.errors)}`);
}

/** The request variants: which tool is forced (or the schema answer), thinking, seed. */
interface Variant {
  kind: "required" | "named" | "object";
  thinking: boolean;
  seed: number;
  strict: boolean;
}
function variants(n: number, offset: number): Variant[] {
  const out: Variant[] = [];
  for (let i = 0; i < n; i++) {
    const kind = (["required", "named", "object"] as const)[i % 3]!;
    out.push({ kind, thinking: i % 2 === 0, seed: offset + i, strict: i % 4 < 2 });
  }
  return out;
}
/** Enough tokens for the reasoning share and a call whose free strings the budget closes. */
const MAX_TOKENS = 120;

async function all<T>(items: T[], run: (item: T) => Promise<void>, concurrency = 8): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await run(items[next++]!);
  }));
}

describe("forced, strict and json_schema requests through the clients (default model)", () => {
  let server: TestServer;
  before(async () => {
    server = await realServer({ maxConcurrentSequences: 8 });
  });
  after(() => server.close());

  test(`openai SDK: ${RUNS} requests, each a schema-valid call (finish_reason tool_calls) or object (stop)`, async () => {
    const client = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
    const tools = (strict: boolean) => [
      { type: "function" as const, function: { name: "get_weather", parameters: weather, strict } },
      { type: "function" as const, function: { name: "search", parameters: search, strict } },
    ];
    await all(variants(RUNS, 1), async (v) => {
      const ctx = JSON.stringify(v);
      const base = { model: MODEL, max_tokens: MAX_TOKENS, seed: v.seed, thinking: { type: v.thinking ? "enabled" : "disabled" } } as const;
      if (v.kind === "object") {
        const r = await client.chat.completions.create({
          ...base,
          messages: [{ role: "user", content: "Describe a person." }],
          response_format: { type: "json_schema", json_schema: { name: "person", schema: person, strict: v.strict } },
        } as never);
        const choice = (r as OpenAI.ChatCompletion).choices[0]!;
        assert.equal(choice.finish_reason, "stop", ctx);
        assert.ok(!/^\s/.test(choice.message.content!), `${ctx}: no leading whitespace`);
        check("person", JSON.parse(choice.message.content!), ctx);
        return;
      }
      const request = {
        ...base,
        messages: [{ role: "user", content: "What is the weather in Paris?" }],
        tools: tools(v.strict),
        tool_choice: v.kind === "named" ? { type: "function", function: { name: v.seed % 2 ? "search" : "get_weather" } } : "required",
      };
      // Every fifth tool request streams: the call is assembled from the SDK's fragments.
      const r = v.seed % 5 === 0 ? await client.chat.completions.stream(request as never).finalChatCompletion() : ((await client.chat.completions.create(request as never)) as OpenAI.ChatCompletion);
      const choice = r.choices[0]!;
      assert.equal(choice.finish_reason, "tool_calls", ctx);
      assert.equal(choice.message.tool_calls?.length, 1, ctx);
      const call = choice.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
      if (v.kind === "named") assert.equal(call.function.name, v.seed % 2 ? "search" : "get_weather");
      check(call.function.name as "search", JSON.parse(call.function.arguments), ctx);
    });
  });

  test(`Vercel AI SDK: ${RUNS} requests (@ai-sdk/deepseek tools, generateObject through @ai-sdk/openai-compatible)`, async () => {
    // @ai-sdk/deepseek has no seed setting: the request's seed goes into the body on its way out.
    const seeds = new Map<string, number>();
    const seeding: typeof fetch = async (url, init) => {
      const body = JSON.parse(String(init?.body)) as { messages: Array<{ content: unknown }> };
      const seed = seeds.get(JSON.stringify(body.messages[0]?.content));
      return fetch(url, { ...init, body: JSON.stringify({ ...body, seed }) });
    };
    const deepseek = createDeepSeek({ baseURL: server.url, apiKey: "unused", fetch: seeding });
    const compatible = createOpenAICompatible({ name: "dsv4", baseURL: server.url, apiKey: "unused", supportsStructuredOutputs: true });
    const zodWeather = z.object({ city: z.string().min(1).max(24), days: z.number().int(), units: z.enum(["celsius", "fahrenheit"]).optional() });
    await all(variants(RUNS, 1000), async (v) => {
      const ctx = JSON.stringify(v);
      const thinking = { thinking: { type: v.thinking ? "enabled" : "disabled" } };
      if (v.kind === "object") {
        const r = await generateObject({
          model: compatible(MODEL),
          schema: jsonSchema(person),
          prompt: "Describe a person.",
          maxOutputTokens: MAX_TOKENS,
          seed: v.seed,
          maxRetries: 0,
          providerOptions: { dsv4: thinking },
        });
        assert.equal(r.finishReason, "stop", ctx);
        check("person", r.object, ctx);
        return;
      }
      const prompt = `What is the weather in Paris? (${v.seed})`;
      seeds.set(JSON.stringify(prompt), v.seed);
      const r = await generateText({
        model: deepseek(MODEL),
        prompt,
        tools: { get_weather: tool({ inputSchema: zodWeather }), search: tool({ inputSchema: jsonSchema(search) }) },
        toolChoice: v.kind === "named" ? { type: "tool", toolName: "search" } : "required",
        maxOutputTokens: MAX_TOKENS,
        maxRetries: 0,
        providerOptions: { deepseek: thinking },
      });
      assert.equal(r.finishReason, "tool-calls", ctx);
      assert.equal(r.toolCalls.length, 1, ctx);
      const call = r.toolCalls[0]!;
      assert.ok(!("invalid" in call && call.invalid), `${ctx}: the SDK found the input invalid`);
      if (v.kind === "named") assert.equal(call.toolName, "search");
      check(call.toolName as "search", call.input, ctx);
    });
  });

  test(`Anthropic SDK: ${RUNS} requests with tool_choice any / tool (strict and not), stop_reason tool_use`, async () => {
    const client = new Anthropic({ baseURL: `${server.url}/anthropic`, apiKey: "unused", maxRetries: 0 });
    await all(variants(RUNS, 2000), async (v) => {
      const ctx = JSON.stringify(v);
      const r = await client.messages.create({
        model: "claude-dsv4",
        max_tokens: MAX_TOKENS,
        messages: [{ role: "user", content: "What is the weather in Paris?" }],
        tools: [
          { name: "get_weather", input_schema: weather as never, strict: v.strict },
          { name: "search", input_schema: search as never, strict: v.strict },
        ] as never,
        tool_choice: v.kind === "named" ? { type: "tool", name: "get_weather" } : { type: "any" },
        ...(v.thinking ? { thinking: { type: "enabled", budget_tokens: 40 } } : {}),
      } as never);
      const msg = r as Anthropic.Message;
      assert.equal(msg.stop_reason, "tool_use", ctx);
      const uses = msg.content.filter((b) => b.type === "tool_use");
      assert.equal(uses.length, 1, ctx);
      const use = uses[0] as Anthropic.ToolUseBlock;
      if (v.kind === "named") assert.equal(use.name, "get_weather");
      check(use.name as "search", use.input, ctx);
    });
  });

  test("a max_tokens too small for any call is a 400 naming max_tokens", async () => {
    const client = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
    await assert.rejects(
      client.chat.completions.create({
        model: MODEL,
        max_tokens: 20,
        messages: [{ role: "user", content: "Weather?" }],
        tools: [{ type: "function", function: { name: "get_weather", parameters: weather } }],
        tool_choice: "required",
      }),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 400 && (e.error as { param?: string })?.param === "max_tokens" && /at least \d+/.test(e.message),
    );
  });
});
