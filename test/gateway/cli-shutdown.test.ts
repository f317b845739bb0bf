/**
 * `dsv4 gateway` on SIGTERM drains like `dsv4 serve`: requests in flight get
 * --shutdown-timeout seconds; those still running then end with an error event their clients
 * see, their upstream generations are cancelled (the replica frees the slot), and the
 * process exits.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { lastError, streamChat } from "../helpers/chat-stream.js";
import { exitOf, startCli, type CliProcess } from "../helpers/cli-process.js";
import { repoRoot } from "../helpers/paths.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const home = mkdtempSync(join(tmpdir(), "dsv4-gateway-shutdown-"));
const env = { ...process.env, DSV4_HOME: home };
const children: CliProcess[] = [];
after(() => {
  for (const p of children) if (p.child.exitCode === null) p.child.kill("SIGKILL");
  rmSync(home, { recursive: true, force: true });
});

async function start(args: string[]): Promise<CliProcess> {
  const p = await startCli(cli, args, env);
  children.push(p);
  return p;
}

/** The replica's running generations, from its Prometheus text. */
async function activeOn(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^dsv4_active_sequences(?:\{[^}]*\})? (\d+)/m.exec(text);
  assert.ok(m, "dsv4_active_sequences in /metrics");
  return Number(m[1]);
}

test("a stream still running when the gateway's shutdown timeout runs out ends with an error event, and its upstream generation is cancelled", async () => {
  const replica = await start(["serve", "--port", "0", "--quiet"]);
  const gateway = await start(["gateway", "--upstream", replica.url, "--port", "0", "--shutdown-timeout", "1"]);
  const { rest } = await streamChat(gateway.url, 200_000);
  assert.equal(await activeOn(replica.url), 1);
  const t0 = Date.now();
  gateway.child.kill("SIGTERM");
  const error = lastError(await rest);
  assert.equal(error.code, "server_shutting_down");
  assert.match(error.message, /shutdown timeout ran out/);
  assert.equal(await exitOf(gateway), 0);
  assert.ok(Date.now() - t0 < 30_000, `exited ${Date.now() - t0} ms after the signal`);
  assert.match(gateway.stderr(), /shutting down: 1 generation in flight gets up to 1 s to finish/);
  assert.match(gateway.stderr(), /stopped 1 generation still running: its 1 s shutdown timeout ran out/);
  const end = Date.now() + 10_000;
  while ((await activeOn(replica.url)) !== 0) {
    assert.ok(Date.now() < end, "the replica still runs the cancelled generation 10 s after the gateway stopped it");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});
