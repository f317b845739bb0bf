/** The CLI's operational surface: --version, the rebuild advice, and serve's request log. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { startCli } from "../helpers/cli-process.js";
import { repoRoot } from "../helpers/paths.js";
import { waitFor } from "../helpers/wait.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const home = mkdtempSync(join(tmpdir(), "dsv4-cli-ops-"));
after(() => rmSync(home, { recursive: true, force: true }));
const env = { ...process.env, DSV4_HOME: home };
const version = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }).version;

test("dsv4 --version and -v print the package version", () => {
  for (const flag of ["--version", "-v"]) {
    const r = spawnSync(process.execPath, [cli, flag], { encoding: "utf8", env });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `dsv4 ${version}\n`);
  }
});

test("without the addon, the warning advises npm rebuild dsv4", () => {
  const script = `import(${JSON.stringify(join(repoRoot, "dist", "src", "kernels", "index.js"))}).then((m) => m.createBackend(""))`;
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: { ...env, DSV4_NATIVE_ADDON: join(home, "missing.node") } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /native backend unavailable .*`npm rebuild dsv4`/);
});

test("serve --quiet with --log is refused in one line", () => {
  const r = spawnSync(process.execPath, [cli, "serve", "--quiet", "--log", join(home, "x.log")], { encoding: "utf8", env });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^dsv4: error: --log .* --quiet .*\n$/);
});

test("serve --log FILE: one JSON line per request, with the client's X-Request-Id", async () => {
  const logFile = join(home, "requests.log");
  const { child, url, stderr } = await startCli(cli, ["serve", "--port", "0", "--log", logFile, "--max-output-tokens", "8"], env);
  try {
    const r = await fetch(`${url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "cli-log-1" },
      body: JSON.stringify({ model: "deepseek-v4-flash", messages: [{ role: "user", content: "Hello!" }] }),
    });
    assert.equal(r.status, 200);
    const body = (await r.json()) as { usage: { completion_tokens: number } };
    assert.ok(body.usage.completion_tokens <= 8, "the --max-output-tokens cap is the default");
    await waitFor(() => readFileSync(logFile, "utf8").includes("cli-log-1"));
    const lines = readFileSync(logFile, "utf8").trim().split("\n");
    assert.equal(lines.length, 1);
    const record = JSON.parse(lines[0]!);
    assert.equal(record.request_id, "cli-log-1");
    assert.equal(record.route, "/chat/completions");
    assert.equal(record.completion_tokens, body.usage.completion_tokens);
    assert.ok(!stderr().includes("cli-log-1"), "with --log, stderr carries no request lines");
  } finally {
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
  }
});
