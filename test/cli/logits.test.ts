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

test("dsv4 logits --draft writes the DSpark goldens' tensors (ref backend: within 1e-9 of the float64 run)", () => {
  const golden = new Golden("tiny-dspark-a");
  const T = 24;
  writeFileSync(join(tmp, "ids-dspark.json"), JSON.stringify(golden.inputIds().slice(0, T)));
  const out = join(tmp, "draft.safetensors");
  const r = run("logits", "--model", golden.dir, "--tokens-file", join(tmp, "ids-dspark.json"), "--out", out, "--draft", "--backend", "ref");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /drafter: 0731 DSpark \(3 stages, block 5\)/);
  const f = SafetensorsFile.open(out);
  const [V, B] = [golden.shape("logits_f64")[1]!, golden.shape("confidence_f64")[1]!];
  const expect: Array<[string, string, number[]]> = [
    ["logits", "logits_f64", [T, V]],
    ["draft_logits", "draft_logits_f64", [T - 2, B, V]],
    ["confidence", "confidence_f64", [T - 2, B]],
    ["draft_ids", "draft_ids_f64", [T - 2, B + 1]],
  ];
  for (const [name, ref, shape] of expect) {
    assert.deepEqual(f.get(name).shape, shape, name);
    assert.equal(f.get(name).dtype, name === "draft_ids" ? "I64" : "F64", name);
    const mine = decodeToFloat64(f.get(name).dtype, f.read(name));
    const theirs = golden.tensor(ref).subarray(0, mine.length);
    let d = 0;
    for (let i = 0; i < mine.length; i++) d = Math.max(d, Math.abs(mine[i]! - theirs[i]!));
    assert.ok(name === "draft_ids" ? d === 0 : d <= 1e-9, `${name}: max |Δ| ${d}`);
  }
  f.close();
});

test("--draft on a checkpoint without DSpark is a one-line error naming the layout found", () => {
  writeFileSync(join(tmp, "ids.json"), "[1, 2, 3]");
  const r = run("logits", "--model", new Golden("tiny-a").dir, "--tokens-file", join(tmp, "ids.json"), "--out", join(tmp, "x.safetensors"), "--draft");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^dsv4: error: --draft needs a 0731 checkpoint with DSpark stages; .* has drafter: April MTP \(1 block\) \(use --mtp\)$/m);
  assert.equal(r.stderr.trim().split("\n").length, 1);
});

test("dsv4 info names the drafter layout it found", () => {
  const dspark = run("info", "--model", new Golden("tiny-dspark-a").dir);
  assert.equal(dspark.status, 0, dspark.stderr);
  assert.match(dspark.stdout, /^drafter  0731 DSpark \(3 stages, block 5\): taps of layers 1, 3, 5, Markov rank 32, noise token 1000$/m);
  const april = run("info", "--model", new Golden("tiny-a").dir, "--json");
  assert.equal(april.status, 0, april.stderr);
  const s = JSON.parse(april.stdout);
  assert.equal(s.drafter, "April MTP (1 block)");
  assert.equal(s.tensors, 921);
});
