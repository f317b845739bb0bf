/**
 * `dsv4 gateway` over three real `dsv4 serve` replicas of the default model: every route answers
 * as a replica answers directly (same seed, same ids, same parse), a repeated prefix stays on one
 * replica, and a dead replica costs no request that had not started streaming.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { protocolFor, type RunningGateway } from "../../src/gateway/index.js";
import type { TestServer } from "../server/helpers.js";
import { waitFor } from "../helpers/wait.js";
import { dispatched, gatewayOver, kill, MODEL, postJson, replicas, sseData } from "./helpers.js";

/** The fields a response's content and accounting are made of (ids, timestamps and fingerprints differ). */
function essence(r: any) {
  const c = r.choices[0];
  const { cost, ...usage } = r.usage;
  return { message: c.message ?? c.text, finish: c.finish_reason, usage, cost };
}

const LONG_SYSTEM = Array.from({ length: 40 }, (_, i) => `Rule ${i + 1}: answer carefully and cite the source of every claim you make.`).join("\n");

describe("gateway over three dsv4 replicas", () => {
  let reps: TestServer[];
  let gw: RunningGateway;
  let client: OpenAI;
  /** The replica the affinity test's conversation stayed on. */
  let affine: string | undefined;
  before(async () => {
    reps = await replicas(3);
    gw = await gatewayOver(reps);
    client = new OpenAI({ baseURL: gw.url, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    for (const r of reps) await r.close().catch(() => undefined);
  });

  for (const thinking of ["enabled", "disabled"] as const) {
    test(`chat, thinking ${thinking}: the same answer and usage as a replica gives directly`, async () => {
      const body = { model: MODEL, messages: [{ role: "user", content: `Hello (${thinking})` }], thinking: { type: thinking }, max_tokens: 12, seed: 7 };
      const direct = await postJson(`${reps[0]!.url}/chat/completions`, body);
      const via = await postJson(`${gw.url}/chat/completions`, body);
      assert.equal(via.status, 200);
      assert.deepEqual(essence(via.json), essence(direct.json));
    });
  }

  test("streamed through the openai SDK: the deltas add up to the non-streamed answer", async () => {
    const body = { model: MODEL, messages: [{ role: "user" as const, content: "Stream please" }], max_tokens: 10, seed: 9 } as any;
    const whole: any = await client.chat.completions.create(body);
    const stream: any = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    let reasoning = "";
    let content = "";
    let finish = null;
    let usage: any = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const c = chunk.choices[0];
      if (!c) continue;
      reasoning += c.delta.reasoning_content ?? "";
      content += c.delta.content ?? "";
      finish = c.finish_reason ?? finish;
    }
    assert.equal(reasoning, whole.choices[0].message.reasoning_content);
    assert.equal(content, whole.choices[0].message.content);
    assert.equal(finish, whole.choices[0].finish_reason);
    assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
  });

  test("its /metrics times requests as its clients see them: first token, chunks, end to end", async () => {
    const before = await (await fetch(`${gw.url}/metrics`)).text();
    const count = (text: string, name: string) => Number(new RegExp(`^dsv4_${name}_count (\\d+)$`, "m").exec(text)?.[1] ?? NaN);
    const body = { model: MODEL, messages: [{ role: "user", content: "Time me" }], thinking: { type: "disabled" }, max_tokens: 8, seed: 5, stream: true };
    const r = await postJson(`${gw.url}/chat/completions`, body);
    assert.equal(r.status, 200);
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    for (const name of ["time_to_first_token_seconds", "e2e_request_latency_seconds", "request_queue_time_seconds"]) {
      assert.equal(count(text, name), count(before, name) + 1, name);
    }
    assert.ok(count(text, "inter_token_latency_seconds") >= count(before, "inter_token_latency_seconds"));
    assert.equal(count(text, "request_generation_tokens"), count(before, "request_generation_tokens") + 1);
  });

  test("a stop string ends the content where a direct replica ends it", async () => {
    const probe = await postJson(`${reps[1]!.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "Stop test" }], thinking: { type: "disabled" }, max_tokens: 12, seed: 4 });
    const text: string = probe.json.choices[0].message.content;
    const stop = text.slice(3, 5);
    assert.ok(stop.length > 0, "the probe produced content to stop on");
    const body = { model: MODEL, messages: [{ role: "user", content: "Stop test" }], thinking: { type: "disabled" }, max_tokens: 12, seed: 4, stop: [stop] };
    const direct = await postJson(`${reps[1]!.url}/chat/completions`, body);
    const via = await postJson(`${gw.url}/chat/completions`, body);
    assert.deepEqual(essence(via.json), essence(direct.json));
    assert.ok(!via.json.choices[0].message.content.includes(stop));
  });

  test("FIM under /beta: the same completion as a replica's", async () => {
    const body = { model: MODEL, prompt: "def add(a, b):\n", suffix: "\n", max_tokens: 8, seed: 2 };
    const direct = await postJson(`${reps[2]!.url}/beta/completions`, body);
    const via = await postJson(`${gw.url}/beta/completions`, body);
    assert.equal(via.status, 200);
    assert.deepEqual(essence(via.json), essence(direct.json));
  });

  test("vLLM's text completion (/v1/completions, text and token ids): the same as a replica's", async () => {
    for (const prompt of ["The quick brown fox", [100, 2000, 30000]]) {
      const body = { model: MODEL, prompt, max_tokens: 6, seed: 3, echo: true };
      const direct = await postJson(`${reps[2]!.url}/v1/completions`, body);
      const via = await postJson(`${gw.url}/v1/completions`, body);
      assert.equal(via.status, 200, via.text);
      assert.deepEqual(essence(via.json), essence(direct.json));
    }
  });

  test("the Anthropic Messages API through the SDK", async () => {
    const anthropic = new Anthropic({ baseURL: `${gw.url}/anthropic`, apiKey: "unused", maxRetries: 0 });
    const m = await anthropic.messages.create({ model: "claude-sonnet-5-5", max_tokens: 5, messages: [{ role: "user", content: "Hello" }] });
    assert.equal(m.stop_reason, "max_tokens");
    assert.equal(m.usage.output_tokens, 5);
    assert.ok(m.usage.input_tokens > 0);
  });

  test("/tokenize and /detokenize answer as a replica does, from the gateway's own tokenizer", async () => {
    const chat = { model: MODEL, messages: [{ role: "user", content: "Count my tokens" }], thinking: { type: "disabled" } };
    for (const [path, body] of [["/tokenize", chat], ["/v1/tokenize", { prompt: "Hello <｜User｜> world" }], ["/detokenize", { tokens: [0, 19923, 128803] }]] as const) {
      const direct = await postJson(`${reps[1]!.url}${path}`, body);
      const via = await postJson(`${gw.url}${path}`, body);
      assert.equal(via.status, 200);
      // The gateway's max_model_len is its own (the least of its replicas' and the checkpoint's).
      const { max_model_len: _direct, ...same } = direct.json;
      const { max_model_len: _via, ...viaSame } = via.json;
      assert.deepEqual(viaSame, same, path);
    }
  });

  test("a priority is passed on to the replicas, whose fcfs scheduling refuses it by name", async () => {
    const r = await postJson(`${gw.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "x" }], max_tokens: 2, priority: 3 });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, "priority");
    assert.match(r.json.error.message, /--scheduling-policy priority/);
  });

  test("ignore_eos: the same answer through the gateway as from a replica, to max_tokens", async () => {
    const body = { model: MODEL, messages: [{ role: "user", content: "Go on" }], max_tokens: 10, ignore_eos: true, seed: 4 };
    const direct = await postJson(`${reps[2]!.url}/chat/completions`, body);
    const via = await postJson(`${gw.url}/chat/completions`, body);
    assert.equal(via.status, 200);
    assert.deepEqual(essence(via.json), essence(direct.json));
    assert.equal(via.json.usage.completion_tokens, 10);
  });

  test("a request error from the text layer is the same 400 as a replica's", async () => {
    const body = { model: MODEL, messages: [{ role: "user", content: "x" }], reasoning_effort: "extreme" };
    const direct = await postJson(`${reps[0]!.url}/chat/completions`, body);
    const via = await postJson(`${gw.url}/chat/completions`, body);
    assert.equal(via.status, direct.status);
    assert.deepEqual(via.json, direct.json);
  });

  test("prefix affinity: turns of one conversation go to one replica, which then hits its cache", async () => {
    const before = dispatched(gw);
    const history: any[] = [{ role: "system", content: LONG_SYSTEM }, { role: "user", content: "First question?" }];
    const hits: number[] = [];
    for (let turn = 0; turn < 3; turn++) {
      const r = await postJson(`${gw.url}/chat/completions`, { model: MODEL, messages: history, thinking: { type: "disabled" }, max_tokens: 4, seed: turn });
      assert.equal(r.status, 200);
      hits.push(r.json.usage.prompt_cache_hit_tokens);
      history.push({ role: "assistant", content: r.json.choices[0].message.content }, { role: "user", content: `Follow-up ${turn}?` });
    }
    const after = dispatched(gw);
    const used = [...after].filter(([url, n]) => n > (before.get(url) ?? 0));
    assert.equal(used.length, 1, `all turns on one replica, got ${JSON.stringify([...after])}`);
    affine = used[0]![0];
    assert.ok(hits[0] === 0 && hits[1]! > 0 && hits[2]! >= hits[1]!, `later turns hit the cache of the first: ${hits}`);
  });

  /** A long stream through the gateway, read until content has come (a random-weight model may end early: the first seed still running). */
  async function runningStream(prompt: string): Promise<{ reader: ReadableStreamDefaultReader<Uint8Array>; text: string }> {
    const decoder = new TextDecoder();
    for (let seed = 1; seed < 10; seed++) {
      const stream = await fetch(`${gw.url}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: prompt }], thinking: { type: "disabled" }, max_tokens: 100_000, stream: true, seed }),
      });
      assert.equal(stream.status, 200);
      const reader = stream.body!.getReader();
      let text = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done || text.includes('"content":"')) break;
        text += decoder.decode(value);
      }
      if (text.includes('"content":"') && !text.includes('"finish_reason":"')) return { reader, text };
    }
    throw new Error("no seed streamed content without finishing");
  }

  test("/flush_cache goes to every replica, as SGLang's router sends it to its workers", async () => {
    const before = reps.reduce((n, r) => n + r.engine.metrics().prefix_cache_entries, 0);
    assert.ok(before > 0, "the affinity test left entries");
    const res = await postJson(`${gw.url}/flush_cache`, {});
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { flushed: true, entries: before });
    for (const r of reps) assert.equal(r.engine.metrics().prefix_cache_entries, 0);
  });

  test("a client that disconnects mid-stream stops the replica's generation", async () => {
    const { reader } = await runningStream("Leave mid-stream");
    const serving = gw.engine.replicas.find((r) => r.inFlight > 0)!;
    const target = reps.find((r) => r.url === serving.url)!;
    const cancelled = target.engine.metrics().requests_cancelled_total;
    assert.equal(target.engine.metrics().active_sequences, 1);
    await reader.cancel();
    await waitFor(() => target.engine.metrics().active_sequences === 0 && serving.inFlight === 0, 5000, "the replica's sequence to stop");
    assert.equal(target.engine.metrics().requests_cancelled_total, cancelled + 1);
  });

  test("a streamed answer whose replica dies ends with an error event, not a silent cut", async () => {
    const decoder = new TextDecoder();
    const running = await runningStream("Die mid-stream");
    const reader = running.reader;
    let text = running.text;
    const serving = gw.engine.replicas.find((r) => r.inFlight > 0)!;
    const target = reps.find((r) => r.url === serving.url)!;
    await kill(target);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    const events = sseData(text);
    const last = JSON.parse(events.at(-1)!);
    assert.ok(last.error, `the stream ends with an error event, got ${events.at(-1)}`);
    assert.match(last.error.message, /failed after \d+ generated tokens/);
    reps.splice(reps.indexOf(target), 1);
  });

  test("failover: with a replica dead, requests that had not started streaming all succeed elsewhere", async () => {
    // The replica that served this prefix before (the affinity test) dies before it is asked again.
    const dead = reps.find((r) => r.url === affine) ?? reps[0]!;
    await kill(dead);
    for (let i = 0; i < 6; i++) {
      const r = await postJson(`${gw.url}/chat/completions`, { model: MODEL, messages: [{ role: "system", content: LONG_SYSTEM }, { role: "user", content: `After the crash ${i}` }], max_tokens: 3, stream: i % 2 === 1 });
      assert.equal(r.status, 200, r.text);
    }
    const state = gw.engine.replicas.find((r) => r.url === dead.url)!;
    assert.equal(state.healthy, false);
    reps.splice(reps.indexOf(dead), 1);
  });
});

describe("gateway over a dsv4 replica spoken to as vLLM (its /v1/completions with token ids and return_token_ids)", () => {
  let rep: TestServer;
  let gw: RunningGateway;
  before(async () => {
    [rep] = await replicas(1);
    gw = await gatewayOver([rep], { kind: "vllm" });
  });
  after(async () => {
    await gw.close();
    await rep.close();
  });

  for (const stream of [false, true]) {
    test(`chat${stream ? ", streamed" : ""}: the replica's own answer`, async () => {
      const body = { model: MODEL, messages: [{ role: "user", content: "Hello through vLLM's protocol" }], thinking: { type: "enabled" }, max_tokens: 12, seed: 7, temperature: 0.8, top_k: 40 };
      const direct = await postJson(`${rep.url}/chat/completions`, body);
      if (!stream) {
        const via = await postJson(`${gw.url}/chat/completions`, body);
        assert.equal(via.status, 200, via.text);
        assert.deepEqual(essence(via.json), essence(direct.json));
        return;
      }
      const res = await fetch(`${gw.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body, stream: true }) });
      let reasoning = "";
      let content = "";
      for (const d of sseData(await res.text())) {
        if (d === "[DONE]") continue;
        const delta = JSON.parse(d).choices[0]?.delta ?? {};
        reasoning += delta.reasoning_content ?? "";
        content += delta.content ?? "";
      }
      assert.equal(reasoning, direct.json.choices[0].message.reasoning_content);
      assert.equal(content, direct.json.choices[0].message.content);
    });
  }

  test("the replica's vLLM-named load gauges are what the gateway reads", async () => {
    const text = await (await fetch(`${rep.url}/metrics`)).text();
    assert.match(text, /^vllm:num_requests_running\{model_name="[^"]+"\} \d+$/m);
    assert.match(text, /^vllm:num_requests_waiting\{model_name="[^"]+"\} \d+$/m);
  });
});

describe("gateway over a dsv4 replica spoken to as SGLang (its /generate)", () => {
  let rep: TestServer;
  let gw: RunningGateway;
  before(async () => {
    [rep] = await replicas(1);
    gw = await gatewayOver([rep], { kind: "sglang" });
  });
  after(async () => {
    await gw.close();
    await rep.close();
  });

  test("chat: the replica's own answer", async () => {
    const body = { model: MODEL, messages: [{ role: "user", content: "Hello through SGLang's protocol" }], thinking: { type: "enabled" }, max_tokens: 12, seed: 5, temperature: 0.7 };
    const direct = await postJson(`${rep.url}/chat/completions`, body);
    const via = await postJson(`${gw.url}/chat/completions`, body);
    assert.equal(via.status, 200, via.text);
    assert.deepEqual(essence(via.json), essence(direct.json));
  });

  test("the replica's SGLang-named load gauges are what such a gateway reads", async () => {
    const text = await (await fetch(`${rep.url}/metrics`)).text();
    assert.equal(protocolFor("sglang").load(text), 0, "idle: nothing running or queued");
    assert.match(text, /^sglang:token_usage\{model_name="[^"]+"\} [\d.e-]+$/m);
  });
});
