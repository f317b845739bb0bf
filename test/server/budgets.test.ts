/**
 * Budgets through the server (issue 16): a request reserves its worst-case cost before the engine
 * sees it, is refused with a 402 when that does not fit, and settles with its response's
 * usage.cost; a failed or abandoned request pays what it consumed and releases the rest.
 * GET /usage shows the caller's own account (the contract the playground reads).
 */
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, describe, test } from "node:test";
import { MemoryLedger } from "../../src/ledger/memory-ledger.js";
import { makeKey } from "../../src/server/auth.js";
import { worstCaseUsd } from "../../src/server/billing.js";
import { DEFAULT_PRICES } from "../../src/server/prices.js";
import { costOf } from "../../src/server/usage.js";
import { MODEL, postJson, serve, sseData, type TestServer } from "./helpers.js";
import { ScriptedEngine } from "./scripted-engine.js";

const KEY = "sk-budget-test-0001";
const auth = { authorization: `Bearer ${KEY}` };
const PROMPT = 1000;
const MAX_TOKENS = 8;
const WORST = worstCaseUsd(PROMPT, MAX_TOKENS, DEFAULT_PRICES);
const chat = { model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: MAX_TOKENS };

/** The scripted engine, its prompt as long as the script says (what a reservation counts). */
class Scripted extends ScriptedEngine {
  override promptTokens(): number[] {
    return new Array<number>(PROMPT).fill(0);
  }
}

const servers: TestServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

async function start(budgetUsd: number | undefined, delayMs = 0, overrides: Parameters<typeof serve>[1] = {}) {
  const engine = new Scripted(() => ({ pieces: ["a", "</think>", "b"], promptTokens: PROMPT, cachedTokens: 400, delayMs }));
  const server = await serve(engine, { apiKeys: [makeKey(KEY, budgetUsd)], ...overrides });
  servers.push(server);
  return server;
}

const usageOf = async (server: TestServer, headers: Record<string, string> = auth) => {
  const res = await fetch(`${server.url}/v1/usage`, { headers });
  return { status: res.status, json: (await res.json()) as any };
};

describe("budgets reserved before dispatch", () => {
  test("64 concurrent requests on a budget of a few requests never overspend, and the ledger equals the responses' usage.cost", async () => {
    const budget = 3.5 * WORST;
    const server = await start(budget, 5);
    const answers = await Promise.all(Array.from({ length: 64 }, () => postJson(`${server.url}/chat/completions`, chat, auth)));
    const ok = answers.filter((a) => a.status === 200);
    assert.ok(ok.length >= 3, `${ok.length} requests served`);
    assert.ok(answers.every((a) => a.status === 200 || (a.status === 402 && a.json.error.message === "Insufficient Balance")));
    const responsesSum = ok.reduce((s, a) => s + BigInt(Math.round(a.json.usage.cost * 1e12)), 0n);
    const usage = (await usageOf(server)).json;
    assert.ok(usage.spent_usd <= budget, `spent ${usage.spent_usd} of ${budget}`);
    assert.equal(usage.spent_usd, Number(responsesSum) / 1e12);
    assert.equal(usage.requests, ok.length);
    assert.equal(usage.reserved_usd, 0);
  });

  test("a request whose worst case does not fit what is left gets 402 before the engine sees it", async () => {
    const server = await start(WORST * 0.99);
    const r = await postJson(`${server.url}/chat/completions`, chat, auth);
    assert.equal(r.status, 402);
    assert.equal((server.engine as ScriptedEngine).requests.length, 0);
    assert.equal(r.json.error.type, "unknown_error");
  });

  test("a smaller max_tokens makes a request fit", async () => {
    const server = await start(worstCaseUsd(PROMPT, 4, DEFAULT_PRICES));
    assert.equal((await postJson(`${server.url}/chat/completions`, chat, auth)).status, 402);
    assert.equal((await postJson(`${server.url}/chat/completions`, { ...chat, max_tokens: 4 }, auth)).status, 200);
  });

  test("a request refused by the engine releases its hold and leaves a row of cost 0", async () => {
    const engine = new Scripted(() => ({ pieces: [], refuse: new Error("refused") }));
    const server = await serve(engine, { apiKeys: [makeKey(KEY, 1)] });
    servers.push(server);
    assert.equal((await postJson(`${server.url}/chat/completions`, chat, auth)).status, 500);
    const usage = (await usageOf(server)).json;
    assert.equal(usage.reserved_usd, 0);
    assert.equal(usage.spent_usd, 0);
    assert.deepEqual([usage.recent[0].finish_reason, usage.recent[0].cost_usd], ["error", 0]);
  });

  test("a stream abandoned mid-way pays its prompt and the tokens it generated; the rest is released", async () => {
    const engine = new Scripted(() => ({ pieces: Array.from({ length: 400 }, () => "x"), promptTokens: PROMPT, cachedTokens: 0, delayMs: 5 }));
    const server = await serve(engine, { apiKeys: [makeKey(KEY, 1)] });
    servers.push(server);
    // A raw socket, destroyed after a few events: a client that really goes away.
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${server.url}/chat/completions`, { method: "POST", headers: { ...auth, "content-type": "application/json" } }, (res) => {
        let seen = "";
        res.on("data", (chunk: Buffer) => {
          seen += chunk.toString();
          if (sseData(seen).length >= 4) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on("error", () => undefined);
      req.on("close", () => resolve());
      req.end(JSON.stringify({ ...chat, max_tokens: 400, stream: true }));
      setTimeout(() => reject(new Error("no events")), 10_000).unref();
    });
    let usage: any;
    for (let i = 0; i < 100; i++) {
      usage = (await usageOf(server)).json;
      if (usage.requests === 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const row = usage.recent[0];
    assert.equal(row.finish_reason, "cancelled");
    assert.equal(row.prompt_tokens, PROMPT);
    assert.ok(row.completion_tokens >= 2 && row.completion_tokens < 400, `${row.completion_tokens} tokens`);
    assert.equal(row.cost_usd, costOf({ prompt_cache_hit_tokens: 0, prompt_cache_miss_tokens: PROMPT, completion_tokens: row.completion_tokens }, DEFAULT_PRICES));
    assert.equal(usage.spent_usd, row.cost_usd);
    assert.equal(usage.reserved_usd, 0);
  });
});

describe("GET /usage", () => {
  test("the caller's key, budget, spend, holds and newest rows first, in the shared contract's shape", async () => {
    const server = await start(1);
    const first = await postJson(`${server.url}/chat/completions`, chat, { ...auth, "x-request-id": "first-one" });
    await postJson(`${server.url}/chat/completions`, chat, { ...auth, "x-request-id": "second-one" });
    const { status, json } = await usageOf(server);
    assert.equal(status, 200);
    assert.deepEqual(Object.keys(json), ["object", "key", "budget_usd", "spent_usd", "reserved_usd", "requests", "recent"]);
    assert.equal(json.object, "usage");
    assert.deepEqual(json.key, { id: makeKey(KEY).id, name: null });
    assert.equal(json.budget_usd, 1);
    assert.equal(json.requests, 2);
    assert.deepEqual(json.recent.map((r: any) => r.request_id), ["second-one", "first-one"]);
    const row = json.recent[1];
    assert.deepEqual(Object.keys(row), ["request_id", "created", "model", "prompt_tokens", "prompt_cache_hit_tokens", "completion_tokens", "cost_usd", "latency_ms", "upstream", "finish_reason"]);
    assert.deepEqual(
      { model: row.model, prompt: row.prompt_tokens, hit: row.prompt_cache_hit_tokens, completion: row.completion_tokens, cost: row.cost_usd, upstream: row.upstream, finish: row.finish_reason },
      { model: MODEL, prompt: PROMPT, hit: 400, completion: 3, cost: first.json.usage.cost, upstream: null, finish: "stop" },
    );
    assert.ok(Number.isInteger(row.created) && row.latency_ms >= 0);
    assert.equal((await fetch(`${server.url}/usage`, { headers: auth })).status, 200);
  });

  test("without keys the route is 404, with a wrong key 401, both in the error envelope", async () => {
    const open = await serve(new Scripted(() => ({ pieces: ["a"] })));
    servers.push(open);
    const none = await usageOf(open, {});
    assert.equal(none.status, 404);
    assert.equal(none.json.error.code, "not_found");
    const keyed = await start(undefined);
    const wrong = await usageOf(keyed, { authorization: "Bearer sk-wrong" });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error.type, "authentication_error");
  });

  test("an unlimited key reports a null budget", async () => {
    const server = await start(undefined);
    assert.equal((await usageOf(server)).json.budget_usd, null);
  });
});

describe("keys in the ledger", () => {
  test("keys created after start are accepted once re-read; disabled ones are refused", async () => {
    const ledger = new MemoryLedger();
    const server = await serve(new Scripted(() => ({ pieces: ["a"] })), { ledger, keyRefreshMs: 20 });
    servers.push(server);
    const { key, plain } = await ledger.createKey({ name: "late", budgetUsd: null });
    const headers = { authorization: `Bearer ${plain}` };
    const status = async () => (await fetch(`${server.url}/models`, { headers })).status;
    for (let i = 0; i < 100 && (await status()) !== 200; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await status(), 200);
    const usage = (await usageOf(server, headers)).json;
    assert.deepEqual(usage.key, { id: key.id, name: "late" });
    await ledger.disableKey(key.id);
    for (let i = 0; i < 100 && (await status()) !== 401; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await status(), 401);
  });

  test("/user/balance is the budget less the spend", async () => {
    const server = await start(1);
    const r = await postJson(`${server.url}/chat/completions`, chat, auth);
    const balance = (await (await fetch(`${server.url}/user/balance`, { headers: auth })).json()) as any;
    assert.equal(balance.balance_infos[0].total_balance, (1 - r.json.usage.cost).toFixed(6));
    assert.equal(balance.is_available, true);
  });
});
