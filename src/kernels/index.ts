import type { Backend } from "./backend.js";
import { RefBackend } from "./ref/index.js";

export type { Backend } from "./backend.js";

export const BACKEND_NAMES = ["ref"] as const;

/**
 * The backend to compute with: `name`, else `DSV4_BACKEND`, else the fastest available.
 * An unknown name is an error that lists the choices.
 */
export function createBackend(name: string | undefined = process.env.DSV4_BACKEND): Backend {
  const chosen = name && name !== "" ? name : "ref";
  switch (chosen) {
    case "ref":
      return new RefBackend();
    default:
      throw new Error(`unknown backend "${chosen}"; available: ${BACKEND_NAMES.join(", ")}`);
  }
}
