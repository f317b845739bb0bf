/**
 * Touching every page of the mapped checkpoint at load, as llama.cpp does with MAP_POPULATE:
 * without it the first step that routes to an expert (or the first DSpark draft) pays for
 * its pages, which at flash-slice dimensions is a 0.6 s stall in the middle of serving.
 * Only done when the checkpoint fits in the memory available; a larger one stays lazily
 * paged, since reading it all would only push out the pages it reads first.
 */
import { freemem } from "node:os";
import { resolve } from "node:path";
import type { Backend } from "../kernels/backend.js";
import type { Checkpoint } from "../formats/safetensors.js";
import type { LoadProgress } from "./weights.js";

/** "auto": when the checkpoint fits in available memory with headroom; "on": always; "off": never. */
export type PrefetchMode = "auto" | "on" | "off";

export const PREFETCH_MODES: readonly PrefetchMode[] = ["auto", "on", "off"];

/** Memory left for activations, states and the rest of the process after the weights. */
export const PREFETCH_HEADROOM_BYTES = 2 * 2 ** 30;

/** The checkpoint fits in `available` bytes (Linux: MemAvailable, page cache included) with the headroom to spare. */
function fitsInMemory(checkpointBytes: number, available: number): boolean {
  return checkpointBytes + PREFETCH_HEADROOM_BYTES <= available;
}

/**
 * Whether a load repacks the routed experts (LoadOptions.repack, default true): only a
 * checkpoint that fits in memory, since the copies live in the process's own memory, which
 * (without swap) is never given back, where a mapped checkpoint larger than memory pages.
 */
export function shouldRepack(requested: boolean | undefined, checkpointBytes: number, available = freemem()): boolean {
  return (requested ?? true) && fitsInMemory(checkpointBytes, available);
}

/** `available`: bytes the system can give (Linux: MemAvailable, page cache included). */
export function shouldPrefetch(mode: PrefetchMode, checkpointBytes: number, available = freemem()): boolean {
  if (mode === "off") return false;
  if (mode === "on") return true;
  return fitsInMemory(checkpointBytes, available);
}

/**
 * Locks every shard the backend has mapped in memory (`--mlock`), after the prefetch has read
 * them in their final page-cache folios: a locked page is never paged out, so a step never
 * waits for the disk on an expert unused for a while (a host under memory pressure, or a VM
 * whose kernel pages out memory left unread for a minute). A backend that maps nothing holds
 * its weights in its own memory: nothing to lock. Throws naming the shard, the cause and the fix.
 */
export function lockCheckpoint(ckpt: Checkpoint, backend: Backend, available = freemem()): void {
  if (!backend.lockFile) return;
  // Locking pins every page: one that cannot fit would push out everything else first.
  const bytes = ckpt.totalBytes();
  if (!fitsInMemory(bytes, available)) {
    const gb = (n: number) => `${(n / 1e9).toFixed(1)} GB`;
    throw new Error(`--mlock: the checkpoint (${gb(bytes)}) does not fit in the memory available (${gb(available)}) with ${gb(PREFETCH_HEADROOM_BYTES)} to spare; leave out --mlock`);
  }
  for (const file of ckpt.shardPaths()) {
    const error = backend.lockFile(resolve(file));
    if (error !== null) {
      throw new Error(
        `--mlock: could not lock ${file} in memory: ${error}. Raise the locked-memory limit (ulimit -l unlimited; ` +
          `LimitMEMLOCK=infinity in a systemd unit; docker run --ulimit memlock=-1) or leave out --mlock`,
      );
    }
  }
}

/** Prefetches each shard the backend has mapped; returns the bytes touched (0 when skipped). */
export function prefetchCheckpoint(ckpt: Checkpoint, backend: Backend, mode: PrefetchMode, onProgress?: (p: LoadProgress) => void): number {
  if (!backend.prefetchFile || !shouldPrefetch(mode, ckpt.totalBytes())) return 0;
  const files = ckpt.shardPaths();
  let bytes = 0;
  files.forEach((file, i) => {
    bytes += backend.prefetchFile!(resolve(file));
    onProgress?.({ phase: "prefetch", done: i + 1, total: files.length, bytes });
  });
  return bytes;
}
