/**
 * The vLLM and SGLang adapters against loopback servers that replay the wire fixtures in
 * test/data/gateway/ (transcribed from those engines' docs and source): what the gateway sends,
 * and what it makes of what comes back.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { protocolFor, type UpstreamKind } from "../../src/gateway/protocols.js";
import type { RunningGateway } from "../../src/gateway/index.js";
import { testDataDir } from "../helpers/paths.js";
import { gatewayOver, MODEL, postJson, sseData } from "./helpers.js";

const fixture = (name: string) => readFileSync(join(testDataDir, "gateway", name), "utf8");

interface Replay {
  url: string;
  bodies: any[];
  server: Server;
}

/** A fake upstream: health, metrics, vLLM's model list, and the fixture for the generate path. */
async function replay(kind: "vllm" | "sglang"): Promise<Replay> {
  const bodies: any[] = [];
  const path = protocolFor(kind).path;
  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      if (req.url === "/health") return res.end("");
      if (req.url === "/metrics") return res.end(fixture(`${kind}-metrics.txt`));
      if (req.url === "/v1/models") return res.end(JSON.stringify({ object: "list", data: [{ id: "deepseek-ai/DeepSeek-V4-Flash", object: "model" }] }));
      if (req.url !== path) return res.writeHead(404).end();
      const body = JSON.parse(raw);
      bodies.push(body);
      const name = kind === "vllm" ? "vllm-completions" : "sglang-generate";
      if (body.stream) {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.end(fixture(`${name}-stream.sse`));
      } else {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(fixture(`${name}.json`));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, bodies, server };
}

for (const kind of ["vllm", "sglang"] as const satisfies readonly UpstreamKind[]) {
  describe(`${kind} upstream (replayed fixtures)`, () => {
    let up: Replay;
    let gw: RunningGateway;
    before(async () => {
      up = await replay(kind);
      gw = await gatewayOver([up], { kind });
    });
    after(async () => {
      await gw.close();
      up.server.close();
    });

    test("a chat answer parsed by the gateway: reasoning, content, finish, cached tokens", async () => {
      const r = await postJson(`${gw.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 50, seed: 3 });
      assert.equal(r.status, 200, r.text);
      const m = r.json.choices[0].message;
      assert.equal(m.reasoning_content, "Let me think");
      assert.equal(m.content, "Hello world!");
      assert.equal(r.json.choices[0].finish_reason, "stop");
      assert.equal(r.json.usage.completion_tokens, 7, "EOS is no output token");
      assert.equal(r.json.usage.completion_tokens_details.reasoning_tokens, 4);
      assert.equal(r.json.usage.prompt_cache_hit_tokens, 4);
    });

    test("Server-Timing: the upstream's own time where it reports one (SGLang's e2e_latency), else the gateway's wait", async () => {
      const res = await fetch(`${gw.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 50 }) });
      await res.text();
      const dur = Number(/^engine;dur=([\d.]+)$/.exec(res.headers.get("server-timing") ?? "")?.[1]);
      if (kind === "sglang") assert.equal(dur, 80, "the last chunk's e2e_latency, 0.08 s");
      else assert.ok(dur > 0 && dur < 10_000, `engine;dur=${dur}`);
    });

    test("streamed to the client the same way", async () => {
      const res = await fetch(`${gw.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 50, stream: true }) });
      const chunks = sseData(await res.text()).filter((d) => d !== "[DONE]").map((d) => JSON.parse(d));
      const content = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
      const reasoning = chunks.map((c) => c.choices[0]?.delta.reasoning_content ?? "").join("");
      assert.equal(reasoning, "Let me think");
      assert.equal(content, "Hello world!");
      assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");
    });

    test("the request carries the prompt as ids and asks for ids back, streamed", async () => {
      const sent = up.bodies.at(-1);
      assert.equal(sent.stream, true);
      if (kind === "vllm") {
        assert.ok(Array.isArray(sent.prompt) && sent.prompt.every(Number.isInteger));
        assert.equal(sent.return_token_ids, true);
        assert.equal(sent.model, "deepseek-ai/DeepSeek-V4-Flash");
        assert.deepEqual(sent.stream_options, { include_usage: true });
        assert.equal(sent.skip_special_tokens, false);
      } else {
        assert.ok(Array.isArray(sent.input_ids) && sent.input_ids.every(Number.isInteger));
        assert.equal(sent.sampling_params.max_new_tokens, 50);
        assert.equal(sent.sampling_params.skip_special_tokens, false);
        assert.equal(sent.dsv4, undefined, "SGLang refuses unknown fields");
      }
    });

    test("tool_choice that needs constrained decoding is refused with a 400 naming it", async () => {
      const tools = [{ type: "function", function: { name: "f", parameters: { type: "object", properties: {} } } }];
      const r = await postJson(`${gw.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "Hi" }], tools, tool_choice: "required" });
      assert.equal(r.status, 400);
      assert.equal(r.json.error.param, "tool_choice");
    });

    test(kind === "vllm" ? "a priority is passed on in vLLM's own field (lower first there too)" : "a priority is refused: SGLang's polarity is a flag of its server", async () => {
      const body = { model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 4, priority: -3 };
      const r = await postJson(`${gw.url}/chat/completions`, body);
      if (kind === "vllm") {
        assert.equal(r.status, 200);
        assert.equal(up.bodies.at(-1).priority, -3);
        await postJson(`${gw.url}/chat/completions`, { ...body, priority: 0 });
        assert.equal(up.bodies.at(-1).priority, undefined, "the default is not sent");
      } else {
        assert.equal(r.status, 400);
        assert.equal(r.json.error.param, "priority");
        assert.match(r.json.error.message, /schedule-low-priority-values-first/);
      }
    });

    test("ignore_eos and min_tokens reach the upstream as its own minimum-length field", async () => {
      await postJson(`${gw.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 9, ignore_eos: true });
      const sent = up.bodies.at(-1);
      if (kind === "vllm") assert.equal(sent.min_tokens, 9);
      else assert.equal(sent.sampling_params.min_new_tokens, 9);
      await postJson(`${gw.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 9, min_tokens: 2 });
      const next = up.bodies.at(-1);
      assert.equal(kind === "vllm" ? next.min_tokens : next.sampling_params.min_new_tokens, 2);
    });

    test("the non-streamed answer decodes to the same ids and counts", () => {
      const p = protocolFor(kind);
      const whole = p.answer(JSON.parse(fixture(kind === "vllm" ? "vllm-completions.json" : "sglang-generate.json")));
      const state = { seen: 0 };
      const streamed = sseData(fixture(kind === "vllm" ? "vllm-completions-stream.sse" : "sglang-generate-stream.sse"))
        .filter((d) => d !== "[DONE]")
        .map((d) => p.chunk(JSON.parse(d), state));
      assert.deepEqual(streamed.flatMap((c) => c.ids), whole.ids);
      assert.deepEqual(whole.finish, { reason: "stop" });
      assert.equal(whole.cachedTokens, 4);
    });

    test("load from the replica's metrics: running + waiting", () => {
      assert.equal(protocolFor(kind).load(fixture(`${kind}-metrics.txt`)), 5);
    });
  });
}
