/** `dsv4 serve`, `dsv4 run`, `dsv4 chat` as a user runs them: help, the default model, clean pipes, one-line errors. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { startCli } from "../helpers/cli-process.js";
import { repoRoot } from "../helpers/paths.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const home = mkdtempSync(join(tmpdir(), "dsv4-cli-home-"));
after(() => rmSync(home, { recursive: true, force: true }));
const env = { ...process.env, DSV4_HOME: home };

const run = (args: string[], input?: string) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env, input, timeout: 60_000 });

describe("dsv4 serve / run / chat", () => {
  test("--help for each command", () => {
    for (const name of ["serve", "run", "chat"]) {
      const r = run([name, "--help"]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: dsv4 ${name}`));
    }
    assert.match(run(["--help"]).stdout, /serve .*DeepSeek/);
    assert.match(run(["serve", "--help"]).stdout, /--shared-prefix FILE/);
  });

  test("bad flags are one-line errors with exit code 2, never stack traces", () => {
    for (const args of [["serve", "--port", "x"], ["serve", "--bogus"], ["run", "--effort", "huge", "hi"], ["run", "--max-tokens", "0", "hi"], ["serve", "--cors", "not-an-origin"], ["serve", "--reader-timeout", "soon"], ["serve", "--shared-prefix", join(home, "missing.txt")], ["run", "--model", join(home, "missing"), "hi"]]) {
      const r = run(args);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^dsv4: error: [^\n]+\n$/, args.join(" "));
      assert.equal(r.stdout, "");
    }
  });

  test("run: the default model is written on first use; only the answer reaches stdout", () => {
    const r = run(["run", "--no-think", "--max-tokens", "3", "--seed", "4", "Hello"]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(home, "default-model", "config.json")));
    assert.ok(existsSync(join(home, "default-model", "tokenizer.json")));
    assert.ok(r.stdout.length > 1 && r.stdout.endsWith("\n"));
    assert.ok(!r.stdout.includes("loading"), "progress goes to stderr");
    const again = run(["run", "--no-think", "--max-tokens", "3", "--seed", "4"], "Hello");
    assert.equal(again.stdout, r.stdout, "deterministic default model and seed; prompt from stdin");
    const thinking = run(["run", "--max-tokens", "2", "Hello"]);
    assert.equal(thinking.stdout, "", "reasoning is not the answer");
  });

  test("chat: commands and turns from a pipe", () => {
    const r = run(["chat", "--max-tokens", "2"], "hello\n/think off\nagain\n/effort max\n/exit\n");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /reasoning off/);
    assert.match(r.stdout, /effort max/);
    assert.equal((r.stdout.match(/\[stopped at 2 tokens\]/g) ?? []).length, 2);
  });

  test("serve: banner with the URL, answers, stops on SIGTERM", async () => {
    const { child, url, stdout } = await startCli(cli, ["serve", "--port", "0"], env);
    try {
      assert.match(stdout(), /tiny random weights/);
      const r = await fetch(`${url}/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: "deepseek-v4-flash", messages: [{ role: "user", content: "Hello!" }], max_tokens: 2 }),
      });
      assert.equal(r.status, 200, "curl's default form content type is read as JSON too");
      assert.equal(((await r.json()) as { object: string }).object, "chat.completion");
    } finally {
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
    }
  });
});
