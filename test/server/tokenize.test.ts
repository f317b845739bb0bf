/**
 * POST /tokenize and /detokenize (vLLM's and SGLang's token utilities) on the real engine and
 * the real V4 tokenizer: ids as the tokenizer gives them, a conversation counted exactly as
 * /chat/completions bills it, and bad ids refused naming the one at fault.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { makeKey } from "../../src/server/auth.js";
import { loadDefaultTokenizer } from "../../src/text/tokenizer.js";
import { MODEL, postJson, realServer, type TestServer } from "./helpers.js";

const KEY = "sk-tokenize-test";
const tokenizer = loadDefaultTokenizer();
const ASSISTANT = tokenizer.tokenToId("<｜Assistant｜>")!;
const THINK_START = tokenizer.tokenToId("<think>")!;
const EOS = tokenizer.specialIds.eos;

interface Tokenized {
  count: number;
  max_model_len: number;
  tokens: number[];
  token_strs: string[] | null;
}

describe("/tokenize and /detokenize", () => {
  let server: TestServer;
  let client: OpenAI;
  const post = (path: string, body: unknown, key = KEY) => postJson(`${server.url}${path}`, body, { authorization: `Bearer ${key}` });
  const ok = async <T = Tokenized>(path: string, body: unknown): Promise<T> => {
    const res = await post(path, body);
    assert.equal(res.status, 200, res.text);
    return res.json as T;
  };
  const refused = async (path: string, body: unknown) => {
    const res = await post(path, body);
    return { status: res.status, error: res.json.error as { message: string; param: string | null } };
  };

  before(async () => {
    server = await realServer({}, { apiKeys: [makeKey(KEY)] });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
  });
  after(() => server.close());

  test("a text's ids are the tokenizer's, special-token strings included, with their vocabulary entries on request", async () => {
    const prompt = "Hello world <｜User｜> 你好 🙂";
    const plain = await ok("/tokenize", { prompt });
    assert.deepEqual(plain.tokens, tokenizer.encode(prompt));
    assert.ok(plain.tokens.includes(tokenizer.tokenToId("<｜User｜>")!));
    assert.equal(plain.count, plain.tokens.length);
    assert.equal(plain.max_model_len, server.engine.model.contextLength);
    assert.equal(plain.token_strs, null);
    const withStrs = await ok("/v1/tokenize", { model: MODEL, prompt, return_token_strs: true });
    assert.deepEqual(withStrs.tokens, plain.tokens);
    assert.deepEqual(withStrs.token_strs, plain.tokens.map((id) => tokenizer.idToToken(id)));
  });

  test("GET /tokenizer_info: the config as vLLM gives it, what lm-eval's remote tokenizer checks (eos_token, then /tokenize)", async () => {
    const res = await fetch(`${server.url}/tokenizer_info`, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(res.status, 200);
    const info = (await res.json()) as Record<string, unknown>;
    assert.equal(info.eos_token, tokenizer.idToToken(EOS));
    assert.equal(info.bos_token, tokenizer.idToToken(tokenizer.specialIds.bos));
    assert.equal(info.name_or_path, MODEL);
    assert.equal(typeof info.tokenizer_class, "string");
    assert.equal(info.added_tokens_decoder, undefined, "the token table stays out, as in vLLM's");
    // lm-eval's remote tokenizer: the eos token's id through /tokenize.
    const eos = await ok("/tokenize", { prompt: info.eos_token, add_special_tokens: false });
    assert.deepEqual(eos.tokens, [EOS]);
  });

  test("V4's tokenizer config adds no special tokens around a text (add_bos_token and add_eos_token are false)", async () => {
    const on = await ok("/tokenize", { prompt: "Hi", add_special_tokens: true });
    const off = await ok("/tokenize", { prompt: "Hi", add_special_tokens: false });
    assert.deepEqual(on.tokens, off.tokens);
    assert.deepEqual((await ok("/tokenize", { prompt: "" })).tokens, []);
  });

  test("a conversation's count is the prompt_tokens /chat/completions reports for the same body", async () => {
    const tools = [{ type: "function" as const, function: { name: "get_weather", description: "Weather of a city", parameters: { type: "object", properties: { city: { type: "string" } } } } }];
    const messages = [
      { role: "system" as const, content: "You are terse." },
      { role: "user" as const, content: "Weather in Paris?" },
    ];
    const bodies = [
      { messages },
      { messages, thinking: { type: "disabled" } },
      { messages, tools },
      { messages, reasoning_effort: "max" },
    ];
    for (const body of bodies) {
      const counted = await ok("/v1/tokenize", { model: MODEL, ...body });
      const chat = await client.chat.completions.create({ model: MODEL, max_tokens: 1, ...body } as OpenAI.ChatCompletionCreateParamsNonStreaming);
      assert.equal(counted.count, chat.usage!.prompt_tokens, JSON.stringify(body));
      assert.equal(counted.tokens[0], tokenizer.specialIds.bos);
    }
  });

  test("chat_template_kwargs' thinking switch gives the same ids as the DeepSeek thinking field", async () => {
    const messages = [{ role: "user", content: "Hi" }];
    const kwargs = await ok("/tokenize", { messages, chat_template_kwargs: { thinking: false } });
    const field = await ok("/tokenize", { messages, thinking: { type: "disabled" } });
    assert.deepEqual(kwargs.tokens, field.tokens);
    assert.notDeepEqual(kwargs.tokens, (await ok("/tokenize", { messages })).tokens);
  });

  test("add_generation_prompt false stops after the last message", async () => {
    const messages = [{ role: "user", content: "Hi" }];
    const open = await ok("/tokenize", { messages });
    const closed = await ok("/tokenize", { messages, add_generation_prompt: false });
    assert.deepEqual(open.tokens.slice(-2), [ASSISTANT, THINK_START]);
    assert.deepEqual(closed.tokens, open.tokens.slice(0, -2));
  });

  test("continue_final_message ends in the assistant's own text, with no end of sentence", async () => {
    const messages = [{ role: "user", content: "Count to three" }, { role: "assistant", content: "One, two" }];
    const cont = await ok("/tokenize", { messages, thinking: { type: "disabled" }, continue_final_message: true, add_generation_prompt: false });
    const tail = tokenizer.encode("One, two");
    assert.deepEqual(cont.tokens.slice(-tail.length), tail);
    const finished = await ok("/tokenize", { messages, thinking: { type: "disabled" } });
    assert.equal(finished.tokens.at(-1), EOS);
    assert.ok(!cont.tokens.includes(EOS));
  });

  test("continue_final_message is refused with add_generation_prompt true, or after a user message", async () => {
    const both = await refused("/tokenize", { messages: [{ role: "user", content: "a" }, { role: "assistant", content: "b" }], continue_final_message: true, add_generation_prompt: true });
    assert.equal(both.status, 400);
    assert.equal(both.error.param, "continue_final_message");
    const user = await refused("/tokenize", { messages: [{ role: "user", content: "a" }], continue_final_message: true });
    assert.equal(user.status, 400);
    assert.match(user.error.message, /must be an assistant message/);
  });

  test("detokenize inverts tokenize, special tokens written out", async () => {
    const prompt = "<｜begin▁of▁sentence｜>Über naïve café — 你好 🙂\n\tend";
    const { tokens } = await ok("/tokenize", { prompt });
    const back = await ok<{ prompt: string }>("/detokenize", { model: MODEL, tokens });
    assert.equal(back.prompt, prompt);
  });

  test("an id outside the vocabulary is refused, naming it", async () => {
    const { status, error } = await refused("/v1/detokenize", { tokens: [0, tokenizer.vocabSize] });
    assert.equal(status, 400);
    assert.equal(error.param, "tokens[1]");
    assert.match(error.message, new RegExp(`${tokenizer.vocabSize} is not a token id`));
    const negative = await refused("/detokenize", { tokens: [-1] });
    assert.equal(negative.error.param, "tokens[0]");
  });

  test("a body with neither prompt nor messages, or an unknown model, is refused as the chat route refuses", async () => {
    const neither = await refused("/tokenize", { text: "hi" });
    assert.equal(neither.status, 400);
    assert.match(neither.error.message, /"prompt".*"messages"/);
    const model = await refused("/tokenize", { model: "gpt-4", prompt: "hi" });
    assert.equal(model.status, 400);
    assert.equal(model.error.message, "Model Not Exist");
  });

  test("the routes need the API key like every other", async () => {
    assert.equal((await post("/tokenize", { prompt: "hi" }, "sk-wrong")).status, 401);
    assert.equal((await post("/detokenize", { tokens: [1] }, "sk-wrong")).status, 401);
  });
});

describe("/tokenize on a short context", () => {
  let server: TestServer;
  before(async () => {
    server = await realServer({ contextLength: 16 });
  });
  after(() => server.close());

  test("a text longer than max_model_len is refused with the context-length error, naming both lengths", async () => {
    const prompt = "word ".repeat(40);
    const res = await postJson(`${server.url}/tokenize`, { prompt });
    assert.equal(res.status, 400);
    const { error } = res.json as { error: { message: string; code: string } };
    assert.match(error.message, new RegExp(`maximum context length is 16 tokens\\. However, your prompt has ${tokenizer.encode(prompt).length} tokens`));
  });
});
