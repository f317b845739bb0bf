/**
 * Request effort values → the effort word of the encoder in use (spec api.md §B.2). One table
 * for every dialect: OpenAI `reasoning_effort`, Anthropic `output_config.effort` and Responses
 * `reasoning.effort` all go through EFFORT_LEVELS, then the encoder's rendering of the level,
 * so the server, the engine and the CLI agree on what a value renders as.
 */
import { EncodingError } from "./messages.js";
import type { Release } from "./release.js";

/** What clients send: OpenAI's values (`none` aside: it turns thinking off) and DeepSeek's. */
export const API_EFFORTS = ["minimal", "low", "medium", "high", "xhigh", "max", "ultra"] as const;
export type ApiEffort = (typeof API_EFFORTS)[number];

/** The levels DeepSeek's models know (Aug 2026 docs: low, high, max). */
export type EffortLevel = "low" | "high" | "max";

/**
 * DeepSeek's documented mapping of request words to levels, the same in all three API formats:
 * minimal→low, low→low, medium→high, high→high, xhigh→high, max→max, ultra→max. vLLM's 0731
 * port maps `medium` → low instead (§B.2, Uncertainties 5); the hosted docs win because the
 * hosted service is the one clients were written against.
 */
export const EFFORT_LEVELS: Record<ApiEffort, EffortLevel> = {
  minimal: "low",
  low: "low",
  medium: "high",
  high: "high",
  xhigh: "high",
  max: "max",
  ultra: "max",
};

/**
 * Each encoder's word for a level (null: no effort text). April's encoder knows only `max`
 * (its `high` adds nothing, and it has no `low`), so everything below max renders as no text
 * (§B.2's recommendation for the April weights); the 0731 encoder has all three.
 */
export const ENCODER_EFFORT: Record<Release, Record<EffortLevel, string | null>> = {
  april: { low: null, high: null, max: "max" },
  "0731": { low: "low", high: "high", max: "max" },
};

/** Request word → encoder word, per encoder: EFFORT_LEVELS then ENCODER_EFFORT. */
export const EFFORT_TABLE: Record<Release, Record<ApiEffort, string | null>> = {
  april: Object.fromEntries(API_EFFORTS.map((v) => [v, ENCODER_EFFORT.april[EFFORT_LEVELS[v]]])) as Record<ApiEffort, string | null>,
  "0731": Object.fromEntries(API_EFFORTS.map((v) => [v, ENCODER_EFFORT["0731"][EFFORT_LEVELS[v]]])) as Record<ApiEffort, string | null>,
};

/**
 * The effort a request without `reasoning_effort` gets: each encoder's own
 * default, which adds no text (April `high`, 0731 `low`).
 */
export const DEFAULT_EFFORT: Record<Release, ApiEffort> = { april: "high", "0731": "low" };

export function isApiEffort(value: unknown): value is ApiEffort {
  return typeof value === "string" && (API_EFFORTS as readonly string[]).includes(value);
}

/**
 * The encoder option for an API value (null: no effort text). Throws
 * EncodingError on `reasoning_effort` for a value no table knows.
 */
export function encoderEffort(apiValue: string | null | undefined, encoding: Release = "april"): string | null {
  if (apiValue === null || apiValue === undefined) return null;
  if (!isApiEffort(apiValue)) {
    throw new EncodingError("reasoning_effort", `${JSON.stringify(apiValue)} is not a reasoning effort; use one of ${API_EFFORTS.join(", ")}`);
  }
  return EFFORT_TABLE[encoding][apiValue];
}
