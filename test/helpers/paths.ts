import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root, from a compiled test file under dist/test/. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** The tests' data (goldens of the official code, official encoding vectors), kept in the repository. */
export const testDataDir = resolve(repoRoot, "test", "data");
