/**
 * `dsv4 serve` on SIGTERM: generations in flight get --shutdown-timeout seconds to finish;
 * those still running then, or at a second signal, end with an error event their clients
 * see, and the process exits.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { streamChat, lastError } from "../helpers/chat-stream.js";
import { exitOf, startCli, type CliProcess } from "../helpers/cli-process.js";
import { repoRoot } from "../helpers/paths.js";
import { waitFor } from "../helpers/wait.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const home = mkdtempSync(join(tmpdir(), "dsv4-cli-shutdown-"));
after(() => rmSync(home, { recursive: true, force: true }));
const env = { ...process.env, DSV4_HOME: home };

/** `dsv4 serve` with that --shutdown-timeout for the body's length, killed after it whatever happened. */
async function withServe(shutdownTimeout: number, body: (p: CliProcess) => Promise<void>): Promise<void> {
  const p = await startCli(cli, ["serve", "--port", "0", "--quiet", "--shutdown-timeout", String(shutdownTimeout)], env);
  try {
    await body(p);
  } finally {
    p.child.kill("SIGKILL");
  }
}

describe("serve shutting down", () => {
  test("a generation in flight at SIGTERM finishes within the shutdown timeout, then the process exits", async () => {
    await withServe(120, async (p) => {
      const { rest } = await streamChat(p.url, 400);
      p.child.kill("SIGTERM");
      const text = await rest;
      assert.match(text, /"finish_reason":"length"/);
      assert.ok(text.trimEnd().endsWith("data: [DONE]"), text.slice(-200));
      assert.equal(await exitOf(p), 0);
      assert.match(p.stderr(), /shutting down: 1 generation in flight gets up to 120 s to finish/);
    });
  });

  test("a generation still running when the shutdown timeout runs out ends with an error event naming it", async () => {
    await withServe(1, async (p) => {
      const { rest } = await streamChat(p.url, 200_000);
      const t0 = Date.now();
      p.child.kill("SIGTERM");
      const text = await rest;
      const error = lastError(text);
      assert.equal(error.code, "server_shutting_down");
      assert.match(error.message, /shutdown timeout ran out/);
      assert.equal(await exitOf(p), 0);
      assert.ok(Date.now() - t0 < 30_000, `exited ${Date.now() - t0} ms after the signal`);
      assert.match(p.stderr(), /stopped 1 generation still running: its 1 s shutdown timeout ran out/);
    });
  });

  test("a second signal stops the generations in flight at once", async () => {
    await withServe(600, async (p) => {
      const { rest } = await streamChat(p.url, 200_000);
      p.child.kill("SIGTERM");
      await waitFor(() => p.stderr().includes("signal again to stop them now"), 10_000, "the drain to start");
      p.child.kill("SIGINT");
      const text = await rest;
      assert.match(text, /"code":"server_shutting_down"/);
      assert.match(text, /signalled twice/);
      assert.equal(await exitOf(p), 0);
    });
  });
});
