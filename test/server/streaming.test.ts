/** Stream lifecycle: disconnects cancel generation, keep-alives while waiting, routes and metrics. */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { MODEL, postJson, realServer, serve, sseData, waitFor, type TestServer } from "./helpers.js";
import { ScriptedEngine } from "./scripted-engine.js";

describe("streams on the real engine", () => {
  let server: TestServer;
  before(async () => {
    server = await realServer();
  });
  after(() => server.close());

  for (const stream of [true, false]) {
    test(`a client that disconnects cancels its generation at once (${stream ? "streaming" : "non-streaming"})`, async () => {
      const m = () => server.engine.metrics();
      const cancelledBefore = m().requests_cancelled_total;
      const body = JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Tell me a long story." }], max_tokens: 2000, stream, ignore_eos: true });
      const url = new URL(`${server.url}/chat/completions`);
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers: { "content-type": "application/json" } });
      req.on("error", () => undefined);
      req.end(body);
      if (stream) {
        // Wait for generated tokens, then hang up.
        await new Promise<void>((resolve) => {
          req.on("response", (res) => {
            let seen = 0;
            res.on("data", (d: Buffer) => {
              seen += (d.toString().match(/reasoning_content":"[^"]/g) ?? []).length;
              if (seen >= 2) resolve();
            });
          });
        });
      } else {
        await waitFor(() => m().active_sequences > 0, 5000, "generation to start");
      }
      const t0 = Date.now();
      req.destroy();
      await waitFor(() => m().active_sequences === 0, 2000, "the sequence to be freed");
      assert.ok(Date.now() - t0 < 1000, "freed within a step or two");
      assert.equal(m().requests_cancelled_total, cancelledBefore + 1);
      assert.ok(m().generated_tokens_total < 2000);
    });
  }

  test("both route prefixes and the beta prefix serve chat; /health and /metrics answer", async () => {
    for (const path of ["/chat/completions", "/v1/chat/completions", "/beta/chat/completions"]) {
      const r = await postJson(server.url + path, { model: MODEL, messages: [{ role: "user", content: "x" }], max_tokens: 1 });
      assert.equal(r.status, 200, path);
    }
    const health = await (await fetch(`${server.url}/health`)).json() as { status: string };
    assert.equal(health.status, "ok");
    const res = await fetch(`${server.url}/metrics`);
    assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const name of ["dsv4_generated_tokens_per_second", "dsv4_queue_depth", "dsv4_active_sequences", "dsv4_prompt_cache_hit_ratio", "dsv4_cost_usd_total"]) {
      assert.match(text, new RegExp(`^# TYPE ${name} (gauge|counter)$`, "m"), name);
      assert.match(text, new RegExp(`^${name} [0-9.e+-]+$`, "m"), name);
    }
    assert.match(text, /^dsv4_http_requests_total\{route="\/v1\/chat\/completions",status="200"\} 1$/m);
    assert.ok(Number(/^dsv4_cost_usd_total (\S+)$/m.exec(text)![1]) > 0);
  });
});

describe("keep-alives", () => {
  let server: TestServer;
  before(async () => {
    const engine = new ScriptedEngine(() => ({ pieces: ["a", "</think>", "b", "<｜end▁of▁sentence｜>"], delayMs: 120 }));
    server = await serve(engine, { keepAliveMs: 50 });
  });
  after(() => server.close());

  test("SSE comments while the model is silent; clients see the same data", async () => {
    const r = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "x" }], stream: true });
    assert.match(r.text, /^: keep-alive$/m);
    const data = sseData(r.text);
    assert.equal(data[data.length - 1], "[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    assert.equal(chunks.map((c) => c.choices[0]?.delta.reasoning_content ?? "").join(""), "a");
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), "b");
  });

  test("blank lines before a slow JSON body; the body still parses", async () => {
    const r = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "x" }] });
    assert.equal(r.status, 200);
    assert.match(r.text, /^\n+\{/);
    assert.equal(r.json.choices[0].message.content, "b");
  });

  test("Anthropic streams ping instead", async () => {
    const r = await postJson(`${server.url}/anthropic/v1/messages`, { model: "claude-haiku-5", max_tokens: 10, stream: true, messages: [{ role: "user", content: "x" }] });
    assert.match(r.text, /^event: ping\ndata: \{"type": "ping"\}$/m);
  });
});

describe("CORS", () => {
  test("off by default; on for the configured origins, preflight included", async () => {
    const engine = new ScriptedEngine(() => ({ pieces: ["x"] }));
    const closed = await serve(engine);
    const open = await serve(engine, { cors: ["https://app.example"] });
    try {
      const plain = await fetch(`${closed.url}/models`, { headers: { origin: "https://app.example" } });
      assert.equal(plain.headers.get("access-control-allow-origin"), null);
      const allowed = await fetch(`${open.url}/models`, { headers: { origin: "https://app.example" } });
      assert.equal(allowed.headers.get("access-control-allow-origin"), "https://app.example");
      const other = await fetch(`${open.url}/models`, { headers: { origin: "https://evil.example" } });
      assert.equal(other.headers.get("access-control-allow-origin"), null);
      const pre = await fetch(`${open.url}/chat/completions`, {
        method: "OPTIONS",
        headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
      });
      assert.equal(pre.status, 204);
      assert.match(pre.headers.get("access-control-allow-methods")!, /POST/);
    } finally {
      await closed.close();
      await open.close();
    }
  });
});
