/**
 * Prefix-cache isolation through the real server: a cache hit is visible in usage, so one API
 * key must never hit another key's entries (a prefix oracle), except inside a system prompt the
 * operator declared shareable.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { makeKey } from "../../src/server/auth.js";
import { MODEL, postJson, realServer, type TestServer } from "./helpers.js";

const BLOCK = 16;
const SYSTEM = "You are the help desk of a hardware shop. Be concise and polite, quote prices in euros, and suggest at most two products per answer. ".repeat(2);

describe("prefix cache isolation between API keys", () => {
  let server: TestServer;
  before(async () => {
    server = await realServer(
      { prefixCache: { blockTokens: BLOCK, sharedPrefixes: [SYSTEM] } },
      { apiKeys: [makeKey("sk-tenant-one"), makeKey("sk-tenant-two")] },
    );
  });
  after(() => server.close());

  const chat = async (key: string, messages: object[], extra: object = {}) => {
    const r = await postJson(
      `${server.url}/chat/completions`,
      { model: MODEL, messages, max_tokens: 1, thinking: { type: "disabled" }, ...extra },
      { authorization: `Bearer ${key}` },
    );
    assert.equal(r.status, 200, r.text);
    return r.json.usage as { prompt_tokens: number; prompt_cache_hit_tokens: number };
  };
  const longUser = (tag: string) => [{ role: "user", content: `${tag}: ` + "please summarise the attached quarterly report in three bullet points. ".repeat(6) }];

  test("a second key sending the first key's prompt gets no hit; each key hits its own entries", async () => {
    const prompt = longUser("isolation");
    assert.equal((await chat("sk-tenant-one", prompt)).prompt_cache_hit_tokens, 0);
    const again = await chat("sk-tenant-one", prompt);
    assert.ok(again.prompt_cache_hit_tokens > 0, "the same key hits");
    assert.equal((await chat("sk-tenant-two", prompt)).prompt_cache_hit_tokens, 0, "another key does not");
    assert.equal((await chat("sk-tenant-two", prompt)).prompt_cache_hit_tokens, again.prompt_cache_hit_tokens, "it builds its own");
  });

  test("user_id still isolates within one key", async () => {
    const prompt = longUser("users");
    assert.equal((await chat("sk-tenant-one", prompt, { user_id: "alice" })).prompt_cache_hit_tokens, 0);
    assert.ok((await chat("sk-tenant-one", prompt, { user_id: "alice" })).prompt_cache_hit_tokens > 0);
    assert.equal((await chat("sk-tenant-one", prompt, { user_id: "bob" })).prompt_cache_hit_tokens, 0);
    assert.equal((await chat("sk-tenant-one", prompt)).prompt_cache_hit_tokens, 0, "no user_id is another user too");
  });

  test("a shareable system prompt's blocks hit across keys; the rest of the prompt does not", async () => {
    const messages = [{ role: "system", content: SYSTEM }, { role: "user", content: "Which cordless drill should I buy for occasional use at home, and why?" }];
    const full = server.engine.promptTokens({ messages: messages as never, thinking: { type: "disabled" } });
    const alone = server.engine.promptTokens({ messages: [messages[0]] as never, thinking: { type: "disabled" } });
    let shared = 0;
    while (shared < alone.length && alone[shared] === full[shared]) shared++;
    const sharedBlocks = Math.floor(shared / BLOCK) * BLOCK;
    const ownBlocks = Math.floor((full.length - 1) / BLOCK) * BLOCK;
    assert.ok(sharedBlocks >= 2 * BLOCK && ownBlocks > sharedBlocks, `test prompt too short: ${shared} shared of ${full.length}`);

    assert.equal((await chat("sk-tenant-one", messages)).prompt_cache_hit_tokens, 0);
    assert.equal((await chat("sk-tenant-two", messages)).prompt_cache_hit_tokens, sharedBlocks, "key two reuses the shared system prompt only");
    assert.equal((await chat("sk-tenant-one", messages)).prompt_cache_hit_tokens, ownBlocks, "key one has its whole prompt");
    assert.equal((await chat("sk-tenant-two", messages, { user_id: "carol" })).prompt_cache_hit_tokens, sharedBlocks, "shared across user ids too");

    // The same question under another (unshared) system prompt shares nothing.
    const other = [{ role: "system", content: SYSTEM.toUpperCase() }, messages[1]];
    assert.equal((await chat("sk-tenant-one", other)).prompt_cache_hit_tokens, 0);
    assert.equal((await chat("sk-tenant-two", other)).prompt_cache_hit_tokens, 0);
  });

  test("the Anthropic route isolates keys too (x-api-key)", async () => {
    const body = { model: "claude-sonnet-5-5", max_tokens: 1, messages: longUser("anthropic") };
    const send = async (key: string) => {
      const r = await postJson(`${server.url}/anthropic/v1/messages`, body, { "x-api-key": key, "anthropic-version": "2023-06-01" });
      assert.equal(r.status, 200, r.text);
      return r.json.usage.cache_read_input_tokens as number;
    };
    assert.equal(await send("sk-tenant-one"), 0);
    assert.ok((await send("sk-tenant-one")) > 0);
    assert.equal(await send("sk-tenant-two"), 0);
  });
});
