import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runConform } from "../../src/conform/lockstep.js";
import { conformTokens } from "../../src/conform/tokens.js";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { writeTinyCheckpoint } from "../../src/tiny/tiny.js";
import { nativeSkip } from "../kernels/native-available.js";
import { DroppedColumnBackend, SkippedScaleFp4Backend, TruncatingFp8Backend } from "./broken-backends.js";

// A deliberately broken kernel must fail conform as a disagreement far from any rounding
// boundary (or as aligned logits out of tolerance), never pass as a handful of flips.
const skip = nativeSkip();
const root = mkdtempSync(join(tmpdir(), "dsv4-conform-broken-"));
const dir = join(root, "micro");
after(() => rmSync(root, { recursive: true, force: true }));

describe("conform catches a broken kernel", { skip }, () => {
  before(async () => {
    await writeTinyCheckpoint(dir, { preset: "micro", seed: 1 });
  });
  const tokens = conformTokens(24, 1024, 1);

  test("the unbroken backend passes on the same run", () => {
    assert.ok(runConform({ modelDir: dir, tokens, backend: new NativeBackend() }).ok);
  });

  test("FP8 simulation rounding toward zero: disagreements far from every midpoint", () => {
    const r = runConform({ modelDir: dir, tokens, backend: new TruncatingFp8Backend(new NativeBackend()), keepLog: Infinity });
    assert.equal(r.ok, false);
    assert.ok(r.farDisagreements > 10, `only ${r.farDisagreements} far disagreements`);
    assert.ok(r.maxFlipDistance > 1e-3, `worst distance ${r.maxFlipDistance}`);
    // Activation quantisation runs through the backend's fp8Simulate in lockstep (the native
    // addon's fused quantiser is that same function), so it shows the bug too.
    assert.ok(r.log.some((d) => d.op === "fp8-sim" && d.distance > 1e-3), "no far disagreement at the KV FP8 simulation");
    assert.match(r.failures[0]!, /farther than 0.00001 from a rounding boundary/);
  });

  test("FP4 simulation without its block scale: caught at the indexer's quantisation point", () => {
    const r = runConform({ modelDir: dir, tokens, backend: new SkippedScaleFp4Backend(new NativeBackend()) });
    assert.equal(r.ok, false);
    assert.ok(r.maxFlipDistance > 0.1, `worst distance ${r.maxFlipDistance}`);
    assert.equal(r.worst!.op, "fp4-sim");
    assert.match(r.worst!.site, /indexer/);
  });

  test("a GEMM dropping one input column: no quantisation point explains it, the aligned logits fail", () => {
    const r = runConform({ modelDir: dir, tokens, backend: new DroppedColumnBackend(new NativeBackend()) });
    assert.equal(r.ok, false);
    assert.ok(r.maxLogitDiff > 1e-4, `logits differ by only ${r.maxLogitDiff}`);
    assert.ok(r.failures.some((f) => /aligned logits differ/.test(f)), r.failures.join("; "));
  });
});
