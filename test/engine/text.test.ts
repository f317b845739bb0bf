import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import type { ChatCompletion, ChatCompletionChunk } from "../../src/engine/types.js";
import { checkpoint } from "./helpers.js";

const user = (content: string) => [{ role: "user", content }];

describe("engine with the real V4 tokenizer (tiny preset)", async () => {
  const dir = await checkpoint("tiny");
  const engine = await Engine.load(dir, { prefixCache: { blockTokens: 16 }, speculative: { enabled: false } });
  const { after } = await import("node:test");
  after(() => engine.dispose());

  test("stop strings split across tokens end the content and are not included", async () => {
    const req = { messages: user("Hello there, how are you?"), thinking: false, max_tokens: 14, temperature: 0 } as const;
    const pieces: string[] = [];
    for await (const ev of engine.generate(req)) if (ev.type === "token") pieces.push(ev.text);
    const full = pieces.join("");
    // A stop string made of the end of one token and the start of the next.
    let stop = "";
    let boundary = 0;
    for (let i = 2; i + 1 < pieces.length && !stop; i++) {
      const a = pieces[i]!;
      const b = pieces[i + 1]!;
      boundary += pieces[i - 1]!.length;
      if (a.length >= 2 && b.length >= 2) {
        const candidate = a.slice(-2) + b.slice(0, 2);
        if (full.indexOf(candidate) >= boundary) stop = candidate;
      }
    }
    assert.ok(stop, `no usable boundary in ${JSON.stringify(pieces)}`);
    const expected = full.slice(0, full.indexOf(stop));
    let streamed = "";
    const gen = engine.generate({ ...req, stop: ["never-appears", stop] });
    for await (const ev of gen) if (ev.type === "content") streamed += ev.text;
    const r = await gen.result();
    assert.equal(r.message.content, expected);
    assert.equal(streamed, expected);
    assert.equal(r.finish_reason, "stop");
    assert.ok(r.tokens.length < 14);
  });

  test("the reasoning budget closes the reasoning and lets the model answer", async () => {
    const free = await engine.generate({ messages: user("Think about it."), max_tokens: 10, temperature: 0 }).result();
    assert.equal(free.usage.completion_tokens_details.reasoning_tokens, 10, "this model keeps reasoning when not stopped");
    assert.equal(free.message.content, "");

    const r = await engine.generate({ messages: user("Think about it."), max_tokens: 10, temperature: 0, reasoning_budget: 4 }).result();
    const thinkEnd = engine.tokenizer!.specialIds.thinkEnd!;
    assert.equal(r.tokens[3], thinkEnd, "</think> forced as the 4th token");
    assert.deepEqual(r.tokens.slice(0, 3), free.tokens.slice(0, 3));
    assert.equal(r.usage.completion_tokens_details.reasoning_tokens, 4);
    assert.equal(r.usage.completion_tokens, 10);
    assert.ok(r.message.content.length > 0, "the answer follows the closed reasoning");
    assert.ok(r.message.reasoning_content!.length > 0);
    assert.equal(r.stats.reasoningBudgetHit, true);
  });

  test("chat.completions.create: completion object and stream chunks agree", async () => {
    const body = { model: "deepseek-v4-flash", messages: user("Hi"), max_tokens: 6, temperature: 0, reasoning_budget: 3, logprobs: true, top_logprobs: 2 };
    const c = (await engine.chat.completions.create(body)) as ChatCompletion;
    assert.equal(c.object, "chat.completion");
    assert.equal(c.choices[0].finish_reason, "length");
    assert.equal(c.usage.completion_tokens, 6);
    assert.equal(c.usage.completion_tokens_details.reasoning_tokens, 3);
    assert.equal(c.choices[0].logprobs!.reasoning_content!.length, 3);
    assert.equal(c.choices[0].logprobs!.content!.length, 3);

    const stream = (await engine.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } })) as AsyncIterable<ChatCompletionChunk>;
    const chunks: ChatCompletionChunk[] = [];
    for await (const ch of stream) chunks.push(ch);
    assert.deepEqual(chunks[0]!.choices[0]!.delta, { role: "assistant", content: null, reasoning_content: "" });
    const reasoning = chunks.map((ch) => ch.choices[0]?.delta.reasoning_content ?? "").join("");
    const content = chunks.map((ch) => ch.choices[0]?.delta.content ?? "").join("");
    assert.equal(reasoning, c.choices[0].message.reasoning_content);
    assert.equal(content, c.choices[0].message.content);
    const finish = chunks[chunks.length - 2]!;
    assert.equal(finish.choices[0]!.finish_reason, "length");
    assert.deepEqual(finish.usage, c.usage);
    assert.deepEqual(chunks[chunks.length - 1]!.choices, []);
    assert.ok(chunks.slice(0, -2).every((ch) => ch.usage === null));
  });

  test("a chat session keeps history and reuses the cached prefix", async () => {
    const session = engine.createSession({ system: "You are a terse assistant that answers in one word.", defaults: { thinking: false, max_tokens: 4, temperature: 0 } });
    const first = await session.prompt("Name a colour that is often used for the sky.").result();
    assert.equal(session.messages.length, 3);
    const second = await session.prompt("And one for grass?").result();
    assert.equal(session.messages.length, 5);
    assert.ok(second.usage.prompt_tokens > first.usage.prompt_tokens);
    assert.ok(second.usage.prompt_cache_hit_tokens >= 16, `hit ${second.usage.prompt_cache_hit_tokens}`);
  });

  test("disposing the engine disposes its sessions, which cancel their running turns", async () => {
    const own = await Engine.load(dir, { prefixCache: { enabled: false } });
    const session = own.createSession();
    const turn = session.prompt("hi", { max_tokens: 200 });
    await own[Symbol.asyncDispose]();
    await assert.rejects(turn.result(), (e: Error) => /cancelled|disposed/.test(e.message));
    assert.throws(() => session.prompt("again"), /disposed/);
  });
});
