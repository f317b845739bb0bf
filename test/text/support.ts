/** Paths and small deterministic helpers shared by the text tests. */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

import { repoRoot, testDataDir } from "../helpers/paths.js";

export { repoRoot };
/** The official encoding test vectors, kept in the repository. */
export const fixtureDir = resolve(testDataDir, "fixtures", "encoding");

export function fixtureInput(n: number): unknown {
  return JSON.parse(readFileSync(resolve(fixtureDir, `test_input_${n}.json`), "utf8"));
}

export function fixtureOutput(n: number): string {
  return readFileSync(resolve(fixtureDir, `test_output_${n}.txt`), "utf8");
}


export function pick<T>(next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)]!;
}

/** Splits `text` into random chunks of 1..maxChunk UTF-16 units (surrogate pairs may split). */
export function randomChunks(text: string, next: () => number, maxChunk: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    const n = 1 + Math.floor(next() * maxChunk);
    out.push(text.slice(i, i + n));
    i += n;
  }
  return out;
}

/** Reproducible random cases. */
export { seededRandom as rng } from "../../src/text/seeded-random.js";
