/** `--encoding` and `--prices` on the command line: start-up lines, the chat's effort default, one-line errors. */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { writeTinyCheckpoint } from "../../src/tiny/tiny.js";
import { repoRoot, testDataDir } from "../helpers/paths.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const home = mkdtempSync(join(tmpdir(), "dsv4-cli-encoding-"));
after(() => rmSync(home, { recursive: true, force: true }));
const env = { ...process.env, DSV4_HOME: home };

const run = (args: string[], input?: string) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env, input, timeout: 60_000 });

function file(name: string, json: unknown): string {
  const path = join(home, name);
  writeFileSync(path, JSON.stringify(json));
  return path;
}

/** Starts `dsv4 serve` with `args`, returns its banner, stops it. */
async function banner(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [cli, "serve", "--port", "0", ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d) => {
        out += d;
        if (out.includes("Ctrl-C to stop.")) resolve();
      });
      child.on("exit", () => reject(new Error(`serve exited: ${err}`)));
    });
    return out;
  } finally {
    const exited = new Promise((resolve) => child.on("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
}

describe("--encoding and --prices", () => {
  test("an unknown --encoding is a one-line usage error for serve, run and chat", () => {
    for (const args of [["serve", "--encoding", "0813"], ["run", "--encoding", "v4", "hi"], ["chat", "--encoding", "April"]]) {
      const r = run(args);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^dsv4: error: --encoding must be "april" or "0731", got "[^"]+"\n$/);
    }
  });

  test("a bad --prices file is refused before the model loads, naming the file and the field", () => {
    const bad = file("overlap.json", { windows: [{ name: "a", utc: "01:00-04:00" }, { name: "b", utc: "02:00-03:00" }] });
    const r = run(["serve", "--prices", bad]);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `dsv4: error: --prices ${bad}: windows "a" and "b" overlap at 02:00 UTC; a time of day can have only one price\n`);
  });

  test("serve's start-up lines: the checkpoint's encoder and the April prices for the (April) default model", async () => {
    const out = await banner([]);
    assert.match(out, /^ {2}encoder {3}april \(the checkpoint's; --encoding to change\)$/m);
    assert.match(out, /^ {2}prices {4}\$0\.0028 hit \/ \$0\.14 miss \/ \$0\.28 out per 1M \(april default; --prices FILE to change\)$/m);
  });

  test("serve's start-up lines for a 0731 checkpoint (tiny-0731): the 0731 encoder and the 0731 prices with the peak window", async () => {
    const dir = join(home, "tiny-0731");
    await writeTinyCheckpoint(dir, { preset: "tiny-0731", seed: 1 });
    const out = await banner(["--model", dir]);
    assert.match(out, /^ {2}encoder {3}0731 \(the checkpoint's; --encoding to change\)$/m);
    assert.ok(
      out.includes("  prices    $0.007 hit / $0.22 miss / $0.66 out per 1M; peak 01:00-04:00, 06:00-10:00 UTC: $0.014 hit / $0.44 miss / $1.32 out per 1M (0731 default; --prices FILE to change)\n"),
      out,
    );
  });

  test("serve's start-up lines: an --encoding override and a --prices file with a window", async () => {
    const prices = file("peak.json", { output: 0.5, windows: [{ name: "peak", utc: ["01:00-04:00"], output: 1 }] });
    const out = await banner(["--encoding", "0731", "--prices", prices]);
    assert.match(out, /^ {2}encoder {3}0731 \(--encoding; the checkpoint is april\)$/m);
    assert.ok(out.includes(`  prices    $0.0028 hit / $0.14 miss / $0.5 out per 1M; peak 01:00-04:00 UTC: $0.0028 hit / $0.14 miss / $1 out per 1M (${prices})\n`), out);
  });

  test("dsv4 info names the encoder a checkpoint gets: 0731 for the tiny-dspark-a golden, april for tiny-a", () => {
    const dspark = run(["info", "--model", join(testDataDir, "golden", "tiny-dspark-a")]);
    assert.equal(dspark.status, 0, dspark.stderr);
    assert.match(dspark.stdout, /^encoder  0731 \(the prompt encoder serve, run and chat use; --encoding overrides\)$/m);
    const april = run(["info", "--model", join(testDataDir, "golden", "tiny-a"), "--json"]);
    assert.equal(JSON.parse(april.stdout).encoder, "april");
  });

  test("chat names the encoder, and its effort default follows it (0731: low)", () => {
    const r = run(["chat", "--encoding", "0731", "--max-tokens", "1"], "/effort\n/exit\n");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /encoder 0731 \(--encoding; the checkpoint is april\)/);
    assert.match(r.stdout, /effort is low; \/effort low\|high\|max/);
  });
});
