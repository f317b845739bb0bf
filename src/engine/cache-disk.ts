/**
 * On-disk store for prefix-cache deltas (`--cache-dir`). One file per block,
 * named by its chain key, under a folder named by the cache identity (model
 * identity + precision); each file also carries the identity in its header and
 * is checked on read, so a cache written by another checkpoint or precision is
 * never used even if files are moved. Files are cache-file.ts entries (atomic
 * writes, checksummed); an entry that fails any check is a miss, reported once
 * on stderr and removed.
 */
import { lstatSync, mkdirSync, readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { Vec } from "../kernels/backend.js";
import { isEntryError, readEntry, writeEntry } from "./cache-file.js";
import type { CompressorDelta, LayerDelta, SnapshotDelta } from "./snapshot-delta.js";

const MAGIC = "dsv4-prefix-cache-v2";

interface CompressorMeta {
  from: number;
  count: number;
  width: number;
}
interface LayerMeta {
  compressor: CompressorMeta | null;
  indexer: CompressorMeta | null;
}
interface Header {
  magic: string;
  identity: string;
  key: string;
  parent: string | null;
  tokens: number;
  length: number;
  mtpLength: number;
  dtype: "f64" | "f32";
  layers: LayerMeta[];
  mtp: LayerMeta[];
  arrays: number[];
}

export interface DiskEntryInfo {
  key: string;
  file: string;
  bytes: number;
  mtimeMs: number;
}

export class DiskCache {
  readonly dir: string;
  private readonly entries = new Map<string, DiskEntryInfo>();
  private total = 0;
  private pending = new Set<Promise<void>>();
  /** Keys whose file is still being written: a read then is a plain miss, not a bad file. */
  private readonly writing = new Set<string>();

  constructor(
    root: string,
    readonly identity: string,
    private readonly budgetBytes: number,
    private readonly warn: (message: string) => void = (m) => process.stderr.write(`dsv4: warning: ${m}\n`),
  ) {
    this.dir = join(root, identity.slice(0, 32));
    mkdirSync(this.dir, { recursive: true });
    const files = readdirSync(this.dir).filter((f) => f.endsWith(".bin"));
    for (const f of files) {
      const file = join(this.dir, f);
      let st;
      try {
        st = lstatSync(file);
      } catch {
        continue; // removed since the listing
      }
      // Not followed, not counted: a directory or link here was not written by this cache.
      if (!st.isFile()) {
        this.warn(`prefix cache: ${file} is not a regular file; ignored (remove it to silence this)`);
        continue;
      }
      this.entries.set(f.slice(0, -4), { key: f.slice(0, -4), file, bytes: st.size, mtimeMs: st.mtimeMs });
      this.total += st.size;
    }
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.total;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /**
   * Reads a delta; null when it is unreadable or not this model's. A bad file is reported once
   * (it is forgotten and removed, so later lookups miss without reading it again).
   */
  read(key: string): { delta: SnapshotDelta; parent: string | null; tokens: number } | null {
    const info = this.entries.get(key);
    if (!info || this.writing.has(key)) return null;
    const r = readEntry(info.file, (h) => this.checkHeader(h, key));
    let out: { delta: SnapshotDelta; parent: string | null; tokens: number } | string;
    if (isEntryError(r)) out = r.error;
    else {
      try {
        out = decode(r.header as unknown as Header, r.payload);
      } catch (err) {
        out = `cache entry ${info.file}: ${(err as Error).message}`;
      }
    }
    if (typeof out === "string") {
      this.warn(`prefix cache: ${out}; treated as a miss and removed`);
      this.remove(key);
      return null;
    }
    return out;
  }

  /** The header fields a read depends on, checked before any of them is used. */
  private checkHeader(h: Record<string, unknown>, key: string): string | null {
    if (h.magic !== MAGIC) return `header magic ${JSON.stringify(h.magic)} is not ${MAGIC}`;
    if (h.identity !== this.identity) return "written for another model identity or precision";
    if (h.key !== key) return "its key does not match its file name";
    if (h.parent !== null && typeof h.parent !== "string") return "parent is not a key";
    if (h.dtype !== "f64" && h.dtype !== "f32") return `dtype ${JSON.stringify(h.dtype)} is not f64 or f32`;
    for (const f of ["tokens", "length", "mtpLength"] as const) {
      if (!Number.isSafeInteger(h[f]) || (h[f] as number) < 0) return `${f} is not a non-negative integer`;
    }
    if (!Array.isArray(h.arrays) || !h.arrays.every((n) => Number.isSafeInteger(n) && n >= 0)) return "arrays is not a list of lengths";
    if (!Array.isArray(h.layers) || !Array.isArray(h.mtp)) return "layers/mtp are not lists";
    return null;
  }

  /** Queues a write; returns at once. */
  write(key: string, parent: string | null, tokens: number, delta: SnapshotDelta): void {
    if (this.entries.has(key)) return;
    const arrays: Vec[] = [];
    const meta = (c: CompressorDelta | null): CompressorMeta | null => {
      if (!c) return null;
      arrays.push(c.kv, c.score, c.rows);
      return { from: c.from, count: c.count, width: c.width };
    };
    const layer = (l: LayerDelta): LayerMeta => {
      arrays.push(l.window);
      const compressor = meta(l.compressor);
      return { compressor, indexer: meta(l.indexer) };
    };
    const layers = delta.layers.map(layer);
    const mtp = delta.mtp.map(layer);
    const header: Header = {
      magic: MAGIC, identity: this.identity, key, parent, tokens, length: delta.length, mtpLength: delta.mtpLength,
      dtype: arrays[0] instanceof Float64Array ? "f64" : "f32", layers, mtp, arrays: arrays.map((a) => a.length),
    };
    const parts = arrays.map((a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    const bytes = parts.reduce((n, p) => n + p.byteLength, 0);
    const file = join(this.dir, `${key}.bin`);
    this.entries.set(key, { key, file, bytes, mtimeMs: Date.now() });
    this.total += bytes;
    this.writing.add(key);
    const p = writeEntry(file, header, parts)
      .catch(() => this.forget(key))
      .finally(() => {
        this.writing.delete(key);
        this.pending.delete(p);
      });
    this.pending.add(p);
    this.enforceBudget();
  }

  /** Oldest files go first once the directory is over budget. */
  private enforceBudget(): void {
    if (this.total <= this.budgetBytes) return;
    const byAge = [...this.entries.values()].sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const e of byAge) {
      if (this.total <= this.budgetBytes) break;
      this.remove(e.key);
    }
  }

  private forget(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.total -= e.bytes;
  }

  private remove(key: string): void {
    const e = this.entries.get(key);
    this.forget(key);
    if (e) {
      try {
        unlinkSync(e.file);
      } catch {
        // Already gone, or still being written: the write's own error path cleans up.
      }
    }
  }

  /** Waits for queued writes. */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}

/**
 * Header + parts → a delta, checking that the parts are exactly the arrays the header's layer
 * layout names (count, and byte length of each). Throws on any mismatch.
 */
function decode(header: Header, payload: Uint8Array[]): { delta: SnapshotDelta; parent: string | null; tokens: number } {
  const Ctor = header.dtype === "f64" ? Float64Array : Float32Array;
  if (payload.length !== header.arrays.length) throw new Error(`${payload.length} parts for ${header.arrays.length} arrays`);
  const arrays: Vec[] = header.arrays.map((n, k) => {
    const part = payload[k]!;
    if (part.byteLength !== n * Ctor.BYTES_PER_ELEMENT) throw new Error(`array ${k}: ${part.byteLength} bytes for ${n} ${header.dtype} values`);
    // A copy: each array gets its own buffer, which the runner may transfer to its thread.
    const a = new Ctor(n);
    new Uint8Array(a.buffer).set(part);
    return a;
  });
  let i = 0;
  const next = (): Vec => {
    const a = arrays[i++];
    if (!a) throw new Error(`the layer layout needs more than the ${arrays.length} arrays stored`);
    return a;
  };
  const int = (v: unknown, what: string): number => {
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw new Error(`${what} is not a non-negative integer`);
    return v as number;
  };
  const comp = (m: CompressorMeta | null): CompressorDelta | null =>
    m ? { kv: next(), score: next(), rows: next(), from: int(m.from, "compressor.from"), count: int(m.count, "compressor.count"), width: int(m.width, "compressor.width") } : null;
  const layer = (m: LayerMeta): LayerDelta => {
    if (typeof m !== "object" || m === null) throw new Error("a layer entry is not an object");
    const window = next();
    return { window, compressor: comp(m.compressor ?? null), indexer: comp(m.indexer ?? null) };
  };
  const delta: SnapshotDelta = { length: header.length, mtpLength: header.mtpLength, layers: header.layers.map(layer), mtp: header.mtp.map(layer) };
  if (i !== arrays.length) throw new Error(`${arrays.length - i} arrays left over after the layer layout`);
  return { delta, parent: header.parent, tokens: header.tokens };
}
