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
