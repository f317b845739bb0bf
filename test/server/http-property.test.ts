/**
 * A seeded, bounded property test of the HTTP layer: fast-check generates requests for
 * every route (valid ones, and ones malformed in the body, the JSON, the URL, the method,
 * the headers, the API key and the HTTP framing) and sends each over a bare socket to the
 * real engine on the default model. Every answer must come, none may be a 5xx, every
 * error must be in its route family's envelope, every malformed request must be a 4xx,
 * and every valid one answered 200.
 *
 * DSV4_FUZZ_RUNS sets the case count (the suite runs a few hundred; the run is
 * DSV4_FUZZ_RUNS=10000), DSV4_FUZZ_SEED the seed (a failure prints both, to replay it).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import fc from "fast-check";
import { makeKey } from "../../src/server/auth.js";
import { MODEL, realServer, type TestServer } from "./helpers.js";
import { envelopeProblem, httpRequest, rawRequest, type RawAnswer } from "./raw-http.js";

const RUNS = Number(process.env.DSV4_FUZZ_RUNS ?? 200);
const SEED = Number(process.env.DSV4_FUZZ_SEED ?? 19);
const KEY = "sk-fuzz-key";

type Expect = "ok" | "error" | "either" | "unauthorized";
interface Case {
  /** How the case was made, shown on failure. */
  kind: string;
  method: string;
  path: string;
  payload: string;
  expect: Expect;
}

interface Route {
  method: "GET" | "POST";
  path: string;
  /** A valid body for POST routes. */
  body?: fc.Arbitrary<Record<string, unknown>>;
}

const text = fc.string({ minLength: 1, maxLength: 40 });
const chatBody = fc.record({
  model: fc.constant(MODEL),
  messages: fc.array(fc.record({ role: fc.constant("user"), content: text }), { minLength: 1, maxLength: 2 }),
  max_tokens: fc.integer({ min: 1, max: 2 }),
  thinking: fc.constant({ type: "disabled" }),
  stream: fc.boolean(),
  temperature: fc.double({ min: 0, max: 2, noNaN: true }),
  top_p: fc.double({ min: 0, max: 1, noNaN: true }),
});
const fimBody = fc.record({ model: fc.constant(MODEL), prompt: text, suffix: fc.option(text, { nil: undefined }), max_tokens: fc.integer({ min: 1, max: 2 }), top_p: fc.double({ min: 0, max: 1, noNaN: true }) });
const textBody = fc.record({
  model: fc.constant(MODEL),
  prompt: fc.oneof(text, fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 8 }), fc.array(text, { minLength: 1, maxLength: 1 })),
  max_tokens: fc.integer({ min: 1, max: 2 }),
  echo: fc.boolean(),
  logprobs: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
  stream: fc.boolean(),
});
const anthropicBody = fc.record({
  model: fc.constant(MODEL),
  max_tokens: fc.integer({ min: 1, max: 2 }),
  messages: fc.array(fc.record({ role: fc.constant("user"), content: text }), { minLength: 1, maxLength: 1 }),
  stream: fc.boolean(),
  top_p: fc.double({ min: 0, max: 1, noNaN: true }),
});
const countBody = fc.record({ model: fc.constant(MODEL), messages: fc.array(fc.record({ role: fc.constant("user"), content: text }), { minLength: 1, maxLength: 2 }) });

const ROUTES: Route[] = [
  ...["/chat/completions", "/v1/chat/completions", "/beta/chat/completions"].map((path): Route => ({ method: "POST", path, body: chatBody })),
  { method: "POST", path: "/beta/completions", body: fimBody },
  ...["/completions", "/v1/completions"].map((path): Route => ({ method: "POST", path, body: textBody })),
  { method: "POST", path: "/anthropic/v1/messages", body: anthropicBody },
  { method: "POST", path: "/anthropic/v1/messages/count_tokens", body: countBody },
  ...["/models", "/v1/models", "/beta/models", `/models/${MODEL}`, `/v1/models/${MODEL}`, `/beta/models/${MODEL}`, "/health", "/metrics", "/user/balance", "/v1/user/balance", "/tokenizer_info"].map((path): Route => ({ method: "GET", path })),
];
/** Paths that answer without a key. */
const PUBLIC = new Set(["/health"]);

const auth = { authorization: `Bearer ${KEY}` };
const json = { "content-type": "application/json" };

/** A valid request to the route. */
const valid = (r: Route): fc.Arbitrary<Case> =>
  (r.body ?? fc.constant(undefined)).map((body) => ({
    kind: "valid",
    method: r.method,
    path: r.path,
    payload: httpRequest(r.method, r.path, body === undefined ? undefined : JSON.stringify(body), { ...auth, ...(body ? json : {}) }),
    expect: "ok" as Expect,
  }));

const FIELDS = ["model", "messages", "max_tokens", "stream", "temperature", "top_p", "thinking", "stop", "tools", "tool_choice", "prompt", "suffix", "system", "logprobs", "top_logprobs", "response_format", "n", "seed", "echo", "stream_options"];

/** A valid body with one field replaced by any JSON value, or removed: may still be valid. */
const mutatedBody = (r: Route): fc.Arbitrary<Case> =>
  fc.tuple(r.body!, fc.constantFrom(...FIELDS), fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined })).map(([body, field, value]) => {
    const b: Record<string, unknown> = { ...body };
    if (value === undefined) delete b[field];
    else b[field] = value;
    return { kind: `body ${field}=${JSON.stringify(value)?.slice(0, 60)}`, method: r.method, path: r.path, payload: httpRequest(r.method, r.path, JSON.stringify(b), { ...auth, ...json }), expect: "either" as Expect };
  });

/** A body that is not JSON, or JSON of the wrong shape entirely. */
const garbageBody = (r: Route): fc.Arbitrary<Case> =>
  fc.oneof(
    fc.string({ maxLength: 200 }).filter((s) => { try { JSON.parse(s); return false; } catch { return true; } }),
    fc.jsonValue({ maxDepth: 4 }).filter((v) => typeof v !== "object" || v === null || Array.isArray(v)).map((v) => JSON.stringify(v)),
    fc.integer({ min: 200, max: 400 }).map((depth) => "[".repeat(depth) + "]".repeat(depth)),
  ).map((body) => ({ kind: `garbage body ${JSON.stringify(body.slice(0, 60))}`, method: r.method, path: r.path, payload: httpRequest(r.method, r.path, body, { ...auth, ...json }), expect: "error" as Expect }));

/** A path broken by bad percent-escapes, odd characters or an over-long segment. */
const badPath = (r: Route): fc.Arbitrary<Case> =>
  fc.oneof(
    fc.tuple(fc.constantFrom("%", "%f", "%zz", "%ff%fe", "%00", "%c0%af"), fc.nat({ max: r.path.length })).map(([bad, at]) => r.path.slice(0, at) + bad + r.path.slice(at)),
    fc.integer({ min: 101, max: 6000 }).map((n) => `/v1/models/${"x".repeat(n)}`),
    fc.stringMatching(/^[a-z0-9._~-]{1,20}$/).map((s) => `${r.path}/${s}`),
  ).map((path) => ({ kind: `bad path ${path.slice(0, 60)}`, method: r.method, path, payload: httpRequest(r.method, path, r.method === "POST" ? "{}" : undefined, auth), expect: "error" as Expect }));

/** A method the route does not take. */
const badMethod = (r: Route): fc.Arbitrary<Case> =>
  fc.constantFrom("PUT", "DELETE", "PATCH", "TRACE", "PROPFIND", r.method === "GET" ? "POST" : "GET").map((method) => ({
    kind: `method ${method}`, method, path: r.path, payload: httpRequest(method, r.path, method === "GET" || method === "TRACE" ? undefined : "{}", auth), expect: "error" as Expect,
  }));

/** A valid request whose key is missing or wrong. */
const badKey = (r: Route): fc.Arbitrary<Case> =>
  fc.tuple(valid(r), fc.constantFrom(undefined, "Bearer sk-wrong", "Bearer ", "Basic abc", `Bearer ${KEY}x`, "bearer")).map(([c, header]) => {
    const payload = c.payload.replace(/authorization: [^\r]*\r\n/, header === undefined ? "" : `authorization: ${header}\r\n`);
    return { ...c, kind: `key ${String(header)}`, payload, expect: PUBLIC.has(r.path) ? "ok" : ("unauthorized" as Expect) };
  });

/** Headers no request should carry: control characters, bad Expect, bad or conflicting framing, too much of it. */
const badHeaders = (r: Route): fc.Arbitrary<Case> => {
  const line = (h: Record<string, string>, body = "{}") => httpRequest(r.method === "GET" ? "POST" : r.method, r.path, body, { ...auth, ...json, ...h });
  return fc.oneof(
    fc.string({ minLength: 1, maxLength: 20 }).filter((s) => s.toLowerCase() !== "100-continue" && !/[\r\n]/.test(s)).map((v) => ["expect", line({ expect: v })] as const),
    fc.constantFrom("\u0000", "\u0001", "\u007f", "\r", "\u000b").map((c) => ["control char", line({ "x-test": `a${c}b` })] as const),
    fc.constant(["cl+te", line({ "content-length": "2", "transfer-encoding": "chunked" })] as const),
    fc.tuple(fc.nat({ max: 9 }), fc.nat({ max: 9 })).filter(([a, b]) => a !== b).map(([a, b]) => ["two content-lengths", line({ "content-length": String(a), "Content-Length": String(b) })] as const),
    fc.constantFrom("zz", "-5", "ffffffffffffffffffff", " 2", "2;x=\u0001").map((size) => ["chunk size", line({ "transfer-encoding": "chunked" }, `${size}\r\n{}\r\n0\r\n\r\n`)] as const),
    fc.integer({ min: 17_000, max: 40_000 }).map((n) => ["big header", line({ "x-big": "a".repeat(n) })] as const),
  ).map(([what, payload]) => ({ kind: `header ${what}`, method: r.method, path: r.path, payload, expect: "error" as Expect }));
};

/** Request lines that are not HTTP/1.x, or carry bytes no request line can. */
const badFraming = (r: Route): fc.Arbitrary<Case> =>
  fc.oneof(
    fc.constant(`GET ${r.path}\r\n\r\n`),
    fc.constant("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    fc.constantFrom("HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTX/1.1", "HTTP/1.1 extra").map((v) => `${r.method} ${r.path} ${v}\r\nHost: x\r\nConnection: close\r\n\r\n`),
    fc.constant(`${r.method} ${r.path} HTTP/1.1\r\nConnection: close\r\n\r\n`),
    fc.constantFrom(" ", "\u0000", "\t", "\u007f").map((c) => `${r.method} ${r.path}${c}x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    fc.constant(`${r.method} ${r.path} HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\nConnection: close\r\n\r\n`),
  ).map((payload) => ({ kind: `framing ${JSON.stringify(payload.slice(0, 50))}`, method: r.method, path: r.path, payload, expect: "error" as Expect }));

const caseFor = (r: Route): fc.Arbitrary<Case> =>
  fc.oneof(
    { weight: 2, arbitrary: valid(r) },
    ...(r.body ? [{ weight: 4, arbitrary: mutatedBody(r) }, { weight: 2, arbitrary: garbageBody(r) }] : []),
    { weight: 2, arbitrary: badPath(r) },
    { weight: 1, arbitrary: badMethod(r) },
    { weight: 1, arbitrary: badKey(r) },
    { weight: 2, arbitrary: badHeaders(r) },
    { weight: 1, arbitrary: badFraming(r) },
  );

const anyCase = fc.constantFrom(...ROUTES).chain(caseFor);

/** Why an answer breaks the property, or null. */
function problem(c: Case, r: RawAnswer): string | null {
  if (r.timedOut) return "no answer in time";
  if (r.status === 0) return "closed without an answer";
  if (r.status >= 500) return `a ${r.status}`;
  if (c.expect === "ok" && r.status !== 200) return `a valid request answered ${r.status}`;
  if (c.expect === "error" && r.status < 400) return `a malformed request answered ${r.status}`;
  if (c.expect === "unauthorized" && r.status !== 401) return `a bad key answered ${r.status}`;
  if (r.status >= 400 && c.method !== "HEAD") {
    // The family is the request line's path (the method and path actually sent); none parseable: DeepSeek's.
    const target = /^[A-Z]+ (\S+)/.exec(c.payload)?.[1] ?? "/";
    return envelopeProblem(target.startsWith("/anthropic/") ? target : "/", r);
  }
  return null;
}

let server: TestServer;
before(async () => {
  // A short context bounds every answer, also those whose mutated body drops max_tokens (default: the context).
  server = await realServer({ contextLength: 128 }, { apiKeys: [makeKey(KEY)], keepAliveMs: 60_000 });
});
after(() => server.close());

test(`the HTTP layer holds for ${RUNS} generated requests (seed ${SEED})`, { timeout: Math.max(120_000, RUNS * 200) }, async () => {
  const tally = { cases: 0, ok: 0, error4xx: 0 };
  await fc.assert(
    fc.asyncProperty(anyCase, async (c) => {
      const r = await rawRequest(server.port, c.payload, 60_000);
      tally.cases++;
      if (r.status === 200) tally.ok++;
      if (r.status >= 400 && r.status < 500) tally.error4xx++;
      const why = problem(c, r);
      assert.equal(why, null, `${c.kind} → ${c.method} ${c.path.slice(0, 80)}: ${why} (${r.status} ${r.body.slice(0, 300)})`);
    }),
    { seed: SEED, numRuns: RUNS, endOnFailure: true },
  );
  // Both kinds were exercised, and nothing was left running.
  assert.ok(tally.ok > 0 && tally.error4xx > 0, JSON.stringify(tally));
  const m = await rawRequest(server.port, httpRequest("GET", "/health"));
  assert.equal(m.status, 200);
  if (process.env.DSV4_FUZZ_REPORT) process.stderr.write(`fuzz: ${JSON.stringify(tally)}\n`);
});
