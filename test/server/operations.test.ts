/** Operations: X-Request-Id, one log record per request, token counters that move during generation. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { makeKey } from "../../src/server/auth.js";
import type { RequestRecord } from "../../src/server/request-log.js";
import { MODEL, postJson, realServer, serve, waitFor, type TestServer } from "./helpers.js";
import { ScriptedEngine } from "./scripted-engine.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const messages = [{ role: "user", content: "Hi" }];
const KEY = "sk-test-secret-key-9876";

describe("request ids and the request log, scripted engine", () => {
  let server: TestServer;
  const records: RequestRecord[] = [];
  const auth = { authorization: `Bearer ${KEY}` };
  before(async () => {
    const engine = new ScriptedEngine((request) => ({ pieces: ["Think.", "</think>", "Hello", "!", "<｜end▁of▁sentence｜>"], promptTokens: 12, cachedTokens: 0, delayMs: [request.stop ?? []].flat().includes("slow") ? 200 : 0 }));
    server = await serve(engine, { apiKeys: [makeKey(KEY)], requestLog: (r) => records.push(r) });
  });
  after(() => server.close());

  const lastRecord = async (id: string) => {
    await waitFor(() => records.some((r) => r.request_id === id));
    return records.find((r) => r.request_id === id)!;
  };

  test("a sane X-Request-Id is used and returned", async () => {
    const r = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages }, { ...auth, "x-request-id": "trace-42.a:b" });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-request-id"), "trace-42.a:b");
  });

  test("without one, or with an unusable one, a fresh UUID is returned", async () => {
    const none = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages }, auth);
    assert.match(none.headers.get("x-request-id")!, UUID);
    const bad = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages }, { ...auth, "x-request-id": "has spaces and \"quotes\"" });
    assert.match(bad.headers.get("x-request-id")!, UUID);
  });

  test("errors and streams carry it too", async () => {
    const invalid = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages, max_tokens: 0 }, { ...auth, "x-request-id": "err-1" });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.headers.get("x-request-id"), "err-1");
    const unauthorized = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages }, { "x-request-id": "err-2" });
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.headers.get("x-request-id"), "err-2");
    const missing = await fetch(`${server.url}/nowhere`, { headers: { ...auth, "x-request-id": "err-3" } });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get("x-request-id"), "err-3");
    const stream = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages, stream: true }, { ...auth, "x-request-id": "sse-1" });
    assert.equal(stream.headers.get("x-request-id"), "sse-1");
  });

  test("one record per request: id, route, model, key label, tokens, cost, finish reason; never the key", async () => {
    await postJson(`${server.url}/chat/completions`, { model: MODEL, messages }, { ...auth, "x-request-id": "log-1" });
    const r = await lastRecord("log-1");
    assert.equal(records.filter((x) => x.request_id === "log-1").length, 1);
    assert.equal(r.method, "POST");
    assert.equal(r.route, "/chat/completions");
    assert.equal(r.status, 200);
    assert.equal(r.model, MODEL);
    assert.equal(r.key, "…9876");
    assert.ok(!JSON.stringify(records).includes(KEY), "the key itself is never logged");
    assert.equal(r.prompt_tokens, 12);
    assert.equal(r.cached_tokens, 0);
    assert.equal(r.completion_tokens, 5);
    assert.equal(r.reasoning_tokens, 2);
    assert.ok(r.cost_usd! > 0);
    assert.equal(r.finish_reason, "stop");
    assert.equal(typeof r.ttft_ms, "number");
    assert.ok(r.duration_ms >= 0);
    assert.equal(r.client_disconnected, false);
    assert.equal(r.error, null);
  });

  test("a refused request is logged with its status and error", async () => {
    await postJson(`${server.url}/responses`, { model: MODEL, input: "Hi", previous_response_id: "resp_1" }, { ...auth, "x-request-id": "log-2" });
    const r = await lastRecord("log-2");
    assert.equal(r.status, 400);
    assert.equal(r.route, "/responses");
    assert.match(r.error!, /stateless/);
    assert.equal(r.completion_tokens, null);
  });

  test("a client that leaves mid-stream is logged as a disconnect", async () => {
    const controller = new AbortController();
    const res = await fetch(`${server.url}/chat/completions`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json", "x-request-id": "log-3" },
      body: JSON.stringify({ model: MODEL, messages, stream: true, stop: "slow" }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    const r = await lastRecord("log-3");
    assert.equal(r.client_disconnected, true);
  });

  test("health checks, load polls and metric scrapes are not logged", async () => {
    const before = records.length;
    await fetch(`${server.url}/health`);
    await fetch(`${server.url}/ping`);
    await fetch(`${server.url}/ping`, { method: "POST" });
    await fetch(`${server.url}/load`, { headers: auth });
    await fetch(`${server.url}/metrics`, { headers: auth });
    await postJson(`${server.url}/chat/completions`, { model: MODEL, messages }, { ...auth, "x-request-id": "log-4" });
    await lastRecord("log-4");
    assert.deepEqual(records.slice(before).map((r) => r.request_id), ["log-4"]);
  });
});

describe("token counters while generating, real engine", () => {
  let server: TestServer;
  before(async () => {
    server = await realServer();
  });
  after(() => server.close());

  const metric = async (name: string) => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    assert.ok(m, name);
    return Number(m[1]);
  };

  test("dsv4_generated_tokens_total and _per_second move before the generation ends", async () => {
    const maxTokens = 400;
    const res = await fetch(`${server.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages, max_tokens: maxTokens, stream: true, thinking: { type: "disabled" }, seed: 3 }),
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while ((text.match(/"content":"/g) ?? []).length < 8) {
      const { value, done } = await reader.read();
      assert.ok(!done, "the stream ended before 8 content chunks");
      text += decoder.decode(value, { stream: true });
    }
    // A stream whose client stops reading pauses, so the generation cannot finish while we look.
    const total = await metric("dsv4_generated_tokens_total");
    const rate = await metric("dsv4_generated_tokens_per_second");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const finished = /"finish_reason":"(\w+)"/.exec(text)?.[1];
    assert.ok(total > 0, `generated tokens counted during the generation (got ${total})`);
    if (finished === "length") assert.ok(total < maxTokens, `counted before the end (${total} of ${maxTokens})`);
    assert.ok(rate > 0, `a tokens/s rate during the generation (got ${rate})`);
  });

  test("capacity: the reserved state bytes and the budget they come out of", async () => {
    const budget = await metric("dsv4_state_budget_bytes");
    assert.ok(budget > 0, `budget ${budget}`);
    const reserved = await metric("dsv4_state_reserved_bytes");
    assert.ok(reserved >= 0 && reserved <= budget, `reserved ${reserved} of ${budget}`);
  });

  test("latency, step and request histograms: cumulative buckets up to +Inf, which equals the count", async () => {
    const r = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages, max_tokens: 8, thinking: { type: "disabled" } });
    assert.equal(r.status, 200);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    for (const name of ["time_to_first_token_seconds", "inter_token_latency_seconds", "e2e_request_latency_seconds", "request_queue_time_seconds", "step_tokens", "step_duration_seconds", "request_prompt_tokens", "request_generation_tokens"]) {
      const full = `dsv4_${name}`;
      assert.match(text, new RegExp(`^# TYPE ${full} histogram$`, "m"));
      const buckets = [...text.matchAll(new RegExp(`^${full}_bucket\\{le="([^"]+)"\\} (\\d+)$`, "gm"))];
      assert.ok(buckets.length > 10, `${full}: ${buckets.length} buckets`);
      assert.equal(buckets.at(-1)![1], "+Inf");
      const counts = buckets.map((b) => Number(b[2]));
      for (let i = 1; i < counts.length; i++) assert.ok(counts[i]! >= counts[i - 1]!, `${full}: cumulative`);
      const count = Number(new RegExp(`^${full}_count (\\d+)$`, "m").exec(text)![1]);
      assert.equal(counts.at(-1), count);
      assert.ok(count >= 1, `${full}: the completed request is counted`);
      assert.match(text, new RegExp(`^${full}_sum \\S+$`, "m"));
    }
    assert.match(text, /^dsv4_request_success_total\{finished_reason="(stop|length)"\} [1-9]\d*$/m);
  });

  test("vLLM's names for the core series, with model_name: what the Kubernetes inference gateway's endpoint picker and vLLM dashboards scrape", async () => {
    await postJson(`${server.url}/chat/completions`, { model: MODEL, messages, max_tokens: 4, thinking: { type: "disabled" } });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const value = (name: string) => {
      const m = new RegExp(`^${name}\\{model_name="${MODEL}"\\} (\\S+)$`, "m").exec(text);
      assert.ok(m, name);
      return Number(m[1]);
    };
    const twin = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)![1]);
    // The model server protocol's three required gauges.
    assert.equal(value("vllm:num_requests_waiting"), twin("dsv4_queue_depth"));
    assert.equal(value("vllm:num_requests_running"), twin("dsv4_active_sequences"));
    const usage = value("vllm:kv_cache_usage_perc");
    assert.ok(usage >= 0 && usage <= 1, `usage ${usage}`);
    assert.match(text, /^# TYPE vllm:kv_cache_usage_perc gauge$/m);
    // Counters equal their dsv4 twins (read from the same scrape).
    assert.equal(value("vllm:prompt_tokens_total"), twin("dsv4_prompt_tokens_total"));
    assert.equal(value("vllm:generation_tokens_total"), twin("dsv4_generated_tokens_total"));
    assert.equal(value("vllm:prefix_cache_hits_total"), twin("dsv4_prompt_cache_hit_tokens_total"));
    // Histograms carry the label on every bucket, the sum and the count.
    assert.match(text, new RegExp(`^vllm:time_to_first_token_seconds_bucket\\{model_name="${MODEL}",le="\\+Inf"\\} [1-9]\\d*$`, "m"));
    assert.match(text, new RegExp(`^vllm:time_to_first_token_seconds_count\\{model_name="${MODEL}"\\} [1-9]\\d*$`, "m"));
    assert.match(text, new RegExp(`^vllm:request_success_total\\{model_name="${MODEL}",finished_reason="(stop|length)"\\} [1-9]\\d*$`, "m"));
  });
});
