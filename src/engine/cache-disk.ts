/**
 * On-disk store for prefix-cache deltas (`--cache-dir`). One file per block,
 * named by its chain key, under a folder named by the model identity; each
 * file also carries the identity in its header and is checked on read, so a
 * cache written by another checkpoint is never used even if files are moved.
 * Writes go to a temporary name and are renamed into place: a crash leaves
 * either a whole file or none.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Vec } from "../kernels/backend.js";
import type { CompressorDelta, LayerDelta, SnapshotDelta } from "./snapshot-delta.js";

const MAGIC = "dsv4-prefix-cache-v1";

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

  constructor(root: string, readonly identity: string, private readonly budgetBytes: number) {
    this.dir = join(root, identity.slice(0, 32));
    mkdirSync(this.dir, { recursive: true });
    const files = readdirSync(this.dir).filter((f) => f.endsWith(".bin"));
    for (const f of files) {
      const file = join(this.dir, f);
      const st = statSync(file);
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

  /** Reads a delta; null (and the file removed) when it is unreadable or not this model's. */
  read(key: string): { delta: SnapshotDelta; parent: string | null; tokens: number } | null {
    const info = this.entries.get(key);
    if (!info) return null;
    try {
      const buf = readFileSync(info.file);
      const headerLen = buf.readUInt32LE(0);
      const header = JSON.parse(buf.subarray(4, 4 + headerLen).toString("utf8")) as Header;
      if (header.magic !== MAGIC || header.identity !== this.identity || header.key !== key) throw new Error("foreign cache file");
      const Ctor = header.dtype === "f64" ? Float64Array : Float32Array;
      let off = 4 + headerLen;
      off += (8 - (off % 8)) % 8;
      const arrays: Vec[] = header.arrays.map((n) => {
        const bytes = n * Ctor.BYTES_PER_ELEMENT;
        const a = new Ctor(n);
        new Uint8Array(a.buffer).set(buf.subarray(off, off + bytes));
        off += bytes;
        return a;
      });
      let i = 0;
      const comp = (m: CompressorMeta | null): CompressorDelta | null =>
        m ? { kv: arrays[i++]!, score: arrays[i++]!, rows: arrays[i++]!, from: m.from, count: m.count, width: m.width } : null;
      const layer = (m: LayerMeta): LayerDelta => {
        const window = arrays[i++]!;
        return { window, compressor: comp(m.compressor), indexer: comp(m.indexer) };
      };
      const delta: SnapshotDelta = { length: header.length, mtpLength: header.mtpLength, layers: header.layers.map(layer), mtp: header.mtp.map(layer) };
      return { delta, parent: header.parent, tokens: header.tokens };
    } catch {
      this.remove(key);
      return null;
    }
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
    const h = Buffer.from(JSON.stringify(header), "utf8");
    const lenBuf = Buffer.alloc(4);
    lenBuf.writeUInt32LE(h.length, 0);
    const pad = Buffer.alloc((8 - ((4 + h.length) % 8)) % 8);
    const parts = [lenBuf, h, pad, ...arrays.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))];
    const bytes = parts.reduce((n, p) => n + p.length, 0);
    const file = join(this.dir, `${key}.bin`);
    const tmp = `${file}.${process.pid}.tmp`;
    this.entries.set(key, { key, file, bytes, mtimeMs: Date.now() });
    this.total += bytes;
    const p = writeFile(tmp, Buffer.concat(parts))
      .then(() => rename(tmp, file))
      .catch(() => {
        this.forget(key);
        return unlink(tmp).catch(() => undefined);
      })
      .finally(() => this.pending.delete(p));
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
