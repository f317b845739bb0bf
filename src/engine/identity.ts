/**
 * The model's identity: a digest that changes whenever the checkpoint does, so
 * a prefix cache built by one checkpoint is never served by another.
 *
 * config.json and safetensors headers alone are not enough: two checkpoints of
 * one architecture (a fine-tune, another seed) have byte-identical headers. So
 * each shard also contributes its size and a sample of its tensor bytes (the
 * first and last MiB), which costs a few positional reads, not a full scan.
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";

const SAMPLE_BYTES = 1 << 20;

export function modelIdentity(dir: string): string {
  const h = createHash("sha256");
  h.update("dsv4-identity-v1\0");
  for (const name of ["config.json", "model.safetensors.index.json"]) {
    const p = join(dir, name);
    if (existsSync(p)) h.update(name).update("\0").update(readFileSync(p));
  }
  const shards = readdirSync(dir).filter((f) => f.endsWith(".safetensors")).sort();
  for (const name of shards) {
    h.update(name).update("\0");
    const fd = openSync(join(dir, name), "r");
    try {
      const size = fstatSync(fd).size;
      h.update(String(size)).update("\0");
      const head = Buffer.alloc(Math.min(size, SAMPLE_BYTES));
      readSync(fd, head, 0, head.length, 0);
      h.update(head);
      if (size > SAMPLE_BYTES) {
        const tail = Buffer.alloc(Math.min(size - SAMPLE_BYTES, SAMPLE_BYTES));
        readSync(fd, tail, 0, tail.length, size - tail.length);
        h.update(tail);
      }
    } finally {
      closeSync(fd);
    }
  }
  return h.digest("hex");
}
