import type { Backend } from "../src/kernels/backend.js";

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
