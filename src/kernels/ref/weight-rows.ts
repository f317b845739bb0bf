import { closeSync, openSync, readSync } from "node:fs";
import type { StoredMatrix } from "../backend.js";

/**
 * Where a reference matrix's bytes come from: resident (copied once into memory) or read on
 * demand from the checkpoint file, a block of rows at a time, so the float64 reference can
 * run a checkpoint far larger than memory (the OS page cache keeps what is hot, as a
 * mapping would). `rows(n0, n1)` returns the bytes of rows [n0, n1); a mapped source reuses
 * one buffer, so the view is valid until the next call.
 */
export interface WeightRows {
  readonly resident: boolean;
  readonly rowBytes: number;
  /** Rows per call that keep a read near `CHUNK_BYTES`. */
  readonly chunkRows: number;
  rows(n0: number, n1: number): Uint8Array;
}

/** Bytes per on-demand read: large enough for sequential I/O, small enough to stay in cache. */
const CHUNK_BYTES = 4 << 20;

export function residentRows(data: Uint8Array, outFeatures: number): WeightRows {
  const rowBytes = data.byteLength / outFeatures;
  return { resident: true, rowBytes, chunkRows: outFeatures, rows: (n0, n1) => data.subarray(n0 * rowBytes, n1 * rowBytes) };
}

/** One open descriptor per checkpoint file, shared by every mapped matrix in it. */
const descriptors = new Map<string, number>();

function descriptor(file: string): number {
  let fd = descriptors.get(file);
  if (fd === undefined) {
    fd = openSync(file, "r");
    descriptors.set(file, fd);
  }
  return fd;
}

/** Closes the descriptors mapped matrices opened (their matrices can no longer be read). */
export function closeMappedFiles(): void {
  for (const fd of descriptors.values()) closeSync(fd);
  descriptors.clear();
}

export function mappedRows(m: StoredMatrix & { location: NonNullable<StoredMatrix["location"]> }): WeightRows {
  const { file, offset, byteLength } = m.location;
  const rowBytes = byteLength / m.outFeatures;
  const chunkRows = Math.max(1, Math.min(m.outFeatures, Math.floor(CHUNK_BYTES / rowBytes)));
  // 4-byte aligned for the bf16 / f32 word views.
  let buf = new Uint8Array(0);
  return {
    resident: false,
    rowBytes,
    chunkRows,
    rows(n0, n1) {
      const len = (n1 - n0) * rowBytes;
      if (buf.byteLength < len) buf = new Uint8Array(Math.max(len, Math.min(byteLength, chunkRows * rowBytes)));
      const fd = descriptor(file);
      let done = 0;
      while (done < len) {
        const n = readSync(fd, buf, done, len - done, offset + n0 * rowBytes + done);
        if (n === 0) throw new Error(`${m.name}: ${file} ends before byte ${offset + n0 * rowBytes + len} (truncated checkpoint?)`);
        done += n;
      }
      return buf.subarray(0, len);
    },
  };
}
