import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { writeTinyCheckpoint } from "../../src/tiny/tiny.js";

const root = mkdtempSync(join(tmpdir(), "dsv4-engine-test-"));
after(() => rmSync(root, { recursive: true, force: true }));
// What engines write under dsv4's home (shard digests) stays in this test's folder, not the user's.
process.env.DSV4_HOME = join(root, "home");

const made = new Map<string, Promise<string>>();

/** A generated checkpoint directory, written once per test process. */
export function checkpoint(preset: "micro" | "tiny" | "small-nohash" | (string & {}), seed = 1): Promise<string> {
  const key = `${preset}-${seed}`;
  let p = made.get(key);
  if (!p) {
    const dir = join(root, key);
    p = writeTinyCheckpoint(dir, { preset, seed }).then(() => dir);
    made.set(key, p);
  }
  return p;
}

export function tempDir(name: string): string {
  return mkdtempSync(join(root, `${name}-`));
}

/** Deterministic prompt ids inside [3, vocab). */
export function promptIds(n: number, salt = 0, vocab = 1024): number[] {
  return Array.from({ length: n }, (_, i) => ((i + 1) * 7919 + salt * 104729) % (vocab - 3) + 3);
}
