/**
 * POST /v1/completions as vLLM serves it (the route of vllm bench serve, guidellm and lm-eval's
 * local-completions): a raw completion of the prompt, no chat template, through the openai
 * client; the hosted service's 400 there only under --strict-api (test/server/errors.test.ts).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { encodeFim } from "../../src/text/encoding.js";
import { loadDefaultTokenizer } from "../../src/text/tokenizer.js";
import { forceScript, MODEL, postJson, realServer, type TestServer } from "./helpers.js";

const tokenizer = loadDefaultTokenizer();
const ANSWER = " over the lazy dog and on and on and on and on and on and on and on";
let script: number[] = [...tokenizer.encode(ANSWER), tokenizer.specialIds.eos];
const PROMPT = "The quick brown fox jumps";

describe("text completions (/v1/completions)", () => {
  let server: TestServer;
  let client: OpenAI;
  before(async () => {
    server = await realServer({ logitsProcessor: forceScript(() => script) });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close());

  test("the prompt is completed as is: its tokens are the prompt, with no template", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 100 });
    assert.equal(r.object, "text_completion");
    assert.equal(r.choices[0]!.text, ANSWER);
    assert.equal(r.choices[0]!.finish_reason, "stop");
    assert.equal(r.usage!.prompt_tokens, tokenizer.encode(PROMPT).length);
    assert.equal(r.usage!.completion_tokens, script.length - 1);
  });

  test("without max_tokens, 16 tokens (OpenAI's and vLLM's default)", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: PROMPT });
    assert.equal(r.usage!.completion_tokens, 16);
    assert.equal(r.choices[0]!.finish_reason, "length");
  });

  test("token ids, alone or as a list of one, give the same completion", async () => {
    const ids = tokenizer.encode(PROMPT);
    for (const prompt of [ids, [ids]]) {
      const r = await client.completions.create({ model: MODEL, prompt, max_tokens: 100, echo: true });
      assert.equal(r.choices[0]!.text, PROMPT + ANSWER);
      assert.equal(r.usage!.prompt_tokens, ids.length);
    }
  });

  test("streamed through the client, the same text", async () => {
    const stream = await client.completions.create({ model: MODEL, prompt: [PROMPT], max_tokens: 100, stream: true });
    let text = "";
    let finish: string | null = null;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? "";
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(text, ANSWER);
    assert.equal(finish, "stop");
  });

  test("with a suffix it is the FIM completion of /beta", async () => {
    const r = await postJson(`${server.url}/v1/completions`, { model: MODEL, prompt: "def f(", suffix: "    return x\n", max_tokens: 100 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].text, ANSWER);
    assert.equal(r.json.usage.prompt_tokens, tokenizer.encode(encodeFim({ prompt: "def f(", suffix: "    return x\n" })).length);
  });

  test("vLLM's sampling fields (top_k, min_p, min_tokens, ignore_eos) are taken", async () => {
    script = [tokenizer.specialIds.eos];
    try {
      const r = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 6, top_k: 5, min_p: 0.1, ignore_eos: true } as OpenAI.CompletionCreateParamsNonStreaming);
      assert.equal(r.usage!.completion_tokens, 6);
      const bad = await postJson(`${server.url}/v1/completions`, { model: MODEL, prompt: PROMPT, min_p: 2 });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.param, "min_p");
    } finally {
      script = [...tokenizer.encode(ANSWER), tokenizer.specialIds.eos];
    }
  });

  test("echo with logprobs reports the prompt's tokens' logprobs, as lm-eval's loglikelihood reads them", async () => {
    const ids = tokenizer.encode("Paris is the capital of France");
    // lm-eval's local-completions payload for a loglikelihood request.
    const r = await client.completions.create({ model: MODEL, prompt: [ids], temperature: 0, max_tokens: 1, logprobs: 1, seed: 1234, echo: true });
    const lp = r.choices[0]!.logprobs!;
    assert.equal(lp.tokens!.length, ids.length + 1);
    assert.equal(lp.token_logprobs![0], null);
    assert.equal(lp.top_logprobs![0], null);
    const direct = await server.engine.generate({ prompt_tokens: ids, max_tokens: 1, temperature: 0, prompt_logprobs: 1 }).result();
    assert.deepEqual(lp.token_logprobs!.slice(1, ids.length), direct.prompt_logprobs!.slice(1).map((t) => t!.logprob));
    for (let i = 1; i <= ids.length; i++) {
      const top = Object.values(lp.top_logprobs![i]!);
      assert.equal(top.length, 1);
      assert.ok(top[0]! >= lp.token_logprobs![i]!, `position ${i}: the top alternative is at least as likely`);
    }
    assert.equal(lp.tokens!.slice(0, ids.length).join(""), tokenizer.decode(ids));

    // Streamed: the echo chunk carries the prompt's part, the rest follows.
    const stream = await client.completions.create({ model: MODEL, prompt: [ids], temperature: 0, max_tokens: 1, logprobs: 1, echo: true, stream: true });
    const streamed: Array<number | null> = [];
    let text = "";
    for await (const c of stream) {
      streamed.push(...(c.choices[0]?.logprobs?.token_logprobs ?? []));
      text += c.choices[0]?.text ?? "";
    }
    assert.deepEqual(streamed, lp.token_logprobs);
    assert.equal(text, r.choices[0]!.text);
  });
});
