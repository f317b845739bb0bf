import type { Backend, ExpertPicks, MatrixHandle } from "../src/kernels/backend.js";

/** The weight products an op performs, with their activation rows: a linear's (or greedyRows') one, routedExperts' three per expert. */
export function productsOf(name: string, args: unknown[]): Array<{ w: MatrixHandle; rows: number }> {
  if (name === "linear" || name === "greedyRows") return [{ w: args[2] as MatrixHandle, rows: args[1] as number }];
  if (name === "routedExperts") return (args[2] as ExpertPicks[]).flatMap((e) => [e.w1, e.w3, e.w2].map((w) => ({ w, rows: e.rows.length })));
  return [];
}

/**
 * A backend whose every method call goes through `onCall(name, args, call)`, which must
 * return `call()`'s result: the benchmarks count weight bytes, FLOPs and time per op this way.
 */
export function observeBackend(inner: Backend, onCall: (name: string, args: unknown[], call: () => unknown) => unknown): Backend {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      const name = String(prop);
      return (...args: unknown[]) => onCall(name, args, () => value.apply(target, args));
    },
  });
}
