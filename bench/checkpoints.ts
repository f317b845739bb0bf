import { existsSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { writeTinyCheckpoint } from "../src/tiny/tiny.js";

/**
 * A generated checkpoint cached under ~/.cache/dsv4 (or DSV4_CACHE_DIR) so repeated runs
 * reuse it; `tag` names a variant made with config `overrides`.
 */
export async function cachedPreset(preset: string, opts: { seed?: number; overrides?: Record<string, unknown>; tag?: string } = {}): Promise<string> {
  const seed = opts.seed ?? 0;
  const dir = join(process.env.DSV4_CACHE_DIR ?? join(homedir(), ".cache", "dsv4"), `${preset}-seed${seed}${opts.tag ?? ""}`);
  if (!existsSync(join(dir, "config.json"))) {
    mkdirSync(dir, { recursive: true });
    await writeTinyCheckpoint(dir, { preset, seed, overrides: opts.overrides });
  }
  return dir;
}
