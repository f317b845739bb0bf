/**
 * The prefix cache's disk tier (`--cache-dir`): one file per tree node, named by its
 * chain key, in a folder named by the cache identity. Nothing found there is trusted:
 * at start-up only regular `.blk` files whose header parses are indexed (anything else is
 * skipped, with one warning for files that look like ours but are broken), and a block is
 * fully checked (checksum, shape against the model) when it is read; a bad one is removed
 * and becomes a miss. Writes go to a temporary name and are renamed into place, so a crash
 * leaves a whole file or none.
 */
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, unlinkSync } from "node:fs";
import { rename, unlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ModelConfig } from "../model/config.js";
import type { StateBlock } from "../model/state-blocks.js";
import { decodeBlockFile, decodeBlockHeader, encodeBlockFile } from "./block-file.js";

export interface DiskEntry {
  key: string;
  parent: string | null;
  start: number;
  end: number;
  provisional: boolean;
  hasTip: boolean;
  bytes: number;
  mtimeMs: number;
}

const MAX_HEADER_BYTES = 1 << 20;
const KEY = /^[0-9a-f]{64}$/;

export class BlockStore {
  readonly dir: string;
  private readonly index = new Map<string, DiskEntry>();
  private total = 0;
  private readonly pending = new Set<Promise<void>>();

  constructor(
    root: string,
    private readonly identity: string,
    private readonly cfg: ModelConfig,
    private readonly dtype: "f32" | "f64",
    private readonly warn: (message: string) => void,
  ) {
    this.dir = join(root, identity.slice(0, 32));
    mkdirSync(this.dir, { recursive: true });
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith(".blk") || !KEY.test(name.slice(0, -4))) continue;
      const entry = this.probe(name.slice(0, -4));
      if (entry) {
        this.index.set(entry.key, entry);
        this.total += entry.bytes;
      }
    }
  }

  private file(key: string): string {
    return join(this.dir, `${key}.blk`);
  }

  /** The header of an entry at start-up; null (with a warning, the file removed) when it is not usable. */
  private probe(key: string): DiskEntry | null {
    const file = this.file(key);
    let st;
    try {
      st = lstatSync(file);
    } catch {
      return null;
    }
    // Symlinks and directories are not ours to follow or remove.
    if (!st.isFile()) return null;
    let fd: number | undefined;
    try {
      fd = openSync(file, "r");
      const len = Buffer.alloc(8);
      if (readSync(fd, len, 0, 8, 0) < 8) return this.bad(key, "shorter than its length field");
      const n = len.readUInt32LE(0);
      if (n === 0 || n > MAX_HEADER_BYTES || 8 + n > st.size) return this.bad(key, `header length ${n} does not fit the file (${st.size} bytes)`);
      const buf = Buffer.alloc(8 + n);
      readSync(fd, buf, 0, buf.length, 0);
      const h = decodeBlockHeader(buf);
      if ("error" in h) return this.bad(key, h.error);
      const hd = h.header;
      if (hd.key !== key || !Number.isSafeInteger(hd.start) || !Number.isSafeInteger(hd.end)) return this.bad(key, "header names another entry");
      if (hd.identity !== this.identity) return this.bad(key, "written for another model");
      return { key, parent: hd.parent, start: hd.start, end: hd.end, provisional: hd.provisional, hasTip: hd.tip !== null, bytes: st.size, mtimeMs: st.mtimeMs };
    } catch (e) {
      return this.bad(key, (e as Error).message);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  private bad(key: string, why: string): null {
    this.warn(`dsv4: warning: prefix cache entry ${this.file(key)} is unusable (${why}); dropped`);
    this.unlinkQuietly(this.file(key));
    return null;
  }

  private unlinkQuietly(file: string): void {
    try {
      unlinkSync(file);
    } catch {
      // Already gone, or not ours to remove (read-only directory): a miss either way.
    }
  }

  get size(): number {
    return this.index.size;
  }
  get bytes(): number {
    return this.total;
  }

  entries(): IterableIterator<DiskEntry> {
    return this.index.values();
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  /** The block, fully checked; null (the entry dropped with a warning) when it is not usable. */
  read(key: string): StateBlock | null {
    if (!this.index.has(key)) return null;
    let buf: Buffer;
    try {
      buf = readFileSync(this.file(key));
    } catch (e) {
      this.forget(key);
      return this.bad(key, (e as Error).message);
    }
    const r = decodeBlockFile(buf, this.cfg, this.dtype);
    if ("error" in r || r.header.key !== key || r.header.identity !== this.identity) {
      this.forget(key);
      return this.bad(key, "error" in r ? r.error : "header names another entry");
    }
    return r.block;
  }

  /** Queues a write (replacing an existing entry of the same key); returns at once. */
  write(key: string, parent: string | null, provisional: boolean, block: StateBlock): void {
    const bytes = encodeBlockFile({ identity: this.identity, key, parent, provisional }, block);
    this.forget(key);
    this.index.set(key, { key, parent, start: block.start, end: block.end, provisional, hasTip: block.tip !== null, bytes: bytes.length, mtimeMs: Date.now() });
    this.total += bytes.length;
    const file = this.file(key);
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    const p = writeFile(tmp, bytes)
      .then(() => rename(tmp, file))
      .catch((e: Error) => {
        this.warn(`dsv4: warning: cannot write prefix cache entry ${file} (${e.message})`);
        this.forget(key);
        return unlink(tmp).catch(() => undefined);
      })
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Marks an entry recently used (its mtime orders eviction after a restart). */
  touch(key: string): void {
    const e = this.index.get(key);
    if (!e) return;
    e.mtimeMs = Date.now();
    const p = utimes(this.file(key), new Date(), new Date())
      .catch(() => undefined)
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  remove(key: string): void {
    if (!this.index.has(key)) return;
    this.forget(key);
    this.unlinkQuietly(this.file(key));
  }

  private forget(key: string): void {
    const e = this.index.get(key);
    if (!e) return;
    this.index.delete(key);
    this.total -= e.bytes;
  }

  /** Waits for queued writes. */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
