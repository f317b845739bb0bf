/** `dsv4 gateway` as a user runs it: usage errors, and a gateway process in front of a `dsv4 serve` process. */
import assert from "node:assert/strict";
import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { startCli as startCliProcess, type CliProcess } from "../helpers/cli-process.js";
import { repoRoot } from "../helpers/paths.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const home = mkdtempSync(join(tmpdir(), "dsv4-gateway-cli-"));
const env = { ...process.env, DSV4_HOME: home };
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(home, { recursive: true, force: true });
});

test("usage errors are one line with exit code 2", () => {
  for (const args of [["gateway"], ["gateway", "--upstream", "nope"], ["gateway", "--upstream", "http://127.0.0.1:1", "--upstream-kind", "tgi"]]) {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env, timeout: 60_000 });
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /^dsv4: error: [^\n]+\n$/);
  }
});

async function startCli(args: string[]): Promise<CliProcess> {
  const started = startCliProcess(cli, args, env);
  // Killed at the end even when a test fails before stopping it.
  void started.then((p) => children.push(p.child), () => {});
  return started;
}

test("a gateway process serves chat through a serve process, and exits cleanly on SIGTERM", async () => {
  const replica = await startCli(["serve", "--port", "0"]);
  const gateway = await startCli(["gateway", "--upstream", replica.url, "--port", "0"]);
  const res = await fetch(`${gateway.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "deepseek-v4-flash", messages: [{ role: "user", content: "Hi" }], max_tokens: 3 }),
  });
  const body = (await res.json()) as any;
  assert.equal(res.status, 200);
  assert.equal(body.usage.completion_tokens, 3);
  const upstreams = (await (await fetch(`${gateway.url}/gateway/upstreams`)).json()) as any;
  assert.deepEqual(upstreams.upstreams.map((u: any) => [u.url, u.healthy, u.dispatched]), [[replica.url, true, 1]]);
  const exited = new Promise<number | null>((resolve) => gateway.child.on("exit", resolve));
  gateway.child.kill("SIGTERM");
  assert.equal(await exited, 0);
  replica.child.kill("SIGTERM");
});
