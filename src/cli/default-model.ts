/**
 * The embedded default model: a tiny random-weight DeepSeek-V4 checkpoint with
 * the real V4 vocabulary and tokenizer, written on first use so `dsv4 serve`
 * works right after `npm install`. Its output is noise; it exists so clients,
 * tests and benchmarks can run without a 150 GB download.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { dsv4Home } from "../home.js";
import { writeTinyCheckpoint } from "../tiny/tiny.js";

export { dsv4Home };

export const DEFAULT_MODEL_PRESET = "tiny";
export const DEFAULT_MODEL_SEED = 0;
const MARKER = ".dsv4-default-model";

export function defaultModelDir(): string {
  return join(dsv4Home(), "default-model");
}

const markerText = () => JSON.stringify({ preset: DEFAULT_MODEL_PRESET, seed: DEFAULT_MODEL_SEED });

function isReady(dir: string): boolean {
  try {
    return readFileSync(join(dir, MARKER), "utf8") === markerText();
  } catch {
    return false;
  }
}

/**
 * The default model's directory, written first if needed. Written to a
 * temporary sibling and renamed into place, so an interrupted first run or two
 * servers starting at once never leave a half-written model behind.
 */
export async function ensureDefaultModel(dir = defaultModelDir()): Promise<{ dir: string; created: boolean }> {
  if (isReady(dir)) return { dir, created: false };
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  try {
    await writeTinyCheckpoint(tmp, { preset: DEFAULT_MODEL_PRESET, seed: DEFAULT_MODEL_SEED });
    writeFileSync(join(tmp, MARKER), markerText());
    if (existsSync(dir)) {
      if (isReady(dir)) return { dir, created: false };
      rmSync(dir, { recursive: true, force: true });
    }
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // Another process won the race: use its copy.
      if (!isReady(dir)) throw err;
    }
    return { dir, created: true };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
