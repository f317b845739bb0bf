/**
 * The buffers behind a runner result, for postMessage's transfer list: logits,
 * residual streams and prefix-cache blocks are fresh arrays made for the reply, so
 * they move to the main thread instead of being copied (the logits alone are
 * vocab × 4 bytes, about 0.5 MB, per row).
 */
export function outputBuffers(value: unknown): ArrayBuffer[] {
  const found = new Set<ArrayBuffer>();
  const visit = (v: unknown): void => {
    if (ArrayBuffer.isView(v)) {
      if (v.buffer instanceof ArrayBuffer) found.add(v.buffer);
    } else if (Array.isArray(v)) {
      for (const x of v) visit(x);
    } else if (v !== null && typeof v === "object") {
      for (const x of Object.values(v)) visit(x);
    }
  };
  visit(value);
  return [...found];
}

/**
 * Logits buffers that go back and forth between the threads instead of being made anew for
 * every step: the runner copies each logits row it returns into one of these, and the engine
 * hands them back once the step is postprocessed (Runner.recycle). Fresh arrays every step
 * (vocab x 4 bytes a row, 8 MB a step at 16 rows) grew the main isolate's external memory
 * until V8 ran a mark-compact beside the step every few steps.
 */
export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();

  constructor(private readonly most = 256) {}

  /** Buffers handed back (transferred to this thread). */
  give(buffers: readonly ArrayBuffer[]): void {
    for (const b of buffers) {
      const list = this.free.get(b.byteLength) ?? [];
      if (list.length < this.most) list.push(b);
      this.free.set(b.byteLength, list);
    }
  }

  /** A copy of `row` in a pooled buffer of its size (a new one when none is free). */
  copy<T extends Float32Array | Float64Array>(row: T): T {
    const buffer = this.free.get(row.byteLength)?.pop() ?? new ArrayBuffer(row.byteLength);
    const out = (row instanceof Float32Array ? new Float32Array(buffer) : new Float64Array(buffer)) as T;
    out.set(row);
    return out;
  }
}
