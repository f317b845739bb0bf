import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { runConform } from "../../src/conform/lockstep.js";
import { conformTokens } from "../../src/conform/tokens.js";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { loadConfig } from "../../src/model/config.js";
import { writeTinyCheckpoint } from "../../src/tiny/tiny.js";
import { testDataDir } from "../helpers/paths.js";
import { nativeSkip } from "../kernels/native-available.js";
import { assertConforms } from "./conform-cases.js";

// Every test-sized preset (attn-flash has its own file: it needs a long prefill) and the
// tiny-a golden checkpoint, two seeds each, 128 positions decoded in lockstep with the
// float64 reference: rounding flips are allowed, anything else is not.
const PRESETS = ["micro", "small-fp8experts", "small-nohash", "tiny", "tiny-0731", "micro-0731"];
const SEEDS = [1, 2];
const POSITIONS = 128;

const skip = nativeSkip();
const root = mkdtempSync(join(tmpdir(), "dsv4-conform-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("conform: native vs the float64 reference", { skip }, () => {
  for (const preset of PRESETS) {
    for (const seed of SEEDS) {
      test(`${preset}, seed ${seed}`, async (t) => {
        const dir = join(root, `${preset}-${seed}`);
        await writeTinyCheckpoint(dir, { preset, seed, tokenizer: false });
        try {
          const tokens = conformTokens(POSITIONS, loadConfig(dir).vocabSize, seed);
          assertConforms(t, runConform({ modelDir: dir, tokens, backend: new NativeBackend() }));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  }
  for (const seed of SEEDS) {
    test(`golden tiny-a, token seed ${seed}`, (t) => {
      const dir = join(testDataDir, "golden", "tiny-a");
      const tokens = conformTokens(POSITIONS, loadConfig(dir).vocabSize, seed);
      assertConforms(t, runConform({ modelDir: dir, tokens, backend: new NativeBackend() }));
    });
  }
});
