/**
 * Connections that never sent a byte (a client pool's spare ones) are not answered with a 408
 * when the headers timeout passes, so a request sent on one later gets its own answer; a
 * request whose headers really are late still gets the 408; shutdown does not wait on them.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { serve, type TestServer } from "./helpers.js";
import { envelopeProblem, httpRequest, rawRequest } from "./raw-http.js";
import { ScriptedEngine } from "./scripted-engine.js";

const HEADERS_TIMEOUT_MS = 200;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
}

/** Everything the server sends on `s` until it closes or `ms` pass. */
function readAll(s: Socket, ms: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = "";
    const timer = setTimeout(() => resolve({ text, closed: false }), ms);
    s.on("data", (d: Buffer) => (text += d.toString("latin1")));
    s.on("error", () => undefined);
    s.once("close", () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
  });
}

describe("connections that never sent a byte", () => {
  let server: TestServer;
  before(async () => {
    server = await serve(new ScriptedEngine(() => ({ pieces: ["a"] })), { headersTimeoutMs: HEADERS_TIMEOUT_MS });
  });
  after(() => server.close());

  test("a request sent on one after the headers timeout gets its own answer, not a 408", async () => {
    const s = await open(server.port);
    const got = readAll(s, 3000);
    // Several checks of the headers timeout pass while the connection sits unused.
    await sleep(HEADERS_TIMEOUT_MS * 4);
    s.write(httpRequest("GET", "/v1/models", undefined, { connection: "close" }));
    const { text } = await got;
    assert.match(text, /^HTTP\/1\.1 200 /, text.slice(0, 200));
    assert.doesNotMatch(text, /408/);
  });

  test("a request whose headers stop half way still gets the 408 in the envelope", async () => {
    const r = await rawRequest(server.port, "GET /v1/models HTTP/1.1\r\nHost: x\r\n", 3000);
    assert.equal(r.timedOut, false, "the server never answered");
    assert.equal(r.status, 408, r.body);
    assert.equal(envelopeProblem("/v1/models", r), null, r.body);
    assert.match(r.json.error.message as string, /headers were not all received in time/);
    assert.equal(r.json.error.code, "request_timeout");
  });

  test("shutdown closes them instead of waiting for the client", async () => {
    const other = await serve(new ScriptedEngine(() => ({ pieces: ["a"] })), { headersTimeoutMs: HEADERS_TIMEOUT_MS });
    const s = await open(other.port);
    const got = readAll(s, 5000);
    await sleep(HEADERS_TIMEOUT_MS * 2);
    const t0 = performance.now();
    await other.close();
    const { text, closed } = await got;
    assert.equal(closed, true, "the connection was left open");
    assert.equal(text, "", "nothing is written on a connection that asked nothing");
    assert.ok(performance.now() - t0 < 3000, `close took ${(performance.now() - t0).toFixed(0)} ms`);
  });
});
