import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { parseIndex, requireRegularFile } from "./checkpoint-index.js";
import { DTYPE_BYTES, isDType, type DType } from "./dtypes.js";

/** A checkpoint file that cannot be used; the message names the file and, where known, the tensor. */
export class CheckpointFormatError extends Error {
  constructor(message: string, readonly file: string, readonly tensor?: string) {
    super(`${file}${tensor ? ` (tensor "${tensor}")` : ""}: ${message}`);
    this.name = "CheckpointFormatError";
  }
}

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Path of the file that holds the bytes. */
  file: string;
  /** Absolute byte range in the file. */
  start: number;
  byteLength: number;
}

/**
 * Node's positional reads take at most 2 GiB at once, so bigger ranges are read in pieces of
 * this size; 256 MiB keeps each syscall cheap to interrupt and lets tests cover the piecewise
 * path without gigabyte buffers.
 */
export const READ_PIECE_BYTES = 256 << 20;
const MAX_HEADER = 100 * 1024 * 1024;

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** One `.safetensors` file: header parsed and validated at open, tensor bytes read on demand. */
export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string>;
  private fd: number | null;

  private constructor(readonly path: string, fd: number, header: Record<string, unknown>, dataStart: number, fileSize: number) {
    this.fd = fd;
    const meta = header.__metadata__;
    this.metadata = meta && typeof meta === "object" ? (meta as Record<string, string>) : {};
    const ranges: Array<[number, number, string]> = [];
    for (const [name, raw] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const info = parseEntry(path, name, raw, dataStart);
      if (info.start + info.byteLength > fileSize) {
        throw new CheckpointFormatError(
          `data range [${info.start - dataStart}, ${info.start - dataStart + info.byteLength}) ends past the end of the file (${fileSize - dataStart} data bytes): the file is truncated or the header is wrong`,
          path, name);
      }
      ranges.push([info.start, info.start + info.byteLength, name]);
      this.tensors.set(name, info);
    }
    ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (let i = 1; i < ranges.length; i++) {
      const [, prevEnd, prevName] = ranges[i - 1]!;
      const [start, , name] = ranges[i]!;
      if (start < prevEnd) throw new CheckpointFormatError(`data range overlaps tensor "${prevName}"`, path, name);
    }
  }

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      throw new CheckpointFormatError(`cannot open: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, path);
    }
    try {
      const fileSize = fstatSync(fd).size;
      if (fileSize < 8) throw new CheckpointFormatError(`file is ${fileSize} bytes, too short for a safetensors header`, path);
      const lenBuf = Buffer.alloc(8);
      readSync(fd, lenBuf, 0, 8, 0);
      const headerLen = Number(lenBuf.readBigUInt64LE(0));
      if (headerLen > fileSize - 8) {
        throw new CheckpointFormatError(`header length ${headerLen} runs past the end of the file (${fileSize} bytes): truncated or not a safetensors file`, path);
      }
      if (headerLen > MAX_HEADER) throw new CheckpointFormatError(`header length ${headerLen} exceeds ${MAX_HEADER} bytes`, path);
      const headerBuf = Buffer.alloc(headerLen);
      readSync(fd, headerBuf, 0, headerLen, 8);
      let header: unknown;
      try {
        header = JSON.parse(headerBuf.toString("utf8"));
      } catch (err) {
        throw new CheckpointFormatError(`header is not valid JSON: ${(err as Error).message}`, path);
      }
      if (!header || typeof header !== "object" || Array.isArray(header)) throw new CheckpointFormatError("header is not a JSON object", path);
      return new SafetensorsFile(path, fd, header as Record<string, unknown>, 8 + headerLen, fileSize);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  get(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new CheckpointFormatError("no such tensor", this.path, name);
    return info;
  }

  /** Read `length` bytes of a tensor starting at byte `offset` within it. */
  readRange(name: string, offset: number, length: number, into?: Uint8Array): Uint8Array {
    const info = this.get(name);
    if (offset < 0 || length < 0 || offset + length > info.byteLength) {
      throw new CheckpointFormatError(`byte range [${offset}, ${offset + length}) outside the tensor's ${info.byteLength} bytes`, this.path, name);
    }
    if (this.fd === null) throw new CheckpointFormatError("file is closed", this.path, name);
    const out = into ?? new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, Math.min(READ_PIECE_BYTES, length - done), info.start + offset + done);
      if (n === 0) throw new CheckpointFormatError("unexpected end of file while reading tensor data (file truncated after open?)", this.path, name);
      done += n;
    }
    return out;
  }

  read(name: string): Uint8Array {
    return this.readRange(name, 0, this.get(name).byteLength);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function parseEntry(file: string, name: string, raw: unknown, dataStart: number): TensorInfo {
  if (!raw || typeof raw !== "object") throw new CheckpointFormatError("header entry is not an object", file, name);
  const { dtype, shape, data_offsets: offsets } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== "string" || !isDType(dtype)) throw new CheckpointFormatError(`unknown dtype ${JSON.stringify(dtype)}`, file, name);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new CheckpointFormatError(`invalid shape ${JSON.stringify(shape)}`, file, name);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[1] < offsets[0]) {
    throw new CheckpointFormatError(`invalid data_offsets ${JSON.stringify(offsets)}`, file, name);
  }
  const byteLength = offsets[1] - offsets[0];
  const expected = elementCount(shape) * DTYPE_BYTES[dtype];
  if (byteLength !== expected) {
    throw new CheckpointFormatError(`shape ${JSON.stringify(shape)} of ${dtype} needs ${expected} bytes but data_offsets span ${byteLength}`, file, name);
  }
  return { name, dtype, shape: shape as number[], file, start: dataStart + offsets[0], byteLength };
}

export const INDEX_FILE = "model.safetensors.index.json";

/**
 * A checkpoint directory: either sharded (`model.safetensors.index.json` + shards) or a
 * single `model.safetensors`. Every shard's header is validated at open; no tensor data is read.
 */
export class Checkpoint {
  private readonly files: SafetensorsFile[] = [];
  private readonly byName = new Map<string, SafetensorsFile>();

  private constructor(readonly dir: string) {}

  static open(dir: string): Checkpoint {
    const ckpt = new Checkpoint(dir);
    try {
      ckpt.load();
    } catch (err) {
      ckpt.close();
      throw err;
    }
    return ckpt;
  }

  private load(): void {
    const indexPath = join(this.dir, INDEX_FILE);
    if (existsSync(indexPath)) {
      let text: string;
      try {
        text = readFileSync(indexPath, "utf8");
      } catch (err) {
        throw new CheckpointFormatError(`cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, indexPath);
      }
      const weightMap = parseIndex(indexPath, text);
      const shardNames = [...new Set(weightMap.values())].sort();
      const shards = new Map<string, SafetensorsFile>();
      for (const shard of shardNames) {
        const path = join(this.dir, shard);
        const example = [...weightMap].find(([, s]) => s === shard)![0];
        requireRegularFile(path, `shard "${shard}" listed in ${INDEX_FILE}`, example);
        const file = SafetensorsFile.open(path);
        this.files.push(file);
        shards.set(shard, file);
      }
      for (const [name, shard] of weightMap) {
        const file = shards.get(shard)!;
        if (!file.tensors.has(name)) throw new CheckpointFormatError(`${INDEX_FILE} places this tensor in "${shard}" but that shard does not hold it`, file.path, name);
        this.byName.set(name, file);
      }
      return;
    }
    const single = join(this.dir, "model.safetensors");
    if (!existsSync(single)) throw new CheckpointFormatError(`no ${INDEX_FILE} and no model.safetensors: not a checkpoint directory`, this.dir);
    requireRegularFile(single, "model.safetensors");
    const file = SafetensorsFile.open(single);
    this.files.push(file);
    for (const name of file.tensors.keys()) this.byName.set(name, file);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  info(name: string): TensorInfo {
    return this.fileOf(name).get(name);
  }

  read(name: string): Uint8Array {
    return this.fileOf(name).read(name);
  }

  readRange(name: string, offset: number, length: number, into?: Uint8Array): Uint8Array {
    return this.fileOf(name).readRange(name, offset, length, into);
  }

  private fileOf(name: string): SafetensorsFile {
    const file = this.byName.get(name);
    if (!file) throw new CheckpointFormatError("tensor missing from the checkpoint", this.dir, name);
    return file;
  }

  /** The paths of the checkpoint's files (shards), in order. */
  shardPaths(): string[] {
    return this.files.map((f) => f.path);
  }

  /** Total tensor bytes across all shards. */
  totalBytes(): number {
    let n = 0;
    for (const f of this.files) for (const t of f.tensors.values()) n += t.byteLength;
    return n;
  }

  close(): void {
    for (const f of this.files) f.close();
  }

  describe(): string {
    return this.files.length === 1 ? basename(this.files[0]!.path) : `${this.files.length} shards in ${dirname(this.files[0]!.path)}`;
  }
}
