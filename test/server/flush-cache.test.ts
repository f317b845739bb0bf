/**
 * SGLang's /flush_cache on the real engine (its bench_serving calls it before a run): a prompt
 * that hit the prefix cache misses after a flush, and a flush while a request runs is refused
 * with nothing dropped.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MODEL, postJson, realServer, type TestServer } from "./helpers.js";

const BLOCK = 16;
const messages = [{ role: "user", content: "please summarise the attached quarterly report in three bullet points. ".repeat(6) }];

describe("/flush_cache", () => {
  let server: TestServer;
  before(async () => {
    server = await realServer({ prefixCache: { blockTokens: BLOCK } });
  });
  after(() => server.close());

  const hits = async () => {
    const r = await postJson(`${server.url}/chat/completions`, { model: MODEL, messages, max_tokens: 1, thinking: { type: "disabled" } });
    assert.equal(r.status, 200, r.text);
    return (r.json.usage as { prompt_cache_hit_tokens: number }).prompt_cache_hit_tokens;
  };

  test("after a flush the same prompt misses, and the cache is empty", async () => {
    await hits();
    assert.ok((await hits()) > 0, "the repeated prompt hits before the flush");
    const res = await fetch(`${server.url}/flush_cache`, { method: "POST" });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { flushed: boolean; entries: number };
    assert.equal(body.flushed, true);
    assert.ok(body.entries > 0);
    assert.equal(server.engine.metrics().prefix_cache_entries, 0);
    assert.equal(await hits(), 0, "the first request after the flush misses");
  });

  test("while a request runs, a flush is a 400 naming why, and drops nothing", async () => {
    await hits();
    const entries = server.engine.metrics().prefix_cache_entries;
    assert.ok(entries > 0);
    const abort = new AbortController();
    const running = fetch(`${server.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "count" }], max_tokens: 100000, stream: true }),
      signal: abort.signal,
    });
    const res = await running;
    const reader = res.body!.getReader();
    await reader.read(); // the stream has started: the request runs
    try {
      const flush = await fetch(`${server.url}/flush_cache`);
      assert.equal(flush.status, 400);
      const { error } = (await flush.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, "cache_not_flushed");
      assert.match(error.message, /^the prefix cache was not flushed: 1 request is running or waiting; flush when the server is idle$/);
      assert.equal(server.engine.metrics().prefix_cache_entries, entries);
    } finally {
      abort.abort();
      await reader.cancel().catch(() => undefined);
    }
  });
});
