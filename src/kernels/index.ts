import type { Backend } from "./backend.js";
import { nativeAddon, REBUILD_ADVICE } from "./native/addon.js";
import { NativeBackend } from "./native/backend.js";
import { RefBackend } from "./ref/index.js";

export type { Backend } from "./backend.js";

export const BACKEND_NAMES = ["ref", "native"] as const;

let warned = false;

/** Whether the native addon loaded, and if not, why. */
export function nativeBackendStatus(): { available: true } | { available: false; reason: string } {
  const r = nativeAddon();
  return "error" in r ? { available: false, reason: r.error } : { available: true };
}

/**
 * The backend to compute with: `name`, else `DSV4_BACKEND`, else the fastest available
 * (native when its addon loaded; otherwise ref, after a one-line warning on stderr).
 * An unknown name is an error that lists the choices; "native" without the addon is an error.
 */
export function createBackend(name: string | undefined = process.env.DSV4_BACKEND): Backend {
  const chosen = name && name !== "" ? name : undefined;
  switch (chosen) {
    case undefined: {
      const r = nativeAddon();
      if (!("error" in r)) return new NativeBackend(r.addon);
      if (!warned) {
        warned = true;
        process.stderr.write(`dsv4: warning: native backend unavailable (${r.error}); using the slow TypeScript reference backend (${REBUILD_ADVICE})\n`);
      }
      return new RefBackend();
    }
    case "ref":
      return new RefBackend();
    case "native":
      return new NativeBackend();
    default:
      throw new Error(`unknown backend "${chosen}"; available: ${BACKEND_NAMES.join(", ")}`);
  }
}
