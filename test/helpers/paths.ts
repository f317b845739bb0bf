import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root, from a compiled test file under dist/test/. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** The project's shared data (spec, goldens, fixtures): `../shared` beside the checkout, as in CI. */
export const sharedDir = process.env.DSV4_SHARED_DIR ?? resolve(repoRoot, "..", "shared");
