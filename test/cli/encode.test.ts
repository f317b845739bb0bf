/** `dsv4 encode` and `dsv4 tokenize`, run as a user would (the built CLI in a child process). */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { fixtureDir, fixtureOutput, repoRoot } from "../text/support.js";

const run = promisify(execFile);
const main = resolve(repoRoot, "dist", "src", "cli", "main.js");

async function dsv4(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [main, ...args], { encoding: "utf8", maxBuffer: 1 << 26 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "dsv4-cli-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

test("encode prints each official fixture's prompt exactly (no added newline)", async () => {
  const chat = await file("chat.json", '{"thinking_mode": "chat"}');
  for (const n of [1, 2, 3, 4]) {
    const args = ["encode", "--request", join(fixtureDir, `test_input_${n}.json`)];
    if (n === 4) args.push("--options", chat);
    const r = await dsv4(...args);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, fixtureOutput(n), `fixture ${n}`);
  }
});

test("encode options: effort, drop_thinking, context", async () => {
  const req = await file("req.json", JSON.stringify([{ role: "user", content: "Hi" }, { role: "assistant", content: "Yo", reasoning_content: "r" }, { role: "user", content: "More" }]));
  const opts = await file("opts.json", JSON.stringify({ thinking_mode: "thinking", drop_thinking: false, reasoning_effort: null, add_default_bos_token: false }));
  const r = await dsv4("encode", "--request", req, "--options", opts);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "<｜User｜>Hi<｜Assistant｜><think>r</think>Yo<｜end▁of▁sentence｜><｜User｜>More<｜Assistant｜><think>");
  const max = await file("max.json", '{"reasoning_effort": "max"}');
  const m = await dsv4("encode", "--request", req, "--options", max);
  assert.ok(m.stdout.startsWith("<｜begin▁of▁sentence｜>Reasoning Effort: Absolute maximum with no shortcuts permitted.\n"));
});

test("encode keeps float spelling and key order from the request file", async () => {
  const req = await file(
    "floats.json",
    '{"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"2": {"minimum": 1.0}, "1": 1e5}}}]}',
  );
  const r = await dsv4("encode", "--request", req);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes('{"name": "f", "parameters": {"2": {"minimum": 1.0}, "1": 100000.0}}'));
});

test("invalid requests exit non-zero with one line naming the problem", async () => {
  const cases: Array<[string, string, RegExp, string?]> = [
    ["role.json", '[{"role": "wizard", "content": "x"}]', /messages\[0\]\.role: unknown role "wizard"/],
    ["task.json", '[{"role": "user", "content": "x", "task": "fly"}]', /messages\[0\]\.task: unknown task "fly"/],
    ["mode.json", '[{"role": "user", "content": "x"}]', /options\.thinking_mode: invalid value "deep"/, '{"thinking_mode": "deep"}'],
    ["effort.json", '[{"role": "user", "content": "x"}]', /options\.reasoning_effort/, '{"reasoning_effort": "extreme"}'],
    ["shape.json", '{"msgs": []}', /"messages"/],
    ["broken.json", '[{"role": ', /not valid JSON/],
  ];
  for (const [name, body, message, options] of cases) {
    const args = ["encode", "--request", await file(name, body)];
    if (options) args.push("--options", await file(`opts-${name}`, options));
    const r = await dsv4(...args);
    assert.notEqual(r.code, 0, name);
    assert.equal(r.stdout, "", name);
    assert.match(r.stderr, message, name);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, `${name}: ${r.stderr}`);
  }
  const missing = await dsv4("encode");
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--request/);
});

test("tokenize prints the ids as a JSON array, with the default or a model directory's vocabulary", async () => {
  const text = await file("t.txt", "<｜begin▁of▁sentence｜>SYS<｜User｜>问题<｜Assistant｜><think>");
  const r = await dsv4("tokenize", "--text-file", text);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [0, 53, 20842, 128803, 2056, 128804, 128821]);
  const inline = await dsv4("tokenize", "--text", "Hello, DeepSeek V4.");
  assert.deepEqual(JSON.parse(inline.stdout), [19923, 14, 22651, 4374, 1465, 721, 22, 16]);
  const bad = await dsv4("tokenize", "--model", join(dir, "nope"), "--text-file", text);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /tokenizer/);
});
