/**
 * Request `reasoning_effort` values → the effort word of the encoder in use
 * (spec api.md §B.2). One table per encoder, so the server, the engine and
 * the CLI agree on what a value renders as.
 */
import { EncodingError } from "./messages.js";
import type { Release } from "./release.js";

/** What clients send: OpenAI's values (`none` aside: it turns thinking off) and DeepSeek's. */
export const API_EFFORTS = ["minimal", "low", "medium", "high", "xhigh", "max"] as const;
export type ApiEffort = (typeof API_EFFORTS)[number];

/**
 * April: the encoder knows only `max` (its `high` adds nothing), so everything
 * below `max` renders as no prefix (§B.2's recommendation for the April weights).
 * 0731: the documented hosted mapping (`medium` and `xhigh` → high); `minimal`,
 * which the hosted table does not list, → low as in vLLM's 0731 port. vLLM
 * maps `medium` → low instead (§B.2, Uncertainties 5); the hosted docs win here
 * because the hosted service is the one clients were written against.
 */
export const EFFORT_TABLE: Record<Release, Record<ApiEffort, string | null>> = {
  april: { minimal: null, low: null, medium: null, high: null, xhigh: null, max: "max" },
  "0731": { minimal: "low", low: "low", medium: "high", high: "high", xhigh: "high", max: "max" },
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
