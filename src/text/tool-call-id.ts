/**
 * Tool-call ids in the hosted service's shape, `call_<2-digit index>_<24
 * alphanumerics>` (spec §A.5). A seed makes them reproducible for tests.
 */
import { randomBytes } from "node:crypto";
import { seededRandom } from "./seeded-random.js";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

export type ToolCallIdGenerator = (index: number) => string;


function cryptoChars(n: number): string {
  let out = "";
  while (out.length < n) {
    for (const b of randomBytes(n * 2)) {
      // 248 = 4 × 62: rejecting the rest keeps every character equally likely.
      if (b < 248 && out.length < n) out += ALPHABET[b % 62];
    }
  }
  return out;
}

export function createToolCallIdGenerator(seed?: number): ToolCallIdGenerator {
  const next = seed === undefined ? undefined : seededRandom(seed);
  return (index: number) => {
    const suffix = next ? Array.from({ length: 24 }, () => ALPHABET[Math.floor(next() * 62)]).join("") : cryptoChars(24);
    return `call_${String(index).padStart(2, "0")}_${suffix}`;
  };
}

export const TOOL_CALL_ID_PATTERN = /^call_\d{2,}_[A-Za-z0-9]{24}$/;
