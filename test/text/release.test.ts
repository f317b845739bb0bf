/** Which encoder a checkpoint gets: its release from config.json (dspark_* keys → 0731), overridable. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { checkpointRelease, checkpointReleaseAt, chooseEncoder, parseRelease } from "../../src/text/release.js";
import { testDataDir } from "../helpers/paths.js";

const config = (path: string): unknown => JSON.parse(readFileSync(resolve(testDataDir, path), "utf8"));

test("an April checkpoint's config (tiny-a, made by the official April model.py) is april", () => {
  assert.equal(checkpointRelease(config("golden/tiny-a/config.json")), "april");
});

test("a 0731 checkpoint's config (tiny-dspark-a, made by the official 0731 model.py) is 0731", () => {
  assert.equal(checkpointRelease(config("golden/tiny-dspark-a/config.json")), "0731");
});

test("any one of the four dspark_* keys is enough; num_nextn_predict_layers, which both releases keep, decides nothing", () => {
  for (const key of ["dspark_block_size", "dspark_noise_token_id", "dspark_target_layer_ids", "dspark_markov_rank"]) {
    assert.equal(checkpointRelease({ num_nextn_predict_layers: 1, [key]: 5 }), "0731", key);
  }
  assert.equal(checkpointRelease({ num_nextn_predict_layers: 1 }), "april");
});

test("a config that is not an object is april (the config loader refuses it with its own error)", () => {
  for (const raw of [null, [], "dspark_block_size", 3]) assert.equal(checkpointRelease(raw), "april");
});

test("checkpointReleaseAt reads the directory's config.json, and names the file when it cannot", () => {
  const dir = mkdtempSync(join(tmpdir(), "dsv4-release-"));
  try {
    assert.throws(() => checkpointReleaseAt(dir), (e: Error) => e.message.startsWith(join(dir, "config.json")));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ dspark_markov_rank: 32 }));
    assert.equal(checkpointReleaseAt(dir), "0731");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("without an override the encoder is the checkpoint's; with one, the override wins either way", () => {
  assert.deepEqual(chooseEncoder("0731"), { release: "0731", encoding: "0731", overridden: false });
  assert.deepEqual(chooseEncoder("0731", "april"), { release: "0731", encoding: "april", overridden: true });
  assert.deepEqual(chooseEncoder("april", "0731"), { release: "april", encoding: "0731", overridden: true });
});

test("an unknown encoder name is refused, naming the option and the accepted values", () => {
  assert.throws(() => chooseEncoder("april", "0813"), /^Error: encoding must be "april" or "0731", got "0813"$/);
  assert.throws(() => parseRelease("v4", "--encoding"), /--encoding must be "april" or "0731", got "v4"/);
});
