/**
 * The prefix cache's disk tier (`--cache-dir`): one entry file (cache-file.ts) per tree
 * node, named by its chain key, in a folder named by the cache identity. Nothing found
 * there is trusted: at start-up only `.blk` files whose header checks out are indexed
 * (a broken one is removed with one warning; symlinks and directories are skipped, never
 * followed or removed), and a block is fully checked (checksum, shape against the model)
 * when it is read; a bad one is removed and becomes a miss.
 */
import { mkdirSync, readdirSync, statSync, unlinkSync } from "node:fs";
import { utimes } from "node:fs/promises";
import { join } from "node:path";
import type { ModelConfig } from "../model/config.js";
import type { StateBlock } from "../model/state-blocks.js";
import { blockEntry, blockFromEntry, blockHeaderError, type BlockHeader } from "./block-file.js";
import { isEntryError, readEntry, readEntryHeader, writeEntry } from "./cache-file.js";

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

const KEY = /^[0-9a-f]{64}$/;

const diskEntry = (h: BlockHeader, bytes: number, mtimeMs: number): DiskEntry => ({
  key: h.key, parent: h.parent, start: h.start, end: h.end, provisional: h.provisional, hasTip: h.tip !== null, bytes, mtimeMs,
});

export class BlockStore {
  readonly dir: string;
  private readonly index = new Map<string, DiskEntry>();
  private total = 0;
  private readonly pending = new Set<Promise<void>>();
  /** False when the folder cannot be created or listed: the cache then lives in memory only. */
  private readonly usable: boolean;

  constructor(
    root: string,
    private readonly identity: string,
    private readonly cfg: ModelConfig,
    private readonly dtype: "f32" | "f64",
    private readonly warn: (message: string) => void,
  ) {
    this.dir = join(root, identity.slice(0, 32));
    let names: string[] = [];
    try {
      mkdirSync(this.dir, { recursive: true });
      names = readdirSync(this.dir);
      this.usable = true;
    } catch (err) {
      // A cache folder that is a file, a dangling link or unreadable never stops start-up.
      this.warn(`dsv4: warning: prefix cache folder ${this.dir} is not usable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the prefix cache keeps to memory`);
      this.usable = false;
    }
    for (const name of names) {
      if (!name.endsWith(".blk") || !KEY.test(name.slice(0, -4))) continue; // not ours: leave it alone
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
    const r = readEntryHeader(this.file(key));
    if ("error" in r) {
      // Symlinks and directories are not ours to remove: skip them, once, without touching them.
      if (/symbolic link|directory|not a regular file/.test(r.error)) {
        this.warn(`dsv4: warning: ${r.error}; skipped`);
        return null;
      }
      return this.bad(key, r.error);
    }
    const h = r.header;
    const err = blockHeaderError(h, this.identity) ?? (h.key !== key ? "header names another entry" : null);
    if (err) return this.bad(key, `cache entry ${this.file(key)}: ${err}`);
    const hd = h as unknown as BlockHeader;
    let mtimeMs = 0;
    try {
      // Hits touch their files, so the mtime orders eviction across restarts.
      mtimeMs = statSync(this.file(key)).mtimeMs;
    } catch {
      // Gone since the header was read: it sorts first and is the first to go.
    }
    return diskEntry(hd, r.bytes, mtimeMs);
  }

  private bad(key: string, why: string): null {
    this.warn(`dsv4: warning: prefix cache entry unusable (${why}); dropped, a miss`);
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
    this.forget(key);
    const r = readEntry(this.file(key), (h) => blockHeaderError(h, this.identity) ?? (h.key !== key ? "header names another entry" : null));
    if (isEntryError(r)) return this.bad(key, r.error);
    const block = blockFromEntry(r.header as unknown as BlockHeader, r.payload, this.cfg, this.dtype);
    if ("error" in block) return this.bad(key, `cache entry ${this.file(key)}: ${block.error}`);
    const h = r.header as unknown as BlockHeader;
    const bytes = r.payload.reduce((n, p) => n + p.byteLength, 0);
    this.index.set(key, diskEntry(h, bytes, Date.now()));
    this.total += bytes;
    return block;
  }

  /** Queues a write (replacing an existing entry of the same key); returns at once. */
  write(key: string, parent: string | null, provisional: boolean, block: StateBlock): void {
    if (!this.usable) return;
    const { header, parts } = blockEntry({ identity: this.identity, key, parent, provisional }, block);
    const bytes = parts.reduce((n, p) => n + p.byteLength, 0);
    this.forget(key);
    this.index.set(key, diskEntry(header, bytes, Date.now()));
    this.total += bytes;
    const file = this.file(key);
    const p = writeEntry(file, header, parts)
      .catch((e: Error) => {
        this.warn(`dsv4: warning: cannot write prefix cache entry ${file} (${e.message})`);
        this.forget(key);
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

  /** Drops an entry the index cannot use (e.g. a broken or cyclic parent chain): one warning, the file removed. */
  discard(key: string, why: string): void {
    if (!this.index.has(key)) return;
    this.forget(key);
    this.bad(key, `cache entry ${this.file(key)}: ${why}`);
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
