/**
 * usage.cost and dsv4_cost_usd_total through the `openai` client: the prices
 * follow the checkpoint's release and, for 0731, the UTC hour the request
 * arrived at (an injected clock).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import OpenAI from "openai";
import { Engine } from "../../src/engine/engine.js";
import { parsePriceSchedule, PRICES_0731, type PriceSchedule } from "../../src/server/prices.js";
import { costOf } from "../../src/server/usage.js";
import { writeTinyCheckpoint } from "../../src/tiny/tiny.js";
import { MODEL, serve, type TestServer } from "./helpers.js";
import { ScriptedEngine } from "./scripted-engine.js";

const at = (hhmm: string) => Date.parse(`2026-08-20T${hhmm}:00Z`);
// 1,000 prompt tokens (400 from the cache) and 3 output tokens.
const STEP = { pieces: ["a", "</think>", "b"], promptTokens: 1000, cachedTokens: 400 };
const cost = (hit: number, miss: number, out: number) => Math.round((400 * hit + 600 * miss + 3 * out) * 1e6) / 1e12;
const OFF_PEAK_0731 = cost(0.007, 0.22, 0.66);
const PEAK_0731 = cost(0.014, 0.44, 1.32);

const servers: TestServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

/** A server over a scripted engine of the given release, its clock at `now()`. */
async function start(release: "april" | "0731", now: () => number, prices?: PriceSchedule) {
  const engine = new ScriptedEngine(() => STEP, { release, encoding: release });
  const server = await serve(engine, { clock: now, ...(prices ? { prices } : {}) });
  servers.push(server);
  return { server, client: new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 }) };
}

async function costOfOne(client: OpenAI, stream = false): Promise<number> {
  const body = { model: MODEL, messages: [{ role: "user" as const, content: "Hi" }] };
  if (!stream) return ((await client.chat.completions.create(body)).usage as any).cost;
  let usage: any;
  for await (const chunk of await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } })) usage = chunk.usage ?? usage;
  return usage.cost;
}

const metricCost = async (server: TestServer) => Number(/^dsv4_cost_usd_total (\S+)$/m.exec(await (await fetch(`${server.url}/metrics`)).text())![1]);

describe("prices through the server", () => {
  test("0731 weights off-peak pay the 0731 off-peak table", async () => {
    const { client } = await start("0731", () => at("12:00"));
    assert.equal(await costOfOne(client), OFF_PEAK_0731);
  });

  test("0731 weights at peak pay twice that, streamed or not", async () => {
    const { client } = await start("0731", () => at("02:30"));
    assert.equal(await costOfOne(client), PEAK_0731);
    assert.equal(await costOfOne(client, true), PEAK_0731);
  });

  test("April weights pay the April table, at peak hours too", async () => {
    const { client } = await start("april", () => at("02:30"));
    assert.equal(await costOfOne(client), cost(0.0028, 0.14, 0.28));
  });

  test("the arrival time decides: a request accepted at 03:59 and finished after 04:00 pays peak", async () => {
    let now = at("03:59");
    const engine = new ScriptedEngine(() => {
      now = at("04:00"); // the engine runs after the request was accepted
      return STEP;
    }, { release: "0731", encoding: "0731" });
    const server = await serve(engine, { clock: () => now });
    servers.push(server);
    const client = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
    assert.equal(await costOfOne(client), PEAK_0731);
    assert.equal(now, at("04:00"));
  });

  test("a prices option replaces the release's default, windows included", async () => {
    const prices = parsePriceSchedule({ cache_hit_input: 0, cache_miss_input: 1, output: 2, windows: [{ name: "lunch", utc: "12:00-13:00", output: 20 }] });
    let now = at("02:30");
    const { client } = await start("0731", () => now, prices);
    assert.equal(await costOfOne(client), cost(0, 1, 2), "0731's peak window is gone");
    now = at("12:15");
    assert.equal(await costOfOne(client), cost(0, 1, 20));
  });

  test("dsv4_cost_usd_total adds each request at its own prices", async () => {
    let now = at("12:00");
    const { server, client } = await start("0731", () => now);
    await costOfOne(client);
    now = at("08:00");
    await costOfOne(client);
    assert.equal(Math.round((await metricCost(server)) * 1e12), Math.round((OFF_PEAK_0731 + PEAK_0731) * 1e12));
  });
});

test("a real 0731 checkpoint (tiny-0731) defaults to the 0731 prices: usage.cost at peak", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dsv4-billing-0731-"));
  try {
    await writeTinyCheckpoint(dir, { preset: "tiny-0731", seed: 1 });
    const engine = await Engine.load(dir, { speculative: { enabled: false } });
    const server = await serve(engine, { clock: () => at("08:00") }, () => engine.dispose());
    servers.push(server);
    const client = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
    const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 2 });
    const usage = r.usage as any;
    assert.equal(usage.cost, costOf(usage, PRICES_0731.windows[0]!.prices));
    assert.ok(usage.cost > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
