import { nativeBackendStatus } from "../../src/kernels/index.js";

/**
 * Whether native tests run. In CI (CI=true) the addon must have been built by `npm ci`, so a
 * missing addon fails loudly; locally the tests skip with the reason.
 */
export function nativeSkip(): string | false {
  const status = nativeBackendStatus();
  if (status.available) return false;
  if (process.env.CI === "true" || process.env.CI === "1") {
    throw new Error(`CI requires the native backend, but ${status.reason}`);
  }
  return `native backend not built: ${status.reason}`;
}
