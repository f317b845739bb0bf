/**
 * vLLM's stream_options.continuous_usage_stats: every chunk carries the usage so far, which is
 * how a client tells how many tokens a chunk carries (a token whose text is held back, here the
 * first byte of "é", sends no chunk of its own).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { loadDefaultTokenizer } from "../../src/text/tokenizer.js";
import { forceScript, MODEL, postJson, realServer, sseData, type TestServer } from "./helpers.js";

const tokenizer = loadDefaultTokenizer();
const id = (piece: string) => tokenizer.tokenToId(piece)!;
// "Hello", " world", then "é" as its two byte tokens (0xC3 alone is half a character), "!", EOS.
const SCRIPT = [...tokenizer.encode("Hello"), ...tokenizer.encode(" world"), id("Ã"), id("©"), ...tokenizer.encode("!"), tokenizer.specialIds.eos];

type Usage = { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;

describe("continuous usage stats on streams", () => {
  let server: TestServer;
  let client: OpenAI;
  before(async () => {
    server = await realServer({ logitsProcessor: forceScript(() => SCRIPT) });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  const stream = async (streamOptions: object) => {
    const s = await client.chat.completions.create({
      model: MODEL, messages: [{ role: "user", content: "Hi" }], thinking: { type: "disabled" }, max_tokens: 20, stream: true, stream_options: streamOptions,
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    const chunks: Array<{ content: string | null; usage: Usage; choices: number }> = [];
    for await (const c of s) chunks.push({ content: c.choices[0]?.delta.content ?? null, usage: (c.usage ?? null) as Usage, choices: c.choices.length });
    return chunks;
  };

  test("every chunk carries the usage so far, counting a held-back token with the chunk that shows it", async () => {
    const chunks = await stream({ include_usage: true, continuous_usage_stats: true });
    const final = chunks.at(-1)!.usage!;
    assert.equal(final.completion_tokens, SCRIPT.length - 1);
    for (const c of chunks) {
      assert.ok(c.usage, "a chunk without usage");
      assert.equal(c.usage.prompt_tokens, final.prompt_tokens);
      assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
    }
    assert.equal(chunks[0]!.usage!.completion_tokens, 0, "the role chunk comes before any token");
    const content = chunks.filter((c) => c.content);
    assert.deepEqual(content.map((c) => c.content), ["Hello", " world", "é", "!"]);
    // "é" is two tokens, so its chunk's count moves by two.
    assert.deepEqual(content.map((c) => c.usage!.completion_tokens), [1, 2, 4, 5]);
  });

  test("without it (or without include_usage) only DeepSeek's chunks carry usage", async () => {
    for (const options of [{ include_usage: true }, { continuous_usage_stats: true }]) {
      const chunks = await stream(options);
      const withUsage = chunks.filter((c) => c.usage !== null);
      // The finish chunk, and with include_usage the usage-only chunk after it.
      assert.equal(withUsage.length, "include_usage" in options ? 2 : 1, JSON.stringify(options));
    }
  });

  test("FIM streams carry it too", async () => {
    const r = await fetch(`${server.url}/beta/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt: "def f():", max_tokens: 20, stream: true, stream_options: { include_usage: true, continuous_usage_stats: true } }),
    });
    const events = sseData(await r.text()).filter((d) => d !== "[DONE]").map((d) => JSON.parse(d) as { choices: Array<{ text: string }>; usage: Usage });
    const texts = events.filter((e) => e.choices[0]?.text);
    assert.deepEqual(texts.map((e) => e.usage!.completion_tokens), [1, 2, 4, 5]);
  });

  test("a non-boolean value is refused as DeepSeek refuses a mistyped field (422), naming it", async () => {
    const r = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "Hi" }], stream: true, stream_options: { include_usage: true, continuous_usage_stats: "yes" } });
    assert.equal(r.status, 422);
    assert.match(r.text, /continuous_usage_stats/);
  });
});
