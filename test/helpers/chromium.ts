import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";

/**
 * The Chromium the browser tests drive: $DSV4_CHROMIUM, else the first of Debian's `chromium`
 * and the usual other names on PATH. Null when there is none.
 */
export function findChromium(): string | null {
  const explicit = process.env.DSV4_CHROMIUM;
  if (explicit) return existsSync(explicit) ? explicit : null;
  const dirs = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  for (const name of ["chromium", "chromium-browser", "google-chrome-stable", "google-chrome"]) {
    for (const dir of dirs) {
      const path = join(dir, name);
      if (existsSync(path)) return path;
    }
  }
  return null;
}

/**
 * Why the browser tests cannot run here, or false when they can. In CI (CI=true) a missing
 * browser is a failure, not a skip: .ci/run installs Debian's chromium.
 */
export function browserSkipReason(): string | false {
  if (findChromium()) return false;
  const why = "no Chromium found (install Debian's chromium: apt-get install chromium, or set DSV4_CHROMIUM to a Chrome/Chromium binary)";
  if (process.env.CI === "true") throw new Error(`browser tests: ${why}; CI must have it (.ci/run installs it)`);
  process.stderr.write(`warning: browser tests skipped: ${why}\n`);
  return why;
}
