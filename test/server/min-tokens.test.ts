/**
 * vLLM's min_tokens and ignore_eos on dsv4 serve, as benchmark clients send them (the openai
 * SDK's extra body fields): fixed output lengths from a model that would stop at once.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { loadDefaultTokenizer } from "../../src/text/tokenizer.js";
import { forceScript, MODEL, postJson, realServer, type TestServer } from "./helpers.js";

const EOS = loadDefaultTokenizer().specialIds.eos;

describe("min_tokens and ignore_eos through the API", () => {
  let server: TestServer;
  let client: OpenAI;
  before(async () => {
    // Every position's top token is the end of sentence: without the fields, nothing is generated.
    server = await realServer({ logitsProcessor: ({ logits }) => void (logits[EOS] = 1e9) });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  const chat = (extra: object) =>
    client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "Hi" }], thinking: { type: "disabled" }, max_tokens: 12, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming);

  test("ignore_eos: a chat answer runs to max_tokens", async () => {
    assert.equal((await chat({})).usage!.completion_tokens, 0);
    const r = await chat({ ignore_eos: true });
    assert.equal(r.choices[0]!.finish_reason, "length");
    assert.equal(r.usage!.completion_tokens, 12);
  });

  test("min_tokens: a streamed answer ends right after that many tokens", async () => {
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 12, min_tokens: 5, stream: true, stream_options: { include_usage: true } } as OpenAI.ChatCompletionCreateParamsStreaming);
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null = null;
    for await (const chunk of stream) {
      usage = chunk.usage ?? usage;
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, "stop");
    assert.equal(usage!.completion_tokens, 5);
  });

  test("FIM takes them too, and min_tokens above max_tokens is a 400 naming it", async () => {
    const fim = await postJson(`${server.url}/beta/completions`, { model: MODEL, prompt: "def f():", max_tokens: 7, ignore_eos: true });
    assert.equal(fim.json.usage.completion_tokens, 7);
    await assert.rejects(chat({ min_tokens: 13 }), (e: unknown) => e instanceof OpenAI.BadRequestError && (e.error as { param?: string }).param === "min_tokens");
  });
});

describe("min_tokens and stop strings, as vLLM has them", () => {
  const tokenizer = loadDefaultTokenizer();
  // "Hello", " world", ",", " good", " night", then the end of sentence.
  const script = [...tokenizer.encode("Hello world, good night"), EOS];
  let server: TestServer;
  before(async () => {
    server = await realServer({ logitsProcessor: forceScript(() => script) });
  });
  after(() => server.close());

  const content = async (extra: object) => {
    const r = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "Hi" }], thinking: { type: "disabled" }, max_tokens: 20, stop: ["o"], ...extra });
    assert.equal(r.status, 200, r.text);
    return r.json.choices[0].message.content as string;
  };

  test("no stop string ends in the first min_tokens tokens' text", async () => {
    assert.equal(await content({}), "Hell");
    assert.equal(await content({ min_tokens: 2 }), "Hello world, g");
  });

  test("ignore_eos leaves stop strings alone", async () => {
    assert.equal(await content({ ignore_eos: true }), "Hell");
  });

  test("include_stop_str_in_output keeps the stop string that ended the answer", async () => {
    assert.equal(await content({ include_stop_str_in_output: true }), "Hello");
    assert.equal(await content({ include_stop_str_in_output: true, min_tokens: 2 }), "Hello world, go");
  });
});

describe("stop_token_ids, as vLLM has them", () => {
  const tokenizer = loadDefaultTokenizer();
  const COMMA = tokenizer.encode(",")[0]!;
  let server: TestServer;
  // null: the script; else every position's top token is this one.
  let eager: number | null = null;
  const script = [...tokenizer.encode("Hello world, good night"), EOS];
  before(async () => {
    const forced = forceScript(() => script);
    server = await realServer({ logitsProcessor: (ctx) => (eager === null ? forced(ctx) : void (ctx.logits[eager] = 1e9)) });
  });
  after(() => server.close());

  const chat = async (extra: object) => {
    const r = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "Hi" }], thinking: { type: "disabled" }, max_tokens: 20, ...extra });
    assert.equal(r.status, 200, r.text);
    return r.json;
  };

  test("generating one ends the answer, its text kept", async () => {
    const r = await chat({ stop_token_ids: [COMMA] });
    assert.equal(r.choices[0].message.content, "Hello world,");
    assert.equal(r.choices[0].finish_reason, "stop");
    assert.equal(r.usage.completion_tokens, 3);
  });

  test("masked until min_tokens", async () => {
    eager = COMMA;
    try {
      assert.equal((await chat({ stop_token_ids: [COMMA] })).usage.completion_tokens, 1);
      assert.equal((await chat({ stop_token_ids: [COMMA], min_tokens: 5 })).usage.completion_tokens, 6);
    } finally {
      eager = null;
    }
  });

  test("an id outside the vocabulary is a 400 naming it; FIM and text completions take them too", async () => {
    const bad = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "Hi" }], stop_token_ids: [1, -5] });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.param, "stop_token_ids[1]");
    const text = await postJson(`${server.url}/v1/completions`, { model: MODEL, prompt: "Hi", max_tokens: 20, stop_token_ids: [COMMA] });
    assert.equal(text.json.choices[0].text, "Hello world,");
  });
});
