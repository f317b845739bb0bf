/**
 * GET / and /playground/{file}: the built page and its assets, open without an API key, with
 * a CSP that keeps the page to its own bundle and server; a clear 404 when the page is not built.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { buildServer } from "../../src/server/app.js";
import { makeKey } from "../../src/server/auth.js";
import { ScriptedEngine } from "./scripted-engine.js";

const engine = () => new ScriptedEngine(() => ({ pieces: [] }));

describe("the playground routes", () => {
  let dir: string;
  let app: FastifyInstance;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "dsv4-playground-"));
    writeFileSync(join(dir, "index.html"), "<!doctype html><title>page</title>");
    writeFileSync(join(dir, "app.js"), "export {};");
    writeFileSync(join(dir, "app.css"), "body{}");
    writeFileSync(join(dir, "app.js.gz"), gzipSync("export {};"));
    app = buildServer({ engine: engine(), playground: dir, apiKeys: [makeKey("sk-right")] });
  });
  after(() => app.close());

  test("GET / serves the page without a key, with its CSP", async () => {
    const r = await app.inject({ method: "GET", url: "/" });
    assert.equal(r.statusCode, 200);
    assert.match(r.headers["content-type"] as string, /^text\/html/);
    assert.equal(r.body, "<!doctype html><title>page</title>");
    assert.match(r.headers["content-security-policy"] as string, /connect-src 'self'/);
    assert.equal((await app.inject({ method: "HEAD", url: "/" })).statusCode, 200);
  });

  test("assets come with their content types", async () => {
    const js = await app.inject({ method: "GET", url: "/playground/app.js" });
    assert.equal(js.statusCode, 200);
    assert.match(js.headers["content-type"] as string, /^text\/javascript/);
    const css = await app.inject({ method: "GET", url: "/playground/app.css" });
    assert.match(css.headers["content-type"] as string, /^text\/css/);
  });

  test("a browser that takes gzip gets the build's gzipped bundle", async () => {
    const r = await app.inject({ method: "GET", url: "/playground/app.js", headers: { "accept-encoding": "gzip, deflate, br" } });
    assert.equal(r.headers["content-encoding"], "gzip");
    assert.equal(gunzipSync(r.rawPayload).toString(), "export {};");
    const plain = await app.inject({ method: "GET", url: "/playground/app.js" });
    assert.equal(plain.headers["content-encoding"], undefined);
    assert.equal(plain.body, "export {};");
  });

  test("the API behind the page still needs the key", async () => {
    const r = await app.inject({ method: "GET", url: "/models" });
    assert.equal(r.statusCode, 401);
  });

  test("an unknown asset or a path out of the folder is a 404 in the envelope", async () => {
    for (const url of ["/playground/missing.js", "/playground/..%2Fpackage.json", "/playground/.hidden"]) {
      const r = await app.inject({ method: "GET", url });
      assert.equal(r.statusCode, 404, url);
      assert.equal(r.json().error.code, "not_found", url);
    }
  });
});

test("a server without the built page starts and says how to build it", async () => {
  const empty = mkdtempSync(join(tmpdir(), "dsv4-no-playground-"));
  mkdirSync(join(empty, "nothing"));
  const app = buildServer({ engine: engine(), playground: join(empty, "nothing") });
  try {
    const r = await app.inject({ method: "GET", url: "/" });
    assert.equal(r.statusCode, 404);
    assert.match(r.json().error.message, /playground is not built.*npm run build:web/);
    assert.equal((await app.inject({ method: "GET", url: "/health" })).statusCode, 200);
  } finally {
    await app.close();
  }
});

test("playground: false serves no page and keeps / behind the key", async () => {
  const app = buildServer({ engine: engine(), playground: false, apiKeys: [makeKey("sk-right")] });
  try {
    assert.equal((await app.inject({ method: "GET", url: "/" })).statusCode, 401);
    const r = await app.inject({ method: "GET", url: "/", headers: { authorization: "Bearer sk-right" } });
    assert.equal(r.statusCode, 404);
    assert.doesNotMatch(r.json().error.message, /playground/);
  } finally {
    await app.close();
  }
});
