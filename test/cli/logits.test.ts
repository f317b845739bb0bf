import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { decodeToFloat64 } from "../../src/formats/dtypes.js";
import { SafetensorsFile } from "../../src/formats/safetensors.js";
import { Golden } from "../model/conformance.js";
import { repoRoot } from "../helpers/paths.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const tmp = mkdtempSync(join(tmpdir(), "dsv4-logits-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });

test("dsv4 logits --mtp writes F64 logits and mtp_logits matching the golden", () => {
  const golden = new Golden("tiny-a");
  const T = 24;
  const ids = golden.inputIds().slice(0, T);
  writeFileSync(join(tmp, "ids.json"), JSON.stringify(ids));
  const out = join(tmp, "out.safetensors");
  const r = run("logits", "--model", golden.dir, "--tokens-file", join(tmp, "ids.json"), "--out", out, "--mtp", "--backend", "ref");
  assert.equal(r.status, 0, r.stderr);
  const f = SafetensorsFile.open(out);
  const V = golden.shape("logits_f64")[1]!;
  assert.equal(f.get("logits").dtype, "F64");
  assert.deepEqual(f.get("logits").shape, [T, V]);
  assert.deepEqual(f.get("mtp_logits").shape, [T - 1, V]);
  const mine = decodeToFloat64("F64", f.read("logits"));
  const ref = golden.tensor("logits_f64").subarray(0, T * V);
  let d = 0;
  for (let i = 0; i < mine.length; i++) d = Math.max(d, Math.abs(mine[i]! - ref[i]!));
  assert.ok(d <= 1e-9, `max |Δ| ${d}`);
  const mtp = decodeToFloat64("F64", f.read("mtp_logits"));
  const mref = golden.tensor("mtp_logits_f64").subarray(0, (T - 1) * V);
  d = 0;
  for (let i = 0; i < mtp.length; i++) d = Math.max(d, Math.abs(mtp[i]! - mref[i]!));
  assert.ok(d <= 1e-9, `mtp max |Δ| ${d}`);
  f.close();
});

test("a token id outside the vocabulary is a one-line error naming its index", () => {
  writeFileSync(join(tmp, "bad.json"), JSON.stringify([1, 2, 999999]));
  const r = run("logits", "--model", new Golden("tiny-a").dir, "--tokens-file", join(tmp, "bad.json"), "--out", join(tmp, "x.safetensors"));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^dsv4: error: .*token 999999 at index 2 .*vocabulary/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
});

test("a missing model directory is a one-line error, no stack trace", () => {
  writeFileSync(join(tmp, "ids.json"), "[1]");
  const r = run("logits", "--model", join(tmp, "nope"), "--tokens-file", join(tmp, "ids.json"), "--out", join(tmp, "x.safetensors"));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /config\.json: cannot read/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test("an unknown backend is refused with the list of backends", () => {
  writeFileSync(join(tmp, "ids.json"), "[1]");
  const r = run("logits", "--model", new Golden("tiny-a").dir, "--tokens-file", join(tmp, "ids.json"), "--out", join(tmp, "x.safetensors"), "--backend", "gpu9000");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unknown backend "gpu9000"; available: ref/);
});
