/**
 * Full-content digests of checkpoint shards, computed once and remembered.
 *
 * Hashing every byte of a 160 GB checkpoint takes minutes, so a shard's
 * SHA-256 is stored in a small JSON file keyed by the shard's real path and
 * what the filesystem says about it (size, mtime in ns, inode, device). A
 * later start re-hashes only shards whose stat changed. The trade-off: a file
 * rewritten in place with its old mtime restored is not noticed; anything
 * that writes it normally (a download, a copy, an edit) is.
 *
 * The file is read as untrusted input (bad JSON or shape → ignored and
 * rebuilt, with one warning) and written atomically (temporary file + rename).
 */
import { createHash, randomBytes } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { mkdir, open, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { EngineError } from "./errors.js";

const FORMAT = "dsv4-shard-digests-v1";
/** Far more shards than a machine's checkpoints have; bounds the file (about 200 bytes an entry). */
const MAX_ENTRIES = 4096;
/** Read size: syscalls are cheap per byte at this size (about 1 GB/s here either way), and each
 * chunk's hashing holds the event loop for only a few ms. */
const CHUNK_BYTES = 4 << 20;

/** What identifies one version of a file without reading it. */
export interface FileStamp {
  size: number;
  mtimeNs: string;
  ino: string;
  dev: string;
}

interface StoredDigest extends FileStamp {
  sha256: string;
}

export function stampOf(st: BigIntStats): FileStamp {
  return { size: Number(st.size), mtimeNs: String(st.mtimeNs), ino: String(st.ino), dev: String(st.dev) };
}

const sameStamp = (a: FileStamp, b: FileStamp) => a.size === b.size && a.mtimeNs === b.mtimeNs && a.ino === b.ino && a.dev === b.dev;

function isStored(v: unknown): v is StoredDigest {
  if (typeof v !== "object" || v === null) return false;
  const d = v as Record<string, unknown>;
  return (
    Number.isSafeInteger(d.size) && (d.size as number) >= 0 &&
    typeof d.mtimeNs === "string" && /^\d+$/.test(d.mtimeNs) &&
    typeof d.ino === "string" && /^\d+$/.test(d.ino) &&
    typeof d.dev === "string" && /^\d+$/.test(d.dev) &&
    typeof d.sha256 === "string" && /^[0-9a-f]{64}$/.test(d.sha256)
  );
}

/** The remembered digests of one digest file; `file` null remembers nothing (every load hashes). */
export class ShardDigests {
  private constructor(
    /** Set to null after a failed write: one warning, not one per shard. */
    private file: string | null,
    private readonly known: Map<string, StoredDigest>,
    private readonly warn: (message: string) => void,
  ) {}

  /** Reads `file`; a missing file is empty, an unusable one is empty plus one warning. */
  static async load(file: string | null, warn: (message: string) => void): Promise<ShardDigests> {
    if (file === null) return new ShardDigests(null, new Map(), warn);
    const parsed = await readStore(file);
    if (typeof parsed === "string") {
      warn(`shard digests ${file}: ${parsed}; ignoring it (it is rebuilt as shards are hashed)`);
      return new ShardDigests(file, new Map(), warn);
    }
    return new ShardDigests(file, parsed ?? new Map(), warn);
  }

  /** The remembered digest of `path` if the file still has this stamp. */
  get(path: string, stamp: FileStamp): string | undefined {
    const d = this.known.get(path);
    return d && sameStamp(d, stamp) ? d.sha256 : undefined;
  }

  /**
   * Remembers a digest and writes the file. Stale entries of the same folder (deleted or
   * rewritten shards) are dropped; other folders' entries are kept even when their files are
   * out of reach (an unmounted disk must not cost a re-hash of its checkpoint), up to
   * MAX_ENTRIES, oldest dropped first. A failed write costs only a re-hash at the next start:
   * one warning.
   */
  async remember(path: string, stamp: FileStamp, sha256: string): Promise<void> {
    this.known.delete(path);
    this.known.set(path, { ...stamp, sha256 });
    if (this.file === null) return;
    try {
      // Another process may have added its shards since we read: merge, ours winning and newest.
      const onDisk = await readStore(this.file);
      const merged = new Map(typeof onDisk === "string" ? [] : (onDisk ?? []));
      for (const [p, d] of this.known) {
        merged.delete(p);
        merged.set(p, d);
      }
      for (const [p, d] of [...merged]) {
        if (p === path || dirname(p) !== dirname(path)) continue;
        const now = await stat(p, { bigint: true }).catch(() => null);
        if (!now || !sameStamp(d, stampOf(now))) merged.delete(p);
      }
      for (const p of merged.keys()) {
        if (merged.size <= MAX_ENTRIES) break;
        merged.delete(p);
      }
      await writeAtomic(this.file, JSON.stringify({ format: FORMAT, shards: Object.fromEntries(merged) }, null, 1) + "\n");
    } catch (err) {
      this.warn(`cannot remember shard digests in ${this.file} (${(err as Error).message}); the checkpoint will be hashed again at the next start; set another place with EngineOptions.shardDigestsFile or DSV4_HOME`);
      this.file = null;
    }
  }
}

/** The stored map, null when the file does not exist, or why it cannot be used. */
async function readStore(file: string): Promise<Map<string, StoredDigest> | null | string> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Absent (or its folder is not one): nothing remembered yet; a write will say what is wrong.
    return code === "ENOENT" || code === "ENOTDIR" ? null : `cannot read it (${code ?? (err as Error).message})`;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return `not valid JSON (${(err as Error).message})`;
  }
  const o = json as { format?: unknown; shards?: unknown };
  if (typeof o !== "object" || o === null || o.format !== FORMAT) return `not a ${FORMAT} file`;
  if (typeof o.shards !== "object" || o.shards === null || Array.isArray(o.shards)) return `"shards" is not an object`;
  const out = new Map<string, StoredDigest>();
  for (const [p, d] of Object.entries(o.shards)) {
    if (!isStored(d)) return `the entry for ${p} is not {size, mtimeNs, ino, dev, sha256}`;
    out.set(p, { size: d.size, mtimeNs: d.mtimeNs, ino: d.ino, dev: d.dev, sha256: d.sha256 });
  }
  return out;
}

async function writeAtomic(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, text, { flag: "wx" });
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * SHA-256 of a whole file, read in large chunks with the next read in flight while the
 * current chunk is hashed; the event loop turns between chunks. `stable` is false when the
 * file's stamp changed while it was read (its digest then describes no single version).
 */
export async function hashFile(
  path: string,
  onBytes: (bytes: number) => void = () => undefined,
  signal?: AbortSignal,
): Promise<{ sha256: string; stamp: FileStamp; stable: boolean }> {
  const fh = await open(path, "r");
  const bufs = [Buffer.allocUnsafeSlow(CHUNK_BYTES), Buffer.allocUnsafeSlow(CHUNK_BYTES)];
  let pending: Promise<{ bytesRead: number }> | null = null;
  try {
    const before = stampOf(await fh.stat({ bigint: true }));
    const hash = createHash("sha256");
    let pos = 0;
    let cur = 0;
    pending = fh.read(bufs[cur]!, 0, CHUNK_BYTES, pos);
    for (;;) {
      const { bytesRead } = await pending;
      pending = null;
      if (bytesRead === 0) break;
      const chunk = bufs[cur]!.subarray(0, bytesRead);
      pos += bytesRead;
      cur ^= 1;
      pending = fh.read(bufs[cur]!, 0, CHUNK_BYTES, pos);
      hash.update(chunk);
      onBytes(bytesRead);
      if (signal?.aborted) throw new EngineError("aborted", "model load was aborted");
    }
    const after = stampOf(await fh.stat({ bigint: true }));
    return { sha256: hash.digest("hex"), stamp: before, stable: sameStamp(before, after) && pos === before.size };
  } finally {
    await pending?.catch(() => undefined);
    await fh.close();
  }
}
