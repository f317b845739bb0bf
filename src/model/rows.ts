import type { Backend, Vec } from "../kernels/backend.js";

/** The given rows (of `width` values each) of a row-major batch, gathered in order. */
export function selectRows(backend: Backend, X: Vec, rows: ArrayLike<number>, width: number): Vec {
  const out = backend.alloc(rows.length * width);
  for (let i = 0; i < rows.length; i++) out.set(X.subarray(rows[i]! * width, (rows[i]! + 1) * width), i * width);
  return out;
}
