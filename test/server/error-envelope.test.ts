/**
 * Errors raised below the route handlers (the framework's URL and parameter checks,
 * 404/405, Node's `Expect` handling and its framing errors) come out in the route
 * family's envelope with a message naming the problem, before the socket closes.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MODEL, realServer, serve, type TestServer } from "./helpers.js";
import { envelopeProblem, httpRequest, rawRequest } from "./raw-http.js";
import { ScriptedEngine } from "./scripted-engine.js";

interface Row {
  name: string;
  payload: string;
  /** The path whose family's envelope the answer must use. */
  path: string;
  status: number;
  message: RegExp;
}

const chunked = (path: string, chunks: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}`;

const ROWS: Row[] = [
  { name: "a bad percent-encoding", payload: httpRequest("GET", "/%zz"), path: "/%zz", status: 400, message: /not a valid URL/ },
  { name: "a bad percent-encoding under /anthropic/", payload: httpRequest("POST", "/anthropic/v1/%ff%fe", "{}"), path: "/anthropic/", status: 400, message: /not a valid URL/ },
  { name: "a bad model id encoding", payload: httpRequest("GET", "/v1/models/%ff"), path: "/v1/models/%ff", status: 400, message: /not a valid URL/ },
  { name: "a 5,000-character model id", payload: httpRequest("GET", `/v1/models/${"m".repeat(5000)}`), path: "/v1/models/", status: 414, message: /longer than the 100 characters/ },
  { name: "Expect: bogus", payload: httpRequest("POST", "/chat/completions", "{}", { expect: "bogus" }), path: "/chat/completions", status: 417, message: /Expect header "bogus"/ },
  { name: "Expect: bogus under /anthropic/", payload: httpRequest("POST", "/anthropic/v1/messages", "{}", { expect: "bogus" }), path: "/anthropic/", status: 417, message: /Expect header/ },
  { name: "a bad chunk size", payload: chunked("/chat/completions", "zz\r\nab\r\n0\r\n\r\n"), path: "/chat/completions", status: 400, message: /chunk size/ },
  { name: "a negative chunk size under /anthropic/", payload: chunked("/anthropic/v1/messages", "-5\r\nab\r\n0\r\n\r\n"), path: "/anthropic/", status: 400, message: /chunk size/ },
  { name: "Content-Length and Transfer-Encoding", payload: httpRequest("POST", "/chat/completions", "{}", { "content-length": "2", "transfer-encoding": "chunked" }), path: "/chat/completions", status: 400, message: /Transfer-Encoding/ },
  { name: "two different Content-Lengths", payload: "POST /chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", path: "/chat/completions", status: 400, message: /Content-Length/ },
  { name: "a NUL in a header", payload: "GET /v1/models HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n", path: "/v1/models", status: 400, message: /header/ },
  { name: "an obs-fold", payload: "GET /v1/models HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", path: "/v1/models", status: 400, message: /header/ },
  { name: "a missing Host", payload: "GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n", path: "/v1/models", status: 400, message: /Host header/ },
  { name: "an HTTP/2 preface", payload: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", path: "*", status: 400, message: /HTTP\/2/ },
  { name: "HTTP/0.9", payload: "GET /v1/models\r\n\r\n", path: "/v1/models", status: 400, message: /Bad Request/ },
  { name: "a 32 KB header", payload: httpRequest("GET", "/v1/models", undefined, { "x-big": "a".repeat(32 * 1024) }), path: "/v1/models", status: 431, message: /exceed/ },
  { name: "a 100 KB URL", payload: httpRequest("GET", `/${"a".repeat(100 * 1024)}`), path: "/", status: 431, message: /exceed/ },
  { name: "a method the path does not take", payload: httpRequest("DELETE", "/chat/completions"), path: "/chat/completions", status: 405, message: /takes POST/ },
  { name: "GET on the Anthropic messages route", payload: httpRequest("GET", "/anthropic/v1/messages"), path: "/anthropic/", status: 405, message: /takes POST/ },
  { name: "an unknown path", payload: httpRequest("GET", "/v2/nothing"), path: "/v2/nothing", status: 404, message: /Not Found: GET \/v2\/nothing/ },
  { name: "a body that is not JSON", payload: httpRequest("POST", "/beta/completions", "hello"), path: "/beta/completions", status: 400, message: /parse the request body as JSON/ },
];

describe("errors below the routes use the route family's envelope", () => {
  let server: TestServer;
  before(async () => {
    server = await serve(new ScriptedEngine(() => ({ pieces: ["a"] })));
  });
  after(() => server.close());

  for (const row of ROWS) {
    test(row.name, async () => {
      const r = await rawRequest(server.port, row.payload);
      assert.equal(r.status, row.status, `${r.status}: ${r.body}`);
      assert.equal(envelopeProblem(row.path, r), null, r.body);
      // Both envelopes carry the message at error.message.
      assert.match(r.json.error.message as string, row.message);
    });
  }

  test("405 names the allowed methods in Allow", async () => {
    const r = await rawRequest(server.port, httpRequest("POST", "/v1/models"));
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, "GET, HEAD");
  });

  test("a server shutting down answers 503 in the envelope", async () => {
    const closing = await serve(new ScriptedEngine(() => ({ pieces: ["a"], delayMs: 300 })));
    // A long request keeps the server open while it closes; the next request is refused.
    const busy = rawRequest(closing.port, httpRequest("POST", "/chat/completions", JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "x" }] }), { connection: "keep-alive" }), 5000);
    await new Promise((r) => setTimeout(r, 100));
    const closed = closing.close();
    const r = await rawRequest(closing.port, httpRequest("GET", "/v1/models"), 5000);
    await closed;
    await busy;
    // Either the listener had already stopped (nothing to read) or the answer is an enveloped 503.
    if (r.status !== 0) {
      assert.equal(r.status, 503, r.body);
      assert.equal(envelopeProblem("/v1/models", r), null, r.body);
    }
  });
});

describe("top_p: 0 is accepted, as DeepSeek does", () => {
  let server: TestServer;
  before(async () => {
    server = await realServer();
  });
  after(() => server.close());

  const user = [{ role: "user", content: "hi" }];
  const routes: Array<[string, object]> = [
    ["/chat/completions", { model: MODEL, messages: user, max_tokens: 2, top_p: 0, thinking: { type: "disabled" } }],
    ["/beta/completions", { model: MODEL, prompt: "def f(", max_tokens: 2, top_p: 0 }],
    ["/anthropic/v1/messages", { model: MODEL, messages: user, max_tokens: 2, top_p: 0 }],
  ];
  for (const [path, body] of routes) {
    test(path, async () => {
      const r = await rawRequest(server.port, httpRequest("POST", path, JSON.stringify(body), { "content-type": "application/json" }));
      assert.equal(r.status, 200, r.body);
    });
  }
});
