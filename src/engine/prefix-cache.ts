/**
 * Prefix cache (context caching): a tree of state blocks, so a request that shares a
 * prefix with an earlier one (an agent loop re-sending its conversation, a common system
 * prompt) restores that prefix's state instead of prefilling it again.
 *
 * Keys form a hash chain over blocks of `blockTokens` tokens (key k covers tokens
 * [0, k·block)) from the cache identity (model and precision); each block is salted with
 * the request's tenant and user_id unless it lies wholly inside a shared prefix. A node is
 * stored when a sequence's state reaches a block boundary (the end of a prefill chunk, or
 * each boundary while it decodes, so answers are cached too) and holds what the state
 * gained since its parent (model/state-blocks.ts). A node with a tip is a place to resume
 * from; a decoding sequence's previous node loses its tip when the next one is stored,
 * since only the newest boundary of an answer is a likely place for the next turn to
 * diverge (a node somebody hit, or that has other children, keeps it).
 *
 * Children hold references to their parents; running sequences pin the node they resume
 * from. Eviction takes the least recently used unpinned leaf, memory first (a node on disk
 * just leaves memory), so the longest live prefixes stay reachable; a hit refreshes its
 * whole path. With a directory the tree is also kept on disk and rebuilt at start-up.
 */
import { createHash } from "node:crypto";
import type { ModelConfig } from "../model/config.js";
import { blockBytes, blockLayerBytes, type StateBlock } from "../model/state-blocks.js";
import { BlockStore } from "./cache-disk.js";
import { saltOfBlock, type BlockSalts } from "./cache-salt.js";

export interface PrefixCacheConfig {
  identity: string;
  blockTokens: number;
  memoryBytes: number;
  dir?: string;
  diskBytes: number;
  cfg: ModelConfig;
  dtype: "f32" | "f64";
  warn?: (message: string) => void;
}

interface Node {
  key: string;
  parent: string | null;
  start: number;
  end: number;
  /** In memory; null when only on disk. */
  block: StateBlock | null;
  bytes: number;
  onDisk: boolean;
  hasTip: boolean;
  provisional: boolean;
  children: number;
  pins: number;
  hits: number;
  lastUsed: number;
}

/** Where a sequence's state was last stored or restored: the parent of its next node. */
export interface CacheAnchor {
  key: string;
  length: number;
}

export interface PrefixHit {
  /** Prompt tokens covered by the restored state. */
  tokens: number;
  anchor: CacheAnchor | null;
  /** Blocks from position 0 to restore, the last with a tip (null on a miss). */
  chain: StateBlock[] | null;
}

/** A capture the engine should make, and hand to `put`. */
export interface CapturePlan {
  key: string;
  parent: string | null;
  /** The state's length at the parent: the block covers [from, length). */
  from: number;
  provisional: boolean;
}

export interface PrefixCacheStats {
  nodes: number;
  /** Nodes that can be resumed from. */
  tips: number;
  /** Tokens covered by the nodes in memory. */
  tokens: number;
  bytes: number;
  layers: Array<{ rows: number; window: number; compressorState: number }>;
  diskEntries: number;
  diskBytes: number;
}

export interface InsertPlan {
  anchor: CacheAnchor | null;
  capture: CapturePlan | null;
}

export class PrefixCache {
  readonly blockTokens: number;
  private readonly nodes = new Map<string, Node>();
  private memBytes = 0;
  private clock = 0;
  private readonly disk: BlockStore | null;

  constructor(private readonly cfg: PrefixCacheConfig) {
    this.blockTokens = cfg.blockTokens;
    const warn = cfg.warn ?? ((m: string) => process.stderr.write(`${m}\n`));
    this.disk = cfg.dir ? new BlockStore(cfg.dir, cfg.identity, cfg.cfg, cfg.dtype, warn) : null;
    if (this.disk) this.loadIndex(this.disk);
  }

  /** Rebuilds the tree from the disk tier: entries whose parent chain is broken or cyclic are dropped. */
  private loadIndex(disk: BlockStore): void {
    const entries = new Map([...disk.entries()].map((e) => [e.key, e]));
    const ok = new Map<string, boolean>();
    const valid = (key: string): boolean => {
      const seen = new Set<string>();
      let k: string | null = key;
      let verdict = true;
      while (k !== null) {
        const known = ok.get(k);
        if (known !== undefined) {
          verdict = known;
          break;
        }
        const e = entries.get(k);
        if (!e || seen.has(k)) {
          verdict = false;
          break;
        }
        seen.add(k);
        const p = e.parent === null ? null : entries.get(e.parent);
        if (e.parent !== null && (!p || p.end !== e.start)) {
          verdict = false;
          break;
        }
        if (e.parent === null && e.start !== 0) {
          verdict = false;
          break;
        }
        k = e.parent;
      }
      for (const s of seen) ok.set(s, verdict);
      return verdict;
    };
    const order = [...entries.values()].sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const e of order) {
      if (!valid(e.key)) {
        disk.discard(e.key, "its parent chain is missing, cyclic or not contiguous from position 0");
        continue;
      }
      this.nodes.set(e.key, {
        key: e.key, parent: e.parent, start: e.start, end: e.end, block: null, bytes: 0, onDisk: true, hasTip: e.hasTip,
        provisional: e.provisional, children: 0, pins: 0, hits: 0, lastUsed: ++this.clock,
      });
    }
    for (const n of this.nodes.values()) if (n.parent) this.nodes.get(n.parent)!.children++;
  }

  get entries(): number {
    let n = 0;
    for (const node of this.nodes.values()) if (node.block) n++;
    return n;
  }
  get bytes(): number {
    return this.memBytes;
  }
  get diskEntries(): number {
    return this.disk?.size ?? 0;
  }

  /** What the in-memory tier holds: nodes, the tokens they cover, and bytes by layer and part. */
  stats(): PrefixCacheStats {
    const layers = this.cfg.cfg.layers.map(() => ({ rows: 0, window: 0, compressorState: 0 }));
    let nodes = 0;
    let tokens = 0;
    let tips = 0;
    for (const n of this.nodes.values()) {
      if (!n.block) continue;
      nodes++;
      tokens += n.end - n.start;
      if (n.block.tip) tips++;
      blockLayerBytes(n.block).forEach((b, i) => {
        layers[i]!.rows += b.rows;
        layers[i]!.window += b.window;
        layers[i]!.compressorState += b.compressorState;
      });
    }
    return { nodes, tips, tokens, bytes: this.memBytes, layers, diskEntries: this.disk?.size ?? 0, diskBytes: this.disk?.bytes ?? 0 };
  }

  /**
   * Chain keys of every whole block of `tokens` (keys[k-1] covers k blocks). A block's key hashes
   * the previous key (64 hex), its token ids (4·block bytes) and, unless its salt is "", "\0" and
   * the salt: the fixed-length fields first, so no (tokens, salt) pair collides with another. A
   * block after a shared prefix chains from the shared blocks' keys but carries the salt, so
   * its entry is the tenant's own (cache-salt.ts). A plain string is a salt with no shared prefix.
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

  /**
   * The longest cached prefix of `tokens` that can be resumed from, leaving at least one
   * token to prefill so the last position has logits.
   */
  lookup(tokens: readonly number[], salt: BlockSalts | string): PrefixHit {
    const maxBlocks = Math.floor((tokens.length - 1) / this.blockTokens);
    const keys = this.keys(tokens, salt, Math.max(0, maxBlocks));
    for (let n = keys.length; n > 0; n--) {
      const node = this.nodes.get(keys[n - 1]!);
      if (!node?.hasTip) continue;
      const chain = this.loadChain(node);
      if (!chain) continue; // a broken chain (an unreadable entry): a shorter prefix may still be whole
      node.hits++;
      this.touchPath(node);
      this.evict();
      return { tokens: node.end, anchor: { key: node.key, length: node.end }, chain };
    }
    return { tokens: 0, anchor: null, chain: null };
  }

  /** The blocks from position 0 to `node`, root first; null when one is missing or unreadable. */
  private loadChain(node: Node): StateBlock[] | null {
    const chain: StateBlock[] = [];
    for (let n: Node | undefined = node; n; n = n.parent ? this.nodes.get(n.parent) : undefined) {
      if (!n.block) {
        const block = this.disk?.read(n.key) ?? null;
        if (!block || block.start !== n.start || block.end !== n.end) {
          this.drop(n);
          return null;
        }
        this.setBlock(n, block);
      }
      chain.push(n.block!);
      if (!n.parent) break;
    }
    chain.reverse();
    // Contiguous from position 0, or the restore would not be the prefix it claims to be.
    for (let i = 0; i < chain.length; i++) {
      if (chain[i]!.start !== (i === 0 ? 0 : chain[i - 1]!.end)) {
        this.drop(node);
        return null;
      }
    }
    return chain;
  }

  /**
   * For a sequence that will hold exactly `tokens.slice(0, length)`: when `length` is a block
   * boundary not cached yet, asks for a capture since `parent` (the sequence's anchor); a
   * boundary already cached just becomes the new anchor.
   */
  planInsert(tokens: readonly number[], salt: BlockSalts | string, length: number, parent: CacheAnchor | null, provisional = false): InsertPlan {
    const B = this.blockTokens;
    if (length === 0 || length % B !== 0) return { anchor: parent, capture: null };
    if (parent && !this.nodes.has(parent.key)) parent = null; // evicted since: capture from the start
    const keys = this.keys(tokens, salt, length / B);
    const key = keys[keys.length - 1]!;
    const anchor = { key, length };
    const existing = this.nodes.get(key);
    if (existing) {
      this.touchPath(existing);
      return { anchor, capture: null };
    }
    // Memory full of what running sequences pin, and no disk to spill to: store nothing more now.
    if (this.memBytes > this.cfg.memoryBytes && !this.evictable()) return { anchor: parent, capture: null };
    return { anchor, capture: { key, parent: parent?.key ?? null, from: parent?.length ?? 0, provisional } };
  }

  /** Stores a block captured as `planInsert` asked. */
  put(plan: CapturePlan, block: StateBlock): void {
    if (this.nodes.has(plan.key)) return;
    const parent = plan.parent ? this.nodes.get(plan.parent) : undefined;
    if (plan.parent && !parent) return; // the parent went meanwhile: this block alone restores nothing
    if (parent) {
      if (parent.provisional && parent.children === 0 && parent.hits === 0 && parent.pins <= 1 && parent.hasTip) this.dropTip(parent);
      parent.children++;
    }
    const node: Node = {
      key: plan.key, parent: plan.parent, start: block.start, end: block.end, block: null, bytes: 0, onDisk: false,
      hasTip: block.tip !== null, provisional: plan.provisional, children: 0, pins: 0, hits: 0, lastUsed: ++this.clock,
    };
    this.nodes.set(plan.key, node);
    this.setBlock(node, block);
    if (this.disk) {
      this.disk.write(node.key, node.parent, node.provisional, block);
      node.onDisk = true;
    }
    this.touchPath(node);
    // The new node is about to be pinned by the sequence that made it.
    node.pins++;
    this.evict();
    node.pins--;
  }

  /** A running sequence resumes from (or last stored) `anchor`: its path is not evicted meanwhile. */
  pin(anchor: CacheAnchor | null): void {
    const n = anchor ? this.nodes.get(anchor.key) : undefined;
    if (n) n.pins++;
  }

  unpin(anchor: CacheAnchor | null): void {
    const n = anchor ? this.nodes.get(anchor.key) : undefined;
    if (n && n.pins > 0) n.pins--;
  }

  private dropTip(n: Node): void {
    n.hasTip = false;
    if (n.block) this.setBlock(n, { ...n.block, tip: null });
    if (this.disk && n.onDisk) {
      const block = n.block ?? this.disk.read(n.key);
      if (block) this.disk.write(n.key, n.parent, n.provisional, { ...block, tip: null });
    }
  }

  private setBlock(n: Node, block: StateBlock | null): void {
    this.memBytes -= n.bytes;
    n.block = block;
    n.bytes = block ? blockBytes(block) : 0;
    this.memBytes += n.bytes;
  }

  private touchPath(node: Node): void {
    const now = ++this.clock;
    for (let n: Node | undefined = node; n; n = n.parent ? this.nodes.get(n.parent) : undefined) {
      n.lastUsed = now;
      if (n.onDisk) this.disk?.touch(n.key);
    }
  }

  /** Removes a node and, with it, every descendant (they cannot be restored without it). */
  private drop(n: Node): void {
    for (const c of [...this.nodes.values()]) if (c.parent === n.key) this.drop(c);
    this.setBlock(n, null);
    this.nodes.delete(n.key);
    if (n.onDisk) this.disk?.remove(n.key);
    if (n.parent) {
      const p = this.nodes.get(n.parent);
      if (p) p.children--;
    }
  }

  private readonly memVictim = (n: Node) => n.block !== null && n.pins === 0 && (n.onDisk || n.children === 0);

  private evictable(): boolean {
    for (const n of this.nodes.values()) if (this.memVictim(n)) return true;
    return false;
  }

  /** Least recently used first; memory over budget drops in-memory copies, the disk over budget drops leaves. */
  private evict(): void {
    while (this.memBytes > this.cfg.memoryBytes) {
      const victim = this.oldest(this.memVictim);
      if (!victim) break;
      if (victim.onDisk) this.setBlock(victim, null);
      else this.drop(victim);
    }
    while (this.disk && this.disk.bytes > this.cfg.diskBytes) {
      const victim = this.oldest((n) => n.onDisk && n.pins === 0 && n.children === 0);
      if (!victim) break;
      this.drop(victim);
    }
  }

  private oldest(ok: (n: Node) => boolean): Node | undefined {
    let best: Node | undefined;
    for (const n of this.nodes.values()) if (ok(n) && (!best || n.lastUsed < best.lastUsed)) best = n;
    return best;
  }

  clear(): void {
    for (const n of this.nodes.values()) this.setBlock(n, null);
    this.nodes.clear();
  }

  async flush(): Promise<void> {
    await this.disk?.flush();
  }

  /**
   * Forgets every entry, on disk too (SGLang's /flush_cache): later prompts start cold. The
   * disk's queued writes finish first, so none lands after its file was removed. Returns the
   * entries dropped (memory and disk, each counted once).
   */
  async dropAll(): Promise<number> {
    await this.disk?.flush();
    // In memory, on disk, or both: each counted once (an on-disk node is a disk entry).
    const keys = new Set<string>([...this.nodes.values()].filter((n) => n.block !== null).map((n) => n.key));
    const disk = this.disk;
    if (disk) {
      for (const e of [...disk.entries()]) {
        keys.add(e.key);
        disk.remove(e.key);
      }
    }
    this.clear();
    return keys.size;
  }
}
