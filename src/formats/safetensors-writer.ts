import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DTYPE_BYTES, type DType } from "./dtypes.js";
import { INDEX_FILE, elementCount } from "./safetensors.js";

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

/** Header alignment the reference writer uses, so tensor data starts 8-byte aligned. */
const HEADER_ALIGN = 8;

/** Write one `.safetensors` file; data is written tensor by tensor, never concatenated in memory. */
export function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const expected = elementCount(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== expected) {
      throw new Error(`${path}: tensor "${t.name}" has ${t.data.byteLength} bytes, shape ${JSON.stringify(t.shape)} of ${t.dtype} needs ${expected}`);
    }
    if (Object.prototype.hasOwnProperty.call(header, t.name)) throw new Error(`${path}: duplicate tensor "${t.name}"`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + expected] };
    offset += expected;
  }
  const fd = openSync(path, "w");
  try {
    const out = new BlockWriter(fd);
    out.write(headerBytes(header));
    for (const t of tensors) out.write(t.data);
    out.flush();
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.byteLength) done += writeSync(fd, data, done, Math.min(1 << 30, data.byteLength - done));
}

/**
 * Writes a file in whole 8 MiB blocks at 8 MiB offsets (the last one shorter), however small
 * the pieces it is given. Linux's page cache takes written data in folios no larger than the
 * write: a shard written tensor by tensor, scales of a few KiB between experts, sat in 4 KiB
 * folios, mapped with 4 KiB entries, and its weights streamed up to 2x slower until read
 * again (native/src/prefetch.cc).
 */
export class BlockWriter {
  private static readonly BLOCK = 8 * 2 ** 20;
  private readonly buf = new Uint8Array(BlockWriter.BLOCK);
  private used = 0;

  constructor(private readonly fd: number) {}

  write(data: Uint8Array): void {
    let at = 0;
    while (at < data.byteLength) {
      const n = Math.min(data.byteLength - at, BlockWriter.BLOCK - this.used);
      this.buf.set(data.subarray(at, at + n), this.used);
      this.used += n;
      at += n;
      if (this.used === BlockWriter.BLOCK) this.flush();
    }
  }

  flush(): void {
    writeAll(this.fd, this.buf.subarray(0, this.used));
    this.used = 0;
  }
}

/**
 * Write tensors as `model-0000K-of-0000N.safetensors` shards of roughly `shardBytes` each,
 * plus `model.safetensors.index.json`, the layout of the official checkpoints.
 */
export function writeShardedCheckpoint(dir: string, tensors: readonly TensorToWrite[], shardBytes: number, metadata: Record<string, string> = {}): string[] {
  for (const t of tensors) {
    const expected = elementCount(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== expected) {
      throw new Error(`tensor "${t.name}" has ${t.data.byteLength} bytes, shape ${JSON.stringify(t.shape)} of ${t.dtype} needs ${expected}`);
    }
  }
  const sources = tensors.map((t): TensorSource => ({ name: t.name, dtype: t.dtype, shape: t.shape, produce: (emit) => emit(t.data) }));
  return writeShardedCheckpointStreaming(dir, sources, shardBytes, metadata);
}

/** A tensor whose bytes are produced on demand, in order, through `emit` (chunks may be reused). */
export interface TensorSource {
  name: string;
  dtype: DType;
  shape: number[];
  produce(emit: (chunk: Uint8Array) => void): void;
}

/**
 * Like writeShardedCheckpoint, but each tensor's bytes are produced while its shard is
 * written, so memory stays at one chunk whatever the checkpoint size. Shards are planned from
 * the shapes first (the file names carry the shard count). Returns the shard file names.
 */
export function writeShardedCheckpointStreaming(dir: string, tensors: readonly TensorSource[], shardBytes: number, metadata: Record<string, string> = {}): string[] {
  mkdirSync(dir, { recursive: true });
  const sizeOf = (t: TensorSource) => elementCount(t.shape) * DTYPE_BYTES[t.dtype];
  const groups: TensorSource[][] = [[]];
  let size = 0;
  for (const t of tensors) {
    if (size > 0 && size + sizeOf(t) > shardBytes) {
      groups.push([]);
      size = 0;
    }
    groups[groups.length - 1]!.push(t);
    size += sizeOf(t);
  }
  const n = groups.length;
  const pad = (k: number) => String(k).padStart(5, "0");
  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  let total = 0;
  groups.forEach((group, i) => {
    const file = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
    const path = join(dir, file);
    const header: Record<string, unknown> = {};
    if (Object.keys(metadata).length) header.__metadata__ = metadata;
    let offset = 0;
    for (const t of group) {
      if (Object.prototype.hasOwnProperty.call(header, t.name)) throw new Error(`${path}: duplicate tensor "${t.name}"`);
      header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + sizeOf(t)] };
      offset += sizeOf(t);
    }
    const fd = openSync(path, "w");
    try {
      const out = new BlockWriter(fd);
      out.write(headerBytes(header));
      for (const t of group) {
        let written = 0;
        t.produce((chunk) => {
          written += chunk.byteLength;
          if (written > sizeOf(t)) throw new Error(`${path}: tensor "${t.name}" produced more than its ${sizeOf(t)} bytes`);
          out.write(chunk);
        });
        if (written !== sizeOf(t)) throw new Error(`${path}: tensor "${t.name}" produced ${written} bytes, shape ${JSON.stringify(t.shape)} of ${t.dtype} needs ${sizeOf(t)}`);
        weightMap[t.name] = file;
        total += written;
      }
      out.flush();
    } finally {
      closeSync(fd);
    }
    files.push(file);
  });
  writeFileSync(join(dir, INDEX_FILE), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  return files;
}

/** The 8-byte length prefix and the JSON header, space-padded so tensor data starts 8-byte aligned. */
function headerBytes(header: Record<string, unknown>): Uint8Array {
  let json = JSON.stringify(header);
  json += " ".repeat((HEADER_ALIGN - ((8 + Buffer.byteLength(json)) % HEADER_ALIGN)) % HEADER_ALIGN);
  const body = Buffer.from(json, "utf8");
  const out = Buffer.alloc(8 + body.length);
  out.writeBigUInt64LE(BigInt(body.length), 0);
  body.copy(out, 8);
  return out;
}
