import { seededRandom } from "../text/seeded-random.js";

/** `n` token ids drawn uniformly from [0, vocab) by a seeded generator: the same ids for the same seed. */
export function conformTokens(n: number, vocab: number, seed = 1): number[] {
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => Math.floor(rand() * vocab));
}
