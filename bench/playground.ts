/**
 * The web playground's weight and time to interactive on a local `dsv4 serve` of the default
 * model, in headless Chromium (puppeteer-core):
 * - bundle: app.js + app.css, raw and gzipped;
 * - per page load, each in a fresh browser context (empty cache): first contentful paint,
 *   DOMContentLoaded, and "interactive" = the app has rendered and /models has answered (the
 *   page's `dsv4-playground-ready` mark), all from navigation start;
 * - the same navigation to GET /health as the baseline (the browser's and the server's own cost
 *   of one page load), and interactive / baseline as a ratio measured in the same run.
 *
 * Run: `node dist/bench/playground.js [--loads N] [--json]` (after `npm run build`; needs Chromium).
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import puppeteer from "puppeteer-core";
import { ensureDefaultModel } from "../src/cli/default-model.js";
import { Engine } from "../src/engine/engine.js";
import { startServer } from "../src/server/index.js";
import { findChromium } from "../test/helpers/chromium.js";

declare const performance: { getEntriesByType(t: string): any[]; getEntriesByName(n: string): any[] };

const pageDir = join(dirname(fileURLToPath(import.meta.url)), "..", "playground");

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

const round = (x: number) => Math.round(x * 10) / 10;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { loads: { type: "string", default: "10" }, json: { type: "boolean", default: false } } });
  const loads = Number(values.loads);
  const chromium = findChromium();
  if (!chromium) throw new Error("bench playground: no Chromium found (apt-get install chromium, or set DSV4_CHROMIUM)");

  const size = (name: string) => {
    const bytes = readFileSync(join(pageDir, name));
    return { raw: bytes.length, gzip: gzipSync(bytes).length };
  };
  const js = size("app.js");
  const css = size("app.css");

  const { dir } = await ensureDefaultModel();
  const engine = await Engine.load(dir, { speculative: { enabled: false } });
  const server = await startServer({ engine, host: "127.0.0.1", port: 0 });
  const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"] });
  const runs: Array<{ fcp: number; dcl: number; interactive: number; baseline: number }> = [];
  try {
    for (let i = 0; i < loads + 1; i++) {
      const context = await browser.createBrowserContext();
      const tab = await context.newPage();
      await tab.goto(`${server.url}/health`, { waitUntil: "load" });
      const baseline = await tab.evaluate(() => performance.getEntriesByType("navigation")[0].loadEventEnd);
      await tab.goto(server.url, { waitUntil: "load" });
      await tab.waitForFunction(() => performance.getEntriesByName("dsv4-playground-ready").length > 0, { timeout: 30_000 });
      const t = await tab.evaluate(() => ({
        fcp: performance.getEntriesByType("paint").find((p: any) => p.name === "first-contentful-paint")?.startTime ?? NaN,
        dcl: performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd,
        interactive: performance.getEntriesByName("dsv4-playground-ready")[0].startTime,
      }));
      await context.close();
      // The first load warms the server's and the browser's own code paths; it is not counted.
      if (i > 0) runs.push({ ...t, baseline });
    }
  } finally {
    await browser.close();
    await server.close();
    await engine.dispose();
  }
  const stat = (k: keyof (typeof runs)[0]) => ({ median_ms: round(quantile(runs.map((r) => r[k]), 0.5)), p90_ms: round(quantile(runs.map((r) => r[k]), 0.9)) });
  const result = {
    bundle: { js_bytes: js.raw, css_bytes: css.raw, js_gzip_bytes: js.gzip, css_gzip_bytes: css.gzip, total_gzip_kib: round((js.gzip + css.gzip) / 1024) },
    loads,
    first_contentful_paint: stat("fcp"),
    dom_content_loaded: stat("dcl"),
    interactive: stat("interactive"),
    baseline_health_load: stat("baseline"),
    interactive_over_baseline: round(quantile(runs.map((r) => r.interactive), 0.5) / quantile(runs.map((r) => r.baseline), 0.5)),
    browser: chromium,
  };
  if (values.json) console.log(JSON.stringify(result));
  else {
    console.log(`bundle: app.js ${(js.gzip / 1024).toFixed(1)} KiB + app.css ${(css.gzip / 1024).toFixed(1)} KiB gzipped = ${result.bundle.total_gzip_kib} KiB (raw ${((js.raw + css.raw) / 1024).toFixed(1)} KiB)`);
    console.log(`${loads} cold loads (fresh context each), median / p90 from navigation start:`);
    console.log(`  first contentful paint  ${result.first_contentful_paint.median_ms} / ${result.first_contentful_paint.p90_ms} ms`);
    console.log(`  DOMContentLoaded        ${result.dom_content_loaded.median_ms} / ${result.dom_content_loaded.p90_ms} ms`);
    console.log(`  interactive (/models in) ${result.interactive.median_ms} / ${result.interactive.p90_ms} ms`);
    console.log(`  GET /health page load   ${result.baseline_health_load.median_ms} / ${result.baseline_health_load.p90_ms} ms (baseline)`);
    console.log(`  interactive / baseline  ${result.interactive_over_baseline}x`);
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
