/**
 * Which DeepSeek-V4-Flash release a checkpoint is, and so which prompt encoder
 * it was trained with (spec api.md §0): the April open weights, or the 0731
 * re-release with its three effort prefixes (§B.2). The prompt format is
 * otherwise the same, so the release only changes the effort texts (and the
 * server's default prices, §F).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export type Release = "april" | "0731";

export const RELEASES: readonly Release[] = ["april", "0731"];

/** The DSpark drafter's config keys (model.md §8b); any one of them marks a 0731 config, as in model/config.ts. */
const DSPARK_KEYS = ["dspark_block_size", "dspark_noise_token_id", "dspark_target_layer_ids", "dspark_markov_rank"];

/**
 * The release of a checkpoint from its raw config.json object. Only 0731
 * checkpoints carry the DSpark drafter's `dspark_*` keys (the 0731 config keeps
 * `num_nextn_predict_layers`, so that key cannot tell them apart). Anything
 * else, a config with no drafter included, is April.
 */
export function checkpointRelease(rawConfig: unknown): Release {
  if (typeof rawConfig !== "object" || rawConfig === null || Array.isArray(rawConfig)) return "april";
  return DSPARK_KEYS.some((k) => k in rawConfig) ? "0731" : "april";
}

/** The release of the checkpoint in `dir` (reads its config.json). */
export function checkpointReleaseAt(dir: string): Release {
  const file = join(dir, "config.json");
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`${file}: cannot read the checkpoint's config (${(err as Error).message})`);
  }
  return checkpointRelease(raw);
}

/** A release named by a user (`--encoding`, EngineOptions.encoding), or an error saying what is accepted. */
export function parseRelease(value: unknown, option: string): Release {
  if (typeof value === "string" && (RELEASES as readonly string[]).includes(value)) return value as Release;
  throw new Error(`${option} must be ${RELEASES.map((r) => JSON.stringify(r)).join(" or ")}, got ${JSON.stringify(value)}`);
}

/** What the engine renders prompts with: the checkpoint's release, and the encoder in use. */
export interface EncoderChoice {
  /** The checkpoint's release, from its config. */
  release: Release;
  /** The encoder in use: the release's own unless overridden. */
  encoding: Release;
  /** True when the encoder was named by the caller rather than taken from the checkpoint. */
  overridden: boolean;
}

/** The encoder for a checkpoint's release, unless the caller names one. */
export function chooseEncoder(release: Release, override?: string | null): EncoderChoice {
  if (override === undefined || override === null) return { release, encoding: release, overridden: false };
  return { release, encoding: parseRelease(override, "encoding"), overridden: true };
}
