import type { Backend, Vec } from "../kernels/backend.js";

/** The given rows (of `width` values each) of a row-major batch, gathered in order. */
export function selectRows(backend: Backend, X: Vec, rows: readonly number[], width: number): Vec {
  const out = backend.alloc(rows.length * width);
  rows.forEach((row, i) => out.set(X.subarray(row * width, (row + 1) * width), i * width));
  return out;
}
