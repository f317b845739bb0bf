import { nativeBackendStatus } from "../../src/kernels/index.js";

let warned = false;

/**
 * Whether native tests run. The addon is expected, and its absence fails the suite, in CI
 * (CI=true: `npm ci` must have built it), with DSV4_REQUIRE_NATIVE=1, and whenever it was
 * built but does not load (a broken build must not pass as "not built"). Otherwise the
 * native tests skip, and say so on stderr once per test file, not only in the skip list.
 */
export function nativeSkip(): string | false {
  const status = nativeBackendStatus();
  if (status.available) return false;
  const builtButBroken = status.reason.startsWith("cannot load");
  const required = process.env.CI === "true" || process.env.CI === "1" || process.env.DSV4_REQUIRE_NATIVE === "1";
  if (required || builtButBroken) {
    const why = builtButBroken ? "the addon was built" : process.env.DSV4_REQUIRE_NATIVE === "1" ? "DSV4_REQUIRE_NATIVE=1" : "CI is set";
    throw new Error(`the native backend is required (${why}), but ${status.reason}; build it with \`npm run install\``);
  }
  const reason = `native backend not built: ${status.reason}`;
  if (!warned) {
    warned = true;
    process.stderr.write(`\n*** SKIPPING NATIVE BACKEND TESTS: ${reason}. Build it with \`npm run install\`; set DSV4_REQUIRE_NATIVE=1 to make this a failure. ***\n\n`);
  }
  return reason;
}
