/**
 * Chained hashes of a prompt's whole blocks, as a prefix cache keys them: block i's hash covers
 * the salt and every token up to the end of block i, so equal hashes mean equal prefixes. Only
 * whole blocks count: an upstream caches (and reuses) nothing shorter than its cache unit.
 */
import { createHash } from "node:crypto";

export function blockHashes(ids: readonly number[], blockTokens: number, salt: string): string[] {
  const out: string[] = [];
  let prev = salt;
  for (let end = blockTokens; end <= ids.length; end += blockTokens) {
    const block = Int32Array.from(ids.slice(end - blockTokens, end));
    prev = createHash("sha256").update(prev).update(new Uint8Array(block.buffer)).digest("base64");
    out.push(prev);
  }
  return out;
}
