import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { SafetensorsFile } from "../../src/formats/safetensors.js";
import { writeSafetensors, type TensorToWrite } from "../../src/formats/safetensors-writer.js";
import { RefBackend } from "../../src/kernels/ref/index.js";
import { Dsv4Model } from "../../src/model/transformer.js";
import { drafterLayout } from "../../src/model/weights.js";
import { testDataDir } from "../helpers/paths.js";

// A 0731 checkpoint (the official tiny-dspark-a) with one mtp.* tensor removed or cut short
// must be refused at load with one line naming that tensor.
const golden = join(testDataDir, "golden", "tiny-dspark-a");
const root = mkdtempSync(join(tmpdir(), "dsv4-dspark-load-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A copy of the golden checkpoint whose tensors pass through `edit`; `last` is written last in the file. */
function variant(name: string, edit: (tensors: TensorToWrite[]) => TensorToWrite[], last?: string): string {
  const dir = join(root, name);
  mkdirSync(dir);
  const src = SafetensorsFile.open(join(golden, "model.safetensors"));
  try {
    let tensors: TensorToWrite[] = [...src.tensors.entries()].map(([n, info]) => ({ name: n, dtype: info.dtype, shape: info.shape, data: src.read(n) }));
    if (last) tensors = [...tensors.filter((t) => t.name !== last), ...tensors.filter((t) => t.name === last)];
    writeSafetensors(join(dir, "model.safetensors"), edit(tensors));
  } finally {
    src.close();
  }
  copyFileSync(join(golden, "config.json"), join(dir, "config.json"));
  return dir;
}

function refusal(dir: string): string {
  try {
    Dsv4Model.load(dir, { backend: new RefBackend() }).close();
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail(`${dir} loaded`);
}

describe("loading a 0731 checkpoint", () => {
  test("the intact checkpoint loads as 0731 DSpark with 3 stages of block 5", () => {
    const model = Dsv4Model.load(golden, { backend: new RefBackend() });
    try {
      assert.equal(drafterLayout(model.cfg), "0731 DSpark (3 stages, block 5)");
      assert.equal(model.weights.mtp.length, 3);
      assert.ok(model.weights.dspark);
    } finally {
      model.close();
    }
  });

  for (const missing of ["mtp.0.main_proj.scale", "mtp.2.markov_head.markov_w2.weight", "mtp.2.confidence_head.proj.weight", "mtp.1.attn.wkv.weight"]) {
    test(`a missing ${missing} is refused with one line naming it`, () => {
      const msg = refusal(variant(`missing-${missing}`, (ts) => ts.filter((t) => t.name !== missing)));
      assert.ok(!msg.includes("\n"), msg);
      assert.match(msg, new RegExp(`tensor "${missing.replace(/\./g, "\\.")}"\\): tensor missing: .*drafter: 0731 DSpark \\(3 stages, block 5\\)`));
    });
  }

  test("a truncated mtp.* tensor (file cut inside its data) is refused with one line naming it", () => {
    const name = "mtp.2.markov_head.markov_w1.weight";
    const dir = variant("truncated", (ts) => ts, name);
    const file = join(dir, "model.safetensors");
    const f = SafetensorsFile.open(file);
    const info = f.tensors.get(name)!;
    f.close();
    truncateSync(file, info.start + Math.floor(info.byteLength / 2));
    const msg = refusal(dir);
    assert.ok(!msg.includes("\n"), msg);
    assert.match(msg, /tensor "mtp\.2\.markov_head\.markov_w1\.weight"\): data range .* ends past the end of the file .*truncated/);
  });

  test("an mtp.* tensor of the wrong shape is refused with one line naming it", () => {
    const name = "mtp.2.markov_head.markov_w1.weight";
    const msg = refusal(variant("shape", (ts) => ts.map((t) => (t.name === name ? { ...t, shape: [t.shape[1]!, t.shape[0]!] } : t))));
    assert.match(msg, /tensor "mtp\.2\.markov_head\.markov_w1\.weight"\): expected BF16 \[1024,32\], found BF16 \[32,1024\]/);
  });

  test("an April checkpoint's MTP tensors under a 0731 config are refused naming the first DSpark tensor missing", () => {
    const msg = refusal(variant("no-main-proj", (ts) => ts.filter((t) => !t.name.startsWith("mtp.0.main_"))));
    assert.match(msg, /tensor "mtp\.0\.main_proj\.weight"\): tensor missing/);
  });

  test("a stage more than the config counts is refused", () => {
    const msg = refusal(variant("extra-stage", (ts) => [...ts, { ...ts.find((t) => t.name === "mtp.1.attn_norm.weight")!, name: "mtp.3.attn_norm.weight" }]));
    assert.match(msg, /tensor "mtp\.3\.attn_norm\.weight"\): unexpected tensor: the config gives 3 drafter block\(s\)/);
  });
});
