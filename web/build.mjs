// Builds the web playground (web/ → dist/playground/): one JS and one CSS bundle, minified, plus
// index.html, and gzipped twins of the bundles; the server serves them at / and /playground/.
// Prints the gzipped sizes.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const web = dirname(fileURLToPath(import.meta.url));
const out = resolve(web, "..", "dist", "playground");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: join(web, "src", "main.tsx") },
  outdir: out,
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "linked",
  logLevel: "warning",
});
copyFileSync(join(web, "index.html"), join(out, "index.html"));
// Gzipped twins, sent to browsers that accept gzip (src/server/routes/playground.ts).
const gzipped = (name) => {
  const gz = gzipSync(readFileSync(join(out, name)), { level: 9 });
  writeFileSync(join(out, `${name}.gz`), gz);
  return gz.length;
};
const js = gzipped("app.js");
const css = gzipped("app.css");
if (!process.env.DSV4_QUIET_WEB_BUILD) {
  console.log(`web playground: dist/playground/ (app.js ${(js / 1024).toFixed(1)} KiB + app.css ${(css / 1024).toFixed(1)} KiB gzipped = ${((js + css) / 1024).toFixed(1)} KiB)`);
}
