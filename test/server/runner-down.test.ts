/**
 * A server whose model runner thread died answers GET /health with a 503 in the error envelope
 * (so a liveness probe restarts it) and refuses requests with a 503 saying why.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Engine } from "../../src/engine/engine.js";
import { killRunner } from "../helpers/runner.js";
import { MODEL, postJson, realServer, type TestServer } from "./helpers.js";

describe("a server whose model runner died", () => {
  let server: TestServer;
  before(async () => {
    server = await realServer();
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
    await killRunner(server.engine as Engine);
  });
  after(() => server.close());

  test("/health is a 503 naming the cause", async () => {
    const res = await fetch(`${server.url}/health`);
    assert.equal(res.status, 503);
    const { error } = (await res.json()) as { error: { message: string; code: string } };
    assert.equal(error.code, "engine_unavailable");
    assert.match(error.message, /^unhealthy: the model runner is down: the model runner thread exited/);
  });

  test("a chat request is a 503, not a 500", async () => {
    const res = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "Hi" }] });
    assert.equal(res.status, 503);
    const { error } = res.json as { error: { message: string; code: string } };
    assert.equal(error.code, "engine_unavailable");
    assert.match(error.message, /restarted/);
  });
});
