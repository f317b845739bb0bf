/**
 * SGLang's and vLLM's server-information routes on the real engine: a router written for those
 * servers reads the model, the server's settings and its health from dsv4 as they are.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { EngineError } from "../../src/engine/errors.js";
import { makeKey } from "../../src/server/auth.js";
import { repoRoot } from "../helpers/paths.js";
import { MODEL, realServer, serve, type TestServer } from "./helpers.js";
import { ScriptedEngine } from "./scripted-engine.js";

const KEY = "sk-server-info-test";
const auth = { authorization: `Bearer ${KEY}` };
const VERSION = (JSON.parse(readFileSync(`${repoRoot}/package.json`, "utf8")) as { version: string }).version;

describe("server information, real engine", () => {
  let server: TestServer;
  const get = async (path: string, headers: Record<string, string> = auth) => {
    const res = await fetch(`${server.url}${path}`, { headers });
    return { status: res.status, json: (await res.json()) as Record<string, any> };
  };
  before(async () => {
    server = await realServer({}, { apiKeys: [makeKey(KEY)] });
  });
  after(() => server.close());

  test("/get_model_info and /model_info name the served model and its tokenizer", async () => {
    for (const path of ["/get_model_info", "/model_info"]) {
      const { status, json } = await get(path);
      assert.equal(status, 200);
      assert.equal(json.model_path, MODEL);
      assert.equal(json.tokenizer_path, MODEL);
      assert.equal(json.is_generation, true);
      assert.equal(json.weight_version, server.engine.model.release);
    }
  });

  test("/get_server_info reports the settings /health does and the scheduler's state", async () => {
    const health = (await get("/health", {})).json;
    for (const path of ["/get_server_info", "/server_info"]) {
      const { status, json } = await get(path);
      assert.equal(status, 200);
      assert.equal(json.context_length, health.context_length);
      assert.equal(json.backend, health.backend);
      assert.equal(json.encoding, health.encoding);
      assert.equal(json.version, VERSION);
      assert.equal(json.internal_states.length, 1);
      assert.equal(json.internal_states[0].queued_requests, 0);
    }
  });

  test("/ping (GET and POST, SageMaker's health check as vLLM answers it) is /health, without a key", async () => {
    const health = (await get("/health", {})).json;
    for (const method of ["GET", "POST"]) {
      const res = await fetch(`${server.url}/ping`, { method });
      assert.equal(res.status, 200, method);
      assert.deepEqual(await res.json(), health);
    }
  });

  test("/load is vLLM's server_load, the requests running and queued: 0 when idle, with a key", async () => {
    assert.deepEqual((await get("/load")).json, { server_load: 0 });
    assert.equal((await get("/load", {})).status, 401);
  });

  test("/get_server_info has no draft vocabulary when drafts range over every id", async () => {
    assert.equal((await get("/get_server_info")).json.draft_vocab, null);
  });

  test("the information routes need a key like the API's", async () => {
    assert.equal((await get("/get_server_info", {})).status, 401);
  });

  test("/health_generate generates one token through the engine, without a key", async () => {
    const before = server.engine.metrics().requests_total;
    const { status, json } = await get("/health_generate", {});
    assert.equal(status, 200);
    assert.deepEqual(json, { status: "ok" });
    assert.equal(server.engine.metrics().requests_total, before + 1);
  });

  test("/version is the package's", async () => {
    assert.deepEqual((await get("/version")).json, { version: VERSION });
  });
});
describe("server information, a draft vocabulary", () => {
  let server: TestServer;
  before(async () => {
    server = await realServer({ speculative: { mode: "mtp", draftVocab: 1000 } });
  });
  after(() => server.close());

  test("/get_server_info names the drafter and how many ids its drafts range over", async () => {
    const json = (await (await fetch(`${server.url}/get_server_info`)).json()) as Record<string, unknown>;
    assert.equal(json.speculative_algorithm, "NEXTN");
    assert.equal(json.draft_vocab, server.engine.model.draftVocab);
    assert.ok((json.draft_vocab as number) >= 1000 && (json.draft_vocab as number) < (json.vocab_size as number));
  });
});

test("/health_generate is a 503 naming the cause when the engine cannot generate", async () => {
  const engine = new ScriptedEngine(() => ({ pieces: ["x"], failAfter: { tokens: 0, error: new EngineError("unavailable", "the model runner is down (test)") } }));
  const server = await serve(engine);
  try {
    const res = await fetch(`${server.url}/health_generate`);
    assert.equal(res.status, 503);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(error.code, "engine_unavailable");
    assert.match(error.message, /^unhealthy: a one-token generation failed: the model runner is down \(test\)$/);
  } finally {
    await server.close();
  }
});

test("/health_generate probes arriving while one runs share its generation", async () => {
  let calls = 0;
  const engine = new ScriptedEngine(() => {
    calls++;
    return { pieces: ["x"], delayMs: 300 };
  });
  const server = await serve(engine);
  try {
    const answers = await Promise.all(Array.from({ length: 5 }, () => fetch(`${server.url}/health_generate`)));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200]);
    assert.equal(calls, 1);
    assert.equal((await fetch(`${server.url}/health_generate`)).status, 200);
    assert.equal(calls, 2, "a later probe generates anew");
  } finally {
    await server.close();
  }
});

test("/load counts a request while it runs", async () => {
  const engine = new ScriptedEngine(() => ({ pieces: ["a", "b"], delayMs: 400 }));
  const server = await serve(engine);
  try {
    const running = fetch(`${server.url}/v1/chat/completions`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
    });
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(await (await fetch(`${server.url}/load`)).json(), { server_load: 1 });
    assert.equal((await running).status, 200);
    assert.deepEqual(await (await fetch(`${server.url}/load`)).json(), { server_load: 0 });
  } finally {
    await server.close();
  }
});

test("/ping is a 503 in the error envelope when the engine is unhealthy, as /health is", async () => {
  class Down extends ScriptedEngine {
    override health() {
      return { ok: false, reason: "the model runner is down (test)" };
    }
  }
  const server = await serve(new Down(() => ({ pieces: ["x"] })));
  try {
    for (const path of ["/health", "/ping"]) {
      const res = await fetch(`${server.url}${path}`);
      assert.equal(res.status, 503, path);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, "engine_unavailable");
    }
  } finally {
    await server.close();
  }
});
