/**
 * Prefix cache (context caching): decoding state saved at fixed token
 * boundaries, so a request that shares a prefix with an earlier one restores
 * the state instead of prefilling it again.
 *
 * Keys form a hash chain over blocks of `blockTokens` tokens (key k covers
 * tokens [0, k·block)), rooted in the cache identity (model + precision);
 * each block is salted with the request's isolation salt unless it lies
 * wholly inside a shared prefix (cache-salt.ts). A sequence is snapshotted
 * at the block boundaries its prefill chunks end on; each entry is a delta on
 * the sequence's previous snapshot (see snapshot-delta.ts), so a hit needs
 * that entry's whole parent chain.
 * Lookup tries the longest cached boundary first and falls back to shorter
 * ones when a chain is broken. Memory is an LRU within a byte budget; when a
 * directory is configured every entry is also written there.
 */
import { createHash } from "node:crypto";
import type { SequenceSnapshot } from "../model/state.js";
import { DiskCache } from "./cache-disk.js";
import { saltOfBlock, type BlockSalts } from "./cache-salt.js";
import { assemble, deltaBytes, type SnapshotDelta } from "./snapshot-delta.js";

export interface PrefixCacheConfig {
  identity: string;
  blockTokens: number;
  memoryBytes: number;
  dir?: string;
  diskBytes: number;
}

interface MemEntry {
  delta: SnapshotDelta;
  parent: string | null;
  bytes: number;
}

/** Where a sequence's state was last saved or restored: the parent of its next snapshot. */
export interface CacheAnchor {
  key: string;
  length: number;
}

export interface PrefixHit {
  /** Prompt tokens covered by the restored state. */
  tokens: number;
  anchor: CacheAnchor | null;
  /** The state to restore (null on a miss). */
  snapshot: SequenceSnapshot | null;
}

/** What to do at a block boundary: the sequence's new anchor, and whether its state must be captured. */
export interface InsertPlan {
  anchor: CacheAnchor | null;
  /** Capture the state as a delta on this length and hand it to `put` under `key`. */
  capture: { key: string; parent: string | null; fromLength: number } | null;
}

export class PrefixCache {
  readonly blockTokens: number;
  private readonly mem = new Map<string, MemEntry>();
  private memBytes = 0;
  private readonly disk: DiskCache | null;
  hits = 0;
  misses = 0;

  constructor(private readonly cfg: PrefixCacheConfig) {
    this.blockTokens = cfg.blockTokens;
    this.disk = cfg.dir ? new DiskCache(cfg.dir, cfg.identity, cfg.diskBytes) : null;
  }

  get entries(): number {
    return this.mem.size;
  }
  get bytes(): number {
    return this.memBytes;
  }
  get diskEntries(): number {
    return this.disk?.size ?? 0;
  }

  /**
   * Chain keys of every whole block of `tokens` (keys[k-1] covers k blocks). A block's key hashes
   * the previous key (64 hex), its token ids (4·block bytes) and, unless its salt is "", "\0" and
   * the salt: the fixed-length fields first, so no (tokens, salt) pair collides with another. A
   * block after a shared prefix chains from the shared blocks' keys but carries the salt, so
   * its entry is the tenant's own. A plain string is a salt with no shared prefix.
   */
  keys(tokens: readonly number[], salts: BlockSalts | string, blocks = Math.floor(tokens.length / this.blockTokens)): string[] {
    const s = typeof salts === "string" ? { sharedTokens: 0, salt: salts } : salts;
    const out: string[] = [];
    let prev = createHash("sha256").update(`${this.cfg.identity}\0`).digest("hex");
    const B = this.blockTokens;
    for (let k = 0; k < blocks; k++) {
      const ids = Int32Array.from(tokens.slice(k * B, (k + 1) * B));
      const h = createHash("sha256").update(prev).update(new Uint8Array(ids.buffer));
      const salt = saltOfBlock(s, (k + 1) * B);
      if (salt !== "") h.update("\0").update(salt, "utf8");
      prev = h.digest("hex");
      out.push(prev);
    }
    return out;
  }

  private has(key: string): boolean {
    return this.mem.has(key) || (this.disk?.has(key) ?? false);
  }

  /**
   * The state of the longest cached prefix of `tokens`, leaving at least one token to
   * prefill so the last position has logits.
   */
  lookup(tokens: readonly number[], salt: BlockSalts | string): PrefixHit {
    const maxBlocks = Math.floor((tokens.length - 1) / this.blockTokens);
    const keys = this.keys(tokens, salt, Math.max(0, maxBlocks));
    for (let n = keys.length; n > 0; n--) {
      const key = keys[n - 1]!;
      if (!this.has(key)) continue;
      const chain = this.loadChain(key);
      if (!chain) continue; // broken chain: a shorter prefix may still be whole
      const snapshot = assemble(chain.map((c) => c.delta));
      // Touch leaf first so ancestors end up most recent: eviction then takes leaves before the roots they depend on.
      for (let i = chain.length - 1; i >= 0; i--) this.touch(chain[i]!.key);
      this.hits++;
      return { tokens: n * this.blockTokens, anchor: { key, length: n * this.blockTokens }, snapshot };
    }
    this.misses++;
    return { tokens: 0, anchor: null, snapshot: null };
  }

  /** The entry and its ancestors, root first; null when one is missing or unreadable. */
  private loadChain(key: string): Array<{ key: string; delta: SnapshotDelta }> | null {
    const chain: Array<{ key: string; delta: SnapshotDelta }> = [];
    for (let k: string | null = key; k !== null; ) {
      let e = this.mem.get(k);
      if (!e && this.disk) {
        const r = this.disk.read(k);
        if (r) {
          e = { delta: r.delta, parent: r.parent, bytes: deltaBytes(r.delta) };
          this.putMem(k, e);
        }
      }
      if (!e) return null;
      chain.push({ key: k, delta: e.delta });
      k = e.parent;
    }
    return chain.reverse();
  }

  /**
   * For a sequence that will hold exactly `tokens.slice(0, length)`: when `length` is a block
   * boundary not cached yet, asks for a capture (a delta on `parent`, the sequence's last
   * anchor); a boundary already cached just becomes the new anchor.
   */
  planInsert(tokens: readonly number[], salt: BlockSalts | string, length: number, parent: CacheAnchor | null): InsertPlan {
    const B = this.blockTokens;
    if (length === 0 || length % B !== 0) return { anchor: parent, capture: null };
    const keys = this.keys(tokens, salt, length / B);
    const key = keys[keys.length - 1]!;
    const anchor = { key, length };
    if (this.mem.has(key)) {
      this.touch(key);
      return { anchor, capture: null };
    }
    if (this.disk?.has(key)) return { anchor, capture: null };
    return { anchor, capture: { key, parent: parent?.key ?? null, fromLength: parent?.length ?? 0 } };
  }

  /** Stores a delta captured as `planInsert` asked. */
  put(capture: NonNullable<InsertPlan["capture"]>, length: number, delta: SnapshotDelta): void {
    if (this.mem.has(capture.key)) return;
    this.putMem(capture.key, { delta, parent: capture.parent, bytes: deltaBytes(delta) });
    this.disk?.write(capture.key, capture.parent, length, delta);
  }

  private touch(key: string): void {
    const e = this.mem.get(key);
    if (!e) return;
    this.mem.delete(key);
    this.mem.set(key, e);
  }

  private putMem(key: string, e: MemEntry): void {
    this.mem.set(key, e);
    this.memBytes += e.bytes;
    for (const [k, old] of this.mem) {
      if (this.memBytes <= this.cfg.memoryBytes) break;
      if (k === key) continue;
      this.mem.delete(k);
      this.memBytes -= old.bytes;
    }
  }

  clear(): void {
    this.mem.clear();
    this.memBytes = 0;
  }

  async flush(): Promise<void> {
    await this.disk?.flush();
  }
}
