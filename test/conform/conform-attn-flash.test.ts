import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { runConform } from "../../src/conform/lockstep.js";
import { conformTokens } from "../../src/conform/tokens.js";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { loadConfig } from "../../src/model/config.js";
import { writeTinyCheckpoint } from "../../src/tiny/tiny.js";
import { nativeSkip } from "../kernels/native-available.js";
import { assertConforms } from "./conform-cases.js";

// V4-Flash's attention shapes (head_dim 512, window 128, 64 indexer heads of 128, top-512).
// The indexer exists only at compression ratio 4, so top-512 binds once 513 rows are
// compressed: from position 2051. Seed 1 prefills 2048 positions in one chunk (the cheap way
// there: one batched forward) and decodes 80 more, 29 of them choosing 512 of 513-520 rows;
// seed 2 decodes 128 positions one by one.
const skip = nativeSkip();
const root = mkdtempSync(join(tmpdir(), "dsv4-conform-attn-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("conform: attn-flash preset", { skip }, () => {
  for (const { seed, prefill, positions } of [{ seed: 1, prefill: 2048, positions: 2128 }, { seed: 2, prefill: 0, positions: 128 }]) {
    test(`seed ${seed}: ${positions} positions${prefill ? `, the first ${prefill} as one prefill` : ""}`, async (t) => {
      const dir = join(root, `attn-flash-${seed}`);
      await writeTinyCheckpoint(dir, { preset: "attn-flash", seed });
      const cfg = loadConfig(dir);
      assert.equal(cfg.indexTopk, 512);
      if (prefill) assert.ok(Math.floor(positions / 4) > cfg.indexTopk, "top-512 must bind inside the run");
      const tokens = conformTokens(positions, cfg.vocabSize, seed);
      assertConforms(t, runConform({ modelDir: dir, tokens, backend: new NativeBackend(), prefill }));
    });
  }
});
