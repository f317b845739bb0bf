/**
 * The web playground in a real headless Chromium (puppeteer-core) against a real `dsv4 serve` of
 * the default model, started with a keys file: the key prompt and a wrong key's error, a message
 * streaming in, the reasoning opened from the keyboard, a forced tool call answered by hand, the
 * conversation kept across a reload, exported and imported back, keyboard-only sending, and the
 * page at 360 px and in dark mode. Screenshots go to test-output/playground/.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, test } from "node:test";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { browserSkipReason, findChromium } from "../helpers/chromium.js";
import { startCli } from "../helpers/cli-process.js";
import { repoRoot } from "../helpers/paths.js";

// The callbacks given to page.evaluate and friends run in the browser; this suite is compiled
// without the DOM library, so they see these names loosely typed.
declare const document: any, window: any, MutationObserver: any, getComputedStyle: any;
type HTMLElement = any;
type HTMLDetailsElement = any;
type HTMLSelectElement = any;

const skip = browserSkipReason();
const cli = join(repoRoot, "dist", "src", "cli", "main.js");
export const screenshotDir = join(repoRoot, "test-output", "playground");
const KEY = "sk-playground-right-key";

/** The one finished .json download in `dir`. */
async function downloaded(dir: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const done = readdirSync(dir).filter((f) => f.endsWith(".json"));
    if (done.length > 0) return join(dir, done[0]!);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`nothing was downloaded to ${dir}`);
}

describe("the web playground in Chromium", { skip }, () => {
  let home: string;
  let server: ChildProcess | undefined;
  let url: string;
  let browser: Browser;
  let page: Page;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), "dsv4-playground-browser-"));
    const keys = join(home, "keys.txt");
    writeFileSync(keys, `${KEY}\n`);
    const serve = await startCli(cli, ["serve", "--port", "0", "--api-keys-file", keys, "--quiet"], { ...process.env, DSV4_HOME: home });
    server = serve.child;
    url = serve.url;
    browser = await puppeteer.launch({
      executablePath: findChromium()!,
      headless: true,
      args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    mkdirSync(screenshotDir, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    server?.kill("SIGTERM");
    if (home) rmSync(home, { recursive: true, force: true });
  });

  /** Replaces a field's text as a user would: select all, type. */
  async function fill(selector: string, text: string): Promise<void> {
    await page.focus(selector);
    await page.keyboard.down("Control");
    await page.keyboard.press("KeyA");
    await page.keyboard.up("Control");
    await page.keyboard.press("Backspace");
    if (text) await page.keyboard.type(text);
  }

  const alertText = () => page.$$eval("[role=alert]", (els) => els.map((e) => e.textContent ?? "").join("\n"));
  const assistantCount = () => page.$$eval(".msg-assistant", (els) => els.length);

  /** Sends `text` from the composer and waits until the new assistant turn has finished. */
  async function send(text: string): Promise<void> {
    const before = await assistantCount();
    await fill("#composer-input", text);
    await page.keyboard.press("Enter");
    await page.waitForFunction((n) => {
      const all = document.querySelectorAll(".msg-assistant");
      return all.length > n && all[all.length - 1]!.getAttribute("aria-busy") === "false";
    }, { timeout: 60_000 }, before);
  }

  interface Seen {
    busy: string | null;
    reasoning: number;
    content: number;
    args: number;
  }

  /** Records, in the page, every state of the last assistant message as the DOM changes. */
  async function watchLastAssistant(): Promise<void> {
    await page.evaluate(() => {
      const w = window as any;
      w.__observer?.disconnect();
      w.__seen = [];
      w.__observer = new MutationObserver(() => {
        const all = document.querySelectorAll(".msg-assistant");
        const m = all[all.length - 1];
        if (!m) return;
        const len = (sel: string) => (m.querySelector(sel)?.textContent ?? "").length;
        w.__seen.push({ busy: m.getAttribute("aria-busy"), reasoning: len(".reasoning-text"), content: len(".markdown"), args: len(".tool-args") });
      });
      w.__observer.observe(document.querySelector(".messages")!, { subtree: true, childList: true, characterData: true, attributes: true });
    });
  }

  const seenStates = (): Promise<Seen[]> => page.evaluate(() => (window as any).__seen);

  /** The page showed `part` partly written while the turn was still streaming. */
  function assertStreamed(seen: Seen[], part: "reasoning" | "content" | "args"): void {
    const final = seen[seen.length - 1]![part];
    assert.ok(final > 0, `the answer has ${part}`);
    const partial = seen.filter((s) => s.busy === "true" && s[part] > 0 && s[part] < final);
    assert.ok(partial.length > 0, `partial ${part} was shown while streaming (seen: ${seen.map((s) => `${s.busy}:${s[part]}`).join(" ")})`);
  }

  test("without a key the page asks for one", async () => {
    await page.goto(url, { waitUntil: "load" });
    await page.waitForFunction(() => /needs an API key \(401/.test(document.querySelector("[role=alert]")?.textContent ?? ""), { timeout: 10_000 });
  });

  test("a wrong API key shows a clear error", async () => {
    await fill("#api-key", "sk-wrong-key");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => /refused the API key \(401/.test(document.querySelector("[role=alert]")?.textContent ?? ""), { timeout: 10_000 });
    assert.match(await alertText(), /Enter a valid key/);
  });

  test("with the right key a message streams in, then shows tokens, cost, TTFT and tokens/s", async () => {
    await fill("#api-key", KEY);
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => !document.querySelector("[role=alert]") && document.querySelectorAll("#model option").length > 0, { timeout: 10_000 });
    await fill("#max-tokens", "48");
    await watchLastAssistant();
    await send("Hello, who are you?");
    assertStreamed(await seenStates(), "reasoning");
    const figures = await page.$eval(".msg-assistant:last-child .figures", (e) => e.textContent ?? "");
    assert.match(figures, /\d+ in \(\d+ cached\)/);
    assert.match(figures, /48 out \(48 reasoning\)/);
    assert.match(figures, /\$\d/);
    assert.match(figures, /TTFT \d+ ms/);
    assert.match(figures, /[\d.]+ tok\/s/);
    assert.match(figures, /finish: length/);
  });

  test("the reasoning, collapsed once the turn ends, opens from the keyboard", async () => {
    const summary = ".msg-assistant:last-child .reasoning > summary";
    assert.equal(await page.$eval(".msg-assistant:last-child .reasoning", (d) => (d as HTMLDetailsElement).open), false);
    await page.focus(summary);
    await page.keyboard.press("Enter");
    await page.waitForFunction((s) => (document.querySelector(s)!.parentElement as HTMLDetailsElement).open, {}, summary);
    const shown = await page.$eval(".msg-assistant:last-child .reasoning-text", (e) => ({ height: (e as HTMLElement).offsetHeight, text: e.textContent ?? "" }));
    assert.ok(shown.height > 0 && shown.text.length > 0, "the reasoning text is visible");
  });

  test("a tool defined as a JSON Schema and forced by tool_choice is called as it streams, and answered by hand", async () => {
    await page.click("#tools-panel > summary");
    await page.click("#add-tool");
    await page.click("#thinking");
    await page.select("#tool-choice", "function:get_weather");
    await fill("#max-tokens", "64");
    await watchLastAssistant();
    await send("What is the weather in Paris?");
    assertStreamed(await seenStates(), "args");
    const call = await page.$eval(".msg-assistant:last-child .tool-call", (e) => ({ name: e.querySelector(".tool-name")?.textContent, args: e.querySelector(".tool-args")?.textContent ?? "" }));
    assert.equal(call.name, "get_weather");
    assert.equal(typeof JSON.parse(call.args).city, "string", `arguments follow the schema: ${call.args}`);
    assert.match(await page.$eval(".msg-assistant:last-child .figures", (e) => e.textContent ?? ""), /finish: tool_calls/);
    // The agent loop: the user writes the tool's result, and the model goes on.
    const before = await assistantCount();
    await fill(".tool-answer textarea", '{"temperature_c": 21}');
    await page.click(".tool-answer button[type=submit]");
    await page.waitForFunction((n) => {
      const all = document.querySelectorAll(".msg-assistant");
      return all.length > n && all[all.length - 1]!.getAttribute("aria-busy") === "false";
    }, { timeout: 60_000 }, before);
    assert.equal(await page.$eval(".msg-tool .tool-result", (e) => e.textContent), '{"temperature_c": 21}');
  });

  test("the conversation is kept across a reload", async () => {
    const before = await page.$$eval(".msg", (els) => els.map((e) => e.className.replace(" streaming", "") + ":" + (e.querySelector(".markdown, .tool-result, .tool-name")?.textContent ?? "")));
    await page.reload({ waitUntil: "load" });
    await page.waitForSelector(".msg");
    const after = await page.$$eval(".msg", (els) => els.map((e) => e.className + ":" + (e.querySelector(".markdown, .tool-result, .tool-name")?.textContent ?? "")));
    assert.deepEqual(after, before);
    assert.equal(await page.$eval("#tool-choice", (e) => (e as HTMLSelectElement).value), "function:get_weather");
    assert.equal(await alertText(), "", "the key is still there for this tab");
  });

  test("export writes the conversation as a chat request body, and import brings it back", async () => {
    const downloads = join(home, "downloads");
    mkdirSync(downloads, { recursive: true });
    const cdp = await page.createCDPSession();
    await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: downloads });
    const shown = () => page.$$eval(".msg", (els) => els.map((e) => e.className + ":" + (e.querySelector(".markdown, .tool-result, .tool-name")?.textContent ?? "")));
    const before = await shown();
    await page.evaluate(() => [...document.querySelectorAll(".conversations button")].find((b: any) => b.textContent === "Export").click());
    const file = await downloaded(downloads);
    assert.equal(basename(file), "Hello_who_are_you_.json", "named after the conversation");
    const body = JSON.parse(readFileSync(file, "utf8"));
    assert.deepEqual(body.messages.map((m: any) => m.role), ["system", "user", "assistant", "user", "assistant", "tool", "assistant"]);
    assert.deepEqual(body.tool_choice, { type: "function", function: { name: "get_weather" } });
    assert.equal(body.messages[4].tool_calls[0].function.name, "get_weather");
    const input = await page.$("input[type=file]");
    await input!.uploadFile(file);
    await page.waitForFunction(() => /Imported/.test(document.querySelector("[role=status]")?.textContent ?? ""));
    assert.deepEqual(await shown(), before, "the imported copy shows the same messages");
  });

  test("markdown is rendered, and HTML that could run script is removed", async () => {
    const file = join(home, "hostile.json");
    const hostile = '**bold** <img src="x" onerror="window.__pwned = 1"> <script>window.__pwned = 2</script> [link](javascript:window.__pwned=3)';
    writeFileSync(file, JSON.stringify([{ role: "user", content: "hostile" }, { role: "assistant", content: hostile }]));
    await (await page.$("input[type=file]"))!.uploadFile(file);
    await page.waitForFunction(() => /Imported "hostile"/.test(document.querySelector("[role=status]")?.textContent ?? ""));
    const html = await page.$eval(".msg-assistant .markdown", (e) => e.innerHTML);
    assert.match(html, /<strong>bold<\/strong>/);
    assert.doesNotMatch(html, /onerror|<script|javascript:/);
    await page.click(".msg-assistant a").catch(() => {});
    assert.equal(await page.evaluate(() => (window as any).__pwned), undefined);
  });

  test("keyboard only: Tab reaches the message box, Enter sends", async () => {
    await page.click("#new-conversation");
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    let reached = false;
    for (let i = 0; i < 80 && !reached; i++) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(() => document.activeElement?.id === "composer-input");
    }
    assert.ok(reached, "the message box is reachable with Tab");
    const before = await assistantCount();
    await page.keyboard.type("Hi from the keyboard");
    await page.keyboard.press("Enter");
    await page.waitForFunction((n) => document.querySelectorAll(".msg-assistant").length > n, { timeout: 60_000 }, before);
    await page.waitForFunction(() => !document.querySelector("[aria-busy=true]"), { timeout: 60_000 });
  });

  test("Esc stops a streaming answer, and the page says it stopped", async () => {
    await page.click("#new-conversation");
    // Thinking on and no forced tool: the random model reasons on until max_tokens.
    await page.click("#thinking");
    await page.select("#tool-choice", "auto");
    assert.equal(await page.$eval("#thinking", (e) => (e as any).checked), true);
    await fill("#max-tokens", "4000");
    await fill("#composer-input", "Tell me a long story.");
    await page.keyboard.press("Enter");
    await page.waitForSelector(".msg-assistant[aria-busy=true] .reasoning-text", { timeout: 30_000 });
    await page.keyboard.press("Escape");
    await page.waitForSelector(".msg-assistant[aria-busy=false]", { timeout: 10_000 });
    assert.match(await page.$eval(".msg-assistant:last-child", (e) => e.textContent ?? ""), /Stopped\./);
    await fill("#max-tokens", "64");
  });

  test("readable at 360 px and in dark mode; screenshots at 1280 and 360 px", async () => {
    // The first conversation (reasoning, figures) is the one pictured.
    const first = await page.$$(".conv-link");
    await first[first.length - 1]!.click();
    await page.click(".msg-assistant .reasoning > summary");
    await page.screenshot({ path: join(screenshotDir, "playground-1280.png"), fullPage: true });
    // A phone loads the page at its width: the side panels start closed there.
    await page.setViewport({ width: 360, height: 740 });
    await page.reload({ waitUntil: "load" });
    await page.waitForSelector(".msg-assistant .figures");
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 360, "nothing is wider than the screen at 360 px");
    await page.screenshot({ path: join(screenshotDir, "playground-360.png") });
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await page.screenshot({ path: join(screenshotDir, "playground-360-bottom.png") });
    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const [r, g, b] = (background.match(/\d+/g) ?? []).map(Number);
    assert.ok(r! + g! + b! < 150, `dark background in dark mode, got ${background}`);
    await page.screenshot({ path: join(screenshotDir, "playground-360-dark.png") });
    await page.setViewport({ width: 1280, height: 900 });
    await page.screenshot({ path: join(screenshotDir, "playground-1280-dark.png"), fullPage: true });
  });
});
