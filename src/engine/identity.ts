/**
 * The model's identity: a digest that changes whenever any byte of the
 * checkpoint does, so a prefix cache built by one checkpoint is never served
 * by another. Two checkpoints of one architecture (a fine-tune, another seed,
 * one flipped weight) have byte-identical configs and headers, so sampling a
 * few regions is not enough: every shard is hashed in full, once, and its
 * digest remembered (shard-digests.ts) so later starts cost a stat per shard.
 *
 * The prefix cache is keyed by `cacheIdentity`: the model identity plus the
 * precision the backend computes in, because a float32 state restored into a
 * float64 backend (or the reverse) is another model's state.
 */
import { createHash } from "node:crypto";
import { open, readFile, realpath, stat } from "node:fs/promises";
import { parseIndex } from "../formats/checkpoint-index.js";
import { join } from "node:path";
import { dsv4Home } from "../home.js";
import { hashFile, ShardDigests, stampOf } from "./shard-digests.js";

const METADATA_FILES = ["config.json", "model.safetensors.index.json"];
/** Larger safetensors headers are refused by the loader; here only what a header can be is read. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface IdentityOptions {
  /**
   * Where shard digests are remembered (see shardDigestsFile); null hashes every shard at
   * every call. Default: `shardDigestsFile()`.
   */
  digestFile?: string | null;
  /** Bytes hashed so far of those that need hashing (shards not remembered), and the shard being read. */
  onProgress?: (p: { hashed: number; total: number; file: string }) => void;
  signal?: AbortSignal;
  /** Default: a `dsv4: warning:` line on stderr. */
  warn?: (message: string) => void;
}

const stderrWarn = (m: string) => process.stderr.write(`dsv4: warning: ${m}\n`);

/**
 * Where shard digests are remembered: beside the prefix cache when there is one
 * (`<cacheDir>/shard-digests.json`), else in dsv4's home folder.
 */
export function shardDigestsFile(cacheDir?: string): string {
  return join(cacheDir ?? dsv4Home(), "shard-digests.json");
}

/** "f32" / "f64": the precision of a backend's state, from its bytes per value. */
export function precisionOf(bytesPerValue: number): "f32" | "f64" {
  return bytesPerValue === 8 ? "f64" : "f32";
}

/**
 * The prefix cache's key root: entries written for one (model, precision) never restore into
 * another. `precision` is what precisionOf gives (e.g. "f32" native, "f64" reference).
 */
export function cacheIdentity(modelIdentity: string, precision: string): string {
  return createHash("sha256").update("dsv4-cache-identity-v1\0").update(modelIdentity).update("\0").update(precision).digest("hex");
}

/** Length-prefixed, so no two different sequences of fields hash the same. */
function field(h: ReturnType<typeof createHash>, bytes: Uint8Array | string): void {
  const b = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes;
  h.update(`${b.length}:`).update(b);
}

/** The safetensors header (8-byte length + JSON) as stored; just the length field when that is implausible. */
async function headerBytes(path: string, size: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const len = Buffer.alloc(8);
    const { bytesRead } = await fh.read(len, 0, 8, 0);
    if (bytesRead < 8) return len.subarray(0, bytesRead);
    const n = Number(len.readBigUInt64LE(0));
    if (n > MAX_HEADER_BYTES || n > size - 8) return len;
    const out = Buffer.alloc(8 + n);
    len.copy(out);
    const r = await fh.read(out, 8, n, 8);
    return out.subarray(0, 8 + r.bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * The shards the checkpoint consists of: those its index names, or `model.safetensors`. Other
 * files in the folder (a stray copy, a folder named like a shard) are not the model's.
 */
async function shardNames(dir: string): Promise<string[]> {
  const indexPath = join(dir, "model.safetensors.index.json");
  const text = await readFile(indexPath, "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return null;
    throw err;
  });
  if (text === null) return ["model.safetensors"];
  return [...new Set(parseIndex(indexPath, text).values())].sort();
}

/**
 * Hex SHA-256 over config.json, the shard index, and for every shard (sorted by
 * name) its name, size, tensor header and the SHA-256 of all its bytes. Shards whose digest is
 * remembered for their current stamp are not read again.
 */
export async function modelIdentity(dir: string, opts: IdentityOptions = {}): Promise<string> {
  const warn = opts.warn ?? stderrWarn;
  const digests = await ShardDigests.load(opts.digestFile === undefined ? shardDigestsFile() : opts.digestFile, warn);
  const h = createHash("sha256");
  h.update("dsv4-identity-v2\0");
  for (const name of METADATA_FILES) {
    const bytes = await readFile(join(dir, name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return null;
      throw err;
    });
    field(h, name);
    field(h, bytes === null ? "(absent)" : bytes);
  }

  const names = await shardNames(dir);
  const shards = [];
  for (const name of names) {
    const path = await realpath(join(dir, name));
    const stamp = stampOf(await stat(path, { bigint: true }));
    shards.push({ name, path, stamp, sha256: digests.get(path, stamp) });
  }
  const total = shards.reduce((n, s) => n + (s.sha256 === undefined ? s.stamp.size : 0), 0);
  let hashed = 0;
  for (const s of shards) {
    if (s.sha256 === undefined) {
      opts.onProgress?.({ hashed, total, file: s.name });
      const r = await hashFile(s.path, (n) => {
        hashed += n;
        opts.onProgress?.({ hashed, total, file: s.name });
      }, opts.signal);
      s.sha256 = r.sha256;
      // A shard that changed while read is hashed again next time rather than remembered wrong.
      if (r.stable) await digests.remember(s.path, r.stamp, r.sha256);
      else warn(`${s.path} changed while it was hashed; its digest is not remembered`);
    }
    field(h, s.name);
    field(h, String(s.stamp.size));
    field(h, await headerBytes(s.path, s.stamp.size));
    field(h, s.sha256);
  }
  return h.digest("hex");
}
