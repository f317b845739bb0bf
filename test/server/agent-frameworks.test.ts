/**
 * Agent frameworks, unchanged, against the default model (random weights):
 * each completes a forced tool loop (the call, its result sent back, a final
 * answer), thinking on and off. The forced call is what makes a random model
 * call at all; its arguments must satisfy the framework's own validation.
 * One run per framework, mode and setting keeps the suite short; seeds differ
 * between thinking on and off.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ChatAnthropic } from "@langchain/anthropic";
import { HumanMessage, ToolMessage } from "@langchain/core/messages";
import { tool as lcTool } from "@langchain/core/tools";
import { ChatDeepSeek } from "@langchain/deepseek";
import { Agent, OpenAIChatCompletionsModel, run, setTracingDisabled, tool } from "@openai/agents";
import OpenAI from "openai";
import { z } from "zod";
import { MODEL, realServer, type TestServer } from "./helpers.js";

setTracingDisabled(true);

const weatherArgs = z.object({ city: z.string().min(1).max(20), days: z.number().int() });
const MAX_TOKENS = 96;

describe("agent frameworks complete a forced tool loop (default model)", () => {
  let server: TestServer;
  before(async () => {
    server = await realServer({ maxConcurrentSequences: 8 });
  });
  after(() => server.close());

  function weatherTool(calls: Array<z.infer<typeof weatherArgs>>) {
    return tool({
      name: "get_weather",
      description: "Weather for a city",
      parameters: weatherArgs,
      execute: async (args) => {
        calls.push(weatherArgs.parse(args));
        return "sunny, 21C";
      },
    });
  }

  for (const thinking of [false, true]) {
    for (const stream of [false, true]) {
      test(`OpenAI Agents SDK, chat-completions model, zod tool (thinking ${thinking ? "on" : "off"}, ${stream ? "streamed" : "not streamed"})`, async () => {
        const client = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
        for (const seed of [thinking ? 2 : 1]) {
          const calls: Array<z.infer<typeof weatherArgs>> = [];
          const agent = new Agent({
            name: "weather",
            instructions: "Answer with the weather tool.",
            model: new OpenAIChatCompletionsModel(client, MODEL),
            tools: [weatherTool(calls)],
            // The Agents SDK resets tool_choice to auto after the call, so the loop ends with an answer.
            // It wants text for that answer: a random model never ends its reasoning, so dsv4's
            // reasoning_budget ends it for the model.
            modelSettings: {
              toolChoice: "required",
              maxTokens: MAX_TOKENS,
              providerData: { seed, thinking: { type: thinking ? "enabled" : "disabled" }, ...(thinking ? { reasoning_budget: 16 } : {}) },
            },
          });
          if (stream) {
            const result = await run(agent, "Weather in Paris for 2 days?", { stream: true, maxTurns: 4 });
            for await (const _event of result) void _event;
            await result.completed;
            assert.equal(typeof result.finalOutput, "string");
          } else {
            const result = await run(agent, "Weather in Paris for 2 days?", { maxTurns: 4 });
            assert.equal(typeof result.finalOutput, "string");
          }
          assert.equal(calls.length, 1, `seed ${seed}: one tool call`);
        }
      });
    }
  }

  test("OpenAI Agents SDK, default Responses model", async (t) => {
    const probe = await fetch(`${server.url}/v1/responses`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    if (probe.status === 404) {
      t.skip("POST /v1/responses is not served on this branch (the Responses API is issue 20, part 2)");
      return;
    }
    const { setDefaultOpenAIClient } = await import("@openai/agents");
    setDefaultOpenAIClient(new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 }));
    const calls: Array<z.infer<typeof weatherArgs>> = [];
    const agent = new Agent({ name: "weather", model: MODEL, tools: [weatherTool(calls)], modelSettings: { toolChoice: "required", maxTokens: MAX_TOKENS } });
    const result = await run(agent, "Weather in Paris for 2 days?", { maxTurns: 4 });
    assert.equal(typeof result.finalOutput, "string");
    assert.equal(calls.length, 1);
  });

  const lcWeather = (calls: unknown[]) =>
    lcTool(
      async (args) => {
        calls.push(weatherArgs.parse(args));
        return "sunny, 21C";
      },
      { name: "get_weather", description: "Weather for a city", schema: weatherArgs },
    );

  for (const thinking of [false, true]) {
    test(`LangChain ChatDeepSeek: bindTools with tool_choice "required", the result back, a final answer (thinking ${thinking ? "on" : "off"})`, async () => {
      for (const seed of [thinking ? 2 : 1]) {
        const llm = new ChatDeepSeek({ model: MODEL, apiKey: "unused", configuration: { baseURL: server.url }, maxTokens: MAX_TOKENS, maxRetries: 0, modelKwargs: { seed, thinking: { type: thinking ? "enabled" : "disabled" } } });
        const calls: unknown[] = [];
        const weather = lcWeather(calls);
        const question = new HumanMessage("Weather in Paris for 2 days?");
        const ai = await llm.bindTools([weather], { tool_choice: "required" }).invoke([question]);
        assert.equal(ai.tool_calls?.length, 1, `seed ${seed}`);
        const result = await weather.invoke(ai.tool_calls![0]!);
        const final = await llm.invoke([question, ai, result as ToolMessage]);
        assert.equal(typeof final.content, "string");
        assert.equal(calls.length, 1);
      }
    });

    test(`LangChain ChatDeepSeek: withStructuredOutput (json_schema) parses under the zod schema (thinking ${thinking ? "on" : "off"})`, async () => {
      const llm = new ChatDeepSeek({ model: MODEL, apiKey: "unused", configuration: { baseURL: server.url }, maxTokens: MAX_TOKENS, maxRetries: 0, modelKwargs: { thinking: { type: thinking ? "enabled" : "disabled" } } });
      const person = z.object({ name: z.string().max(12), age: z.number().int(), tags: z.array(z.enum(["a", "b"])).max(2) });
      for (const seed of [thinking ? 2 : 1]) {
        const out = await llm.withStructuredOutput(person, { method: "jsonSchema" }).invoke("A person, please.", { seed } as never);
        person.parse(out);
      }
    });

    test(`LangChain ChatAnthropic against /anthropic: tool_choice any, the result back, a final answer (thinking ${thinking ? "on" : "off"})`, async () => {
      const llm = new ChatAnthropic({
        model: "claude-dsv4",
        apiKey: "unused",
        anthropicApiUrl: `${server.url}/anthropic`,
        maxTokens: MAX_TOKENS,
        maxRetries: 0,
        ...(thinking ? { thinking: { type: "enabled" as const, budget_tokens: 32 } } : {}),
      });
      const calls: unknown[] = [];
      const weather = lcWeather(calls);
      const question = new HumanMessage("Weather in Paris for 2 days?");
      {
        const ai = await llm.bindTools([weather], { tool_choice: "any" }).invoke([question]);
        assert.equal(ai.tool_calls?.length, 1);
        const result = await weather.invoke(ai.tool_calls![0]!);
        const final = await llm.invoke([question, ai, result as ToolMessage]);
        assert.ok(final.content !== undefined);
      }
      assert.equal(calls.length, 1);
    });
  }
});
