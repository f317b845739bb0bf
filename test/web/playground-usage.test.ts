/**
 * The usage view against the shared contract of GET /v1/usage (the gateway ledger's route:
 * key, budget, spend, recent requests). That route is another part's work and not on this branch,
 * so a stand-in server answers it exactly as the contract says, beside the built page and /models;
 * the view must appear for a 200 and stay away for a 404.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import puppeteer, { type Browser } from "puppeteer-core";
import { browserSkipReason, findChromium } from "../helpers/chromium.js";
import { repoRoot } from "../helpers/paths.js";

declare const document: any;

const skip = browserSkipReason();
const page = join(repoRoot, "dist", "playground");
const KEY = "sk-usage-key";

const usage = {
  object: "usage",
  key: { id: "key_1", name: "alice" },
  budget_usd: 5,
  spent_usd: 0.001234,
  reserved_usd: 0.0001,
  requests: 2,
  recent: [
    { request_id: "r2", created: 1_796_500_000, model: "deepseek-v4-flash", prompt_tokens: 300, prompt_cache_hit_tokens: 256, completion_tokens: 40, cost_usd: 0.00002, latency_ms: 412.5, upstream: "http://10.0.0.2:8000", finish_reason: "stop" },
    { request_id: "r1", created: 1_796_499_000, model: "deepseek-v4-flash", prompt_tokens: 290, prompt_cache_hit_tokens: 0, completion_tokens: 64, cost_usd: 0.0000585, latency_ms: 530, upstream: null, finish_reason: "length" },
  ],
};

/** The page's files, /models, and /v1/usage as the contract has it (404 when `withUsage` is off). */
function standIn(withUsage: boolean): Server {
  return createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const json = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (path === "/") return res.writeHead(200, { "content-type": "text/html" }).end(await readFile(join(page, "index.html")));
    if (path.startsWith("/playground/")) {
      const name = path.slice("/playground/".length);
      const type = name.endsWith(".js") ? "text/javascript" : "text/css";
      return res.writeHead(200, { "content-type": type }).end(await readFile(join(page, name)));
    }
    if (req.headers.authorization !== `Bearer ${KEY}`) return json(401, { error: { message: "Authentication Fails, Your api key is invalid", type: "authentication_error", param: null, code: "invalid_request_error" } });
    if (path === "/models") return json(200, { object: "list", data: [{ id: "deepseek-v4-flash", object: "model", owned_by: "deepseek" }] });
    if (path === "/v1/usage" && withUsage) return json(200, usage);
    return json(404, { error: { message: `Not Found: GET ${path}`, type: "invalid_request_error", param: "url", code: "not_found" } });
  });
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("the usage view", { skip }, () => {
  let browser: Browser;
  const servers: Server[] = [];
  before(async () => {
    browser = await puppeteer.launch({ executablePath: findChromium()!, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"] });
  });
  after(async () => {
    await browser?.close();
    for (const s of servers) s.close();
  });

  async function openWithKey(withUsage: boolean) {
    const server = standIn(withUsage);
    servers.push(server);
    const tab = await browser.newPage();
    await tab.goto(await listen(server), { waitUntil: "load" });
    await tab.type("#api-key", KEY);
    await tab.keyboard.press("Enter");
    await tab.waitForFunction(() => document.querySelectorAll("#model option").length > 0 && !document.querySelector("[role=alert]"));
    return tab;
  }

  test("a 200 from /v1/usage shows the key's spend, budget and recent requests", async () => {
    const tab = await openWithKey(true);
    await tab.waitForSelector("#usage-panel");
    await tab.click("#usage-panel > summary");
    const text = await tab.$eval("#usage-panel", (e) => e.textContent ?? "");
    assert.match(text, /alice/);
    assert.match(text, /spent \$0\.001234 of \$5\.00/);
    assert.match(text, /2 requests/);
    assert.equal(await tab.$$eval("#usage-panel tbody tr", (rows) => rows.length), 2);
    assert.match(text, /300 \(256\) \/ 40/);
  });

  test("a 404 from /v1/usage leaves the view out, without an error", async () => {
    const tab = await openWithKey(false);
    // The models answered (openWithKey); give the usage request the same time, then look.
    await tab.waitForNetworkIdle({ idleTime: 200 });
    assert.equal(await tab.$("#usage-panel"), null);
    assert.equal(await tab.$("[role=alert]"), null);
  });
});
