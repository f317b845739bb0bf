/**
 * The HTTP server: a fastify app with DeepSeek's routes on an engine. Owns
 * the cross-cutting parts: JSON parsing with located errors, API keys,
 * per-key concurrency and balance, CORS, request counters and the error
 * envelope. Routes only map requests to the engine and back; budgets are reserved and
 * settled around every generation (billing.ts).
 */
import Fastify, { type FastifyBodyParser, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { EngineApi } from "../engine/types.js";
import { MemoryLedger } from "../ledger/memory-ledger.js";
import type { Ledger } from "../ledger/types.js";
import { KeyRing, presentedKey, seedOf, type ApiKey } from "./auth.js";
import { Settling } from "./billing.js";
import type { ServerContext } from "./context.js";
import { ApiError, authenticationFails, invalidRequest, rateLimitReached, serverOverloaded, toApiError } from "./errors.js";
import { answerClientError, frameworkApiError, installRawErrorPaths, notFoundError, RouteMethods, sendApiError } from "./error-envelope.js";
import { MAX_OUTPUT_TOKENS } from "./limits.js";
import { trackUnusedConnections } from "./unused-connections.js";
import { isQuietRoute, requestIdFrom, requestRecord, type RequestLogSink } from "./request-log.js";
import { jsonErrorOffset, lineColumn, nestingDepth } from "./json-error.js";
import { ServerStats } from "./metrics.js";
import { DEFAULT_MODEL_NAME, ModelNames } from "./models.js";
import { anthropicModelRoutes } from "./routes/anthropic-models.js";
import { anthropicRoutes } from "./routes/anthropic.js";
import { chatRoutes } from "./routes/chat.js";
import { completionRoutes } from "./routes/completions.js";
import { generateRoutes } from "./routes/generate.js";
import { modelRoutes } from "./routes/models.js";
import { opsRoutes } from "./routes/ops.js";
import { serverInfoRoutes } from "./routes/server-info.js";
import { flushCacheRoutes } from "./routes/flush-cache.js";
import { DEFAULT_PLAYGROUND_DIR, isPlaygroundPath, playgroundRoutes } from "./routes/playground.js";
import { responsesRoutes } from "./routes/responses.js";
import { tokenizeRoutes } from "./routes/tokenize.js";
import { usageRoutes } from "./routes/usage.js";
import { defaultPrices, toSchedule, type PriceSchedule, type PriceTable } from "./prices.js";

export interface ServerOptions {
  engine: EngineApi;
  /** Name the model answers to (default deepseek-v4-flash). */
  modelName?: string;
  /** More names for the same model (e.g. deepseek-v4-pro for a Pro checkpoint). */
  aliases?: string[];
  /**
   * When non-empty, every route but /health, /ping, /health_generate and the playground page (GET /, /playground/*) needs
   * a key. These keys (and their balances, as budgets) are seeded into the ledger; the ledger's
   * other keys are accepted too.
   */
  apiKeys?: ApiKey[];
  /**
   * Keys, budgets reserved before dispatch and one row per request (src/ledger/). Given, keys are
   * on (the ledger's keys). Default with apiKeys: an in-process MemoryLedger (nothing persists).
   * The caller owns it: closing the server waits for its writes but does not close it.
   */
  ledger?: Ledger;
  /** How often the ledger's keys are re-read (keys created, disabled, budgets changed elsewhere); default 5000 ms. */
  keyRefreshMs?: number;
  /**
   * USD per 1M tokens: a flat table or a schedule with UTC windows (prices.ts). Default: the
   * table of the checkpoint's release (engine.model.release): April's flat one, or 0731's
   * off-peak/peak schedule (spec §F.1).
   */
  prices?: PriceTable | PriceSchedule;
  /** Milliseconds since the epoch (default Date.now); decides which price window a request falls in. */
  clock?: () => number;
  /** Largest accepted request body in bytes (default 32 MiB: a 1M-token prompt fits). */
  bodyLimit?: number;
  /** Allowed browser origins: true = any, a list = those; default off. */
  cors?: boolean | string[];
  /** Keep-alive cadence for streams and slow JSON answers (default 5000 ms). */
  keepAliveMs?: number;
  /** Honour temperature/top_p in thinking mode (the hosted service ignores them). */
  samplingInThinking?: boolean;
  /**
   * Reproduce the hosted service's 400s for what a self-hosted server can serve: a thinking-mode
   * tool-call turn without reasoning_content, strict tools outside /beta, response_format
   * json_schema. Default false: those are accepted (README "Lenient by default").
   */
  strictApi?: boolean;
  /** Concurrent requests per API key (or in all, without keys) before 429 (default 2500, the hosted per-account limit). */
  maxConcurrentRequests?: number;
  /**
   * Largest max_tokens a request may ask for (default and upper bound 393,216, the hosted
   * service's); above it a 400 names max_tokens and the cap. Requests without max_tokens get
   * the engine's default (32,768), or this cap when it is lower.
   */
  maxOutputTokens?: number;
  /**
   * Where each request's log line goes (request-log.ts: jsonLines() for stderr, jsonLinesFile()).
   * Default: none. GET /health and /metrics are not logged.
   */
  requestLog?: RequestLogSink | null;
  /**
   * A request whose line and headers are not all in by then gets a 408 and the connection is
   * closed (Node's server.headersTimeout, default 60 000 ms, 0: none; checked every quarter of
   * it, at most every 30 s). A connection that never sent anything is not answered (unused-connections.ts).
   */
  headersTimeoutMs?: number;
  /** fastify's pino logger (default off). */
  logger?: boolean;
  /**
   * The built web playground served at GET / (default: the package's dist/playground, written by
   * `npm run build:web`); false serves no page (GET / is then a plain 404).
   */
  playground?: string | false;
}

/** No real request nests this deep; deeper bodies are refused before anything recurses into them. */
const MAX_JSON_DEPTH = 128;
/** Paths open without a key: liveness (and SGLang's deep probe), and the playground's page and assets (isPlaygroundPath). */
const PUBLIC = new Set(["/health", "/health_generate", "/ping"]);
/** Without keys every request is one account, and one cache tenant (""). */
const ANONYMOUS: ApiKey = { id: "anonymous", digest: Buffer.alloc(32), label: "anonymous", tenant: "", budgetUsd: null, active: 0 };

export function buildServer(options: ServerOptions): FastifyInstance {
  const stats = new ServerStats();
  const seeds = options.apiKeys ?? [];
  const ledger = options.ledger ?? (seeds.length > 0 ? new MemoryLedger() : null);
  const ctx: ServerContext = {
    engine: options.engine,
    models: new ModelNames(options.modelName ?? DEFAULT_MODEL_NAME, options.aliases ?? []),
    prices: options.prices ? toSchedule(options.prices) : defaultPrices(options.engine.model.release),
    clock: options.clock ?? Date.now,
    keys: new KeyRing(seeds, ledger !== null),
    ledger,
    settling: new Settling(),
    stats,
    keepAliveMs: options.keepAliveMs ?? 5000,
    firstEventWaitMs: 250,
    samplingInThinking: options.samplingInThinking ?? false,
    maxOutputTokens: checkedCap(options.maxOutputTokens),
    strictApi: options.strictApi ?? false,
    playground: options.playground === false ? false : (options.playground ?? DEFAULT_PLAYGROUND_DIR),
  };
  const maxConcurrent = options.maxConcurrentRequests ?? 2500;
  const headersTimeout = options.headersTimeoutMs ?? 60_000;
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 32 * 1024 * 1024,
    // Keep-alive connections from SDK clients outlive a request; never cut a long generation short.
    requestTimeout: 0,
    // Answered by the onRequest hook instead, in the envelope (fastify's own 503 body is not).
    return503OnClosing: false,
    // Node's bare 400 for a missing Host becomes an enveloped one in the onRequest hook.
    http: { requireHostHeader: false, headersTimeout, connectionsCheckingInterval: headersTimeout > 0 ? Math.min(30_000, Math.ceil(headersTimeout / 4)) : 30_000 },
    // X-Request-Id: the client's when sane, else a UUID; sent back on every response (onRequest, errors).
    requestIdHeader: false,
    genReqId: (req) => requestIdFrom(req.headers["x-request-id"]),
    frameworkErrors: (err, request, reply) => {
      reply.raw.setHeader("x-request-id", request.id);
      return sendApiError(request, reply, frameworkApiError(err, request.raw.url ?? ""));
    },
    clientErrorHandler: answerClientError,
  });
  installRawErrorPaths(app.server);
  const unused = trackUnusedConnections(app.server);
  const routes = new RouteMethods();
  app.addHook("onRoute", (route) => routes.add(route.url, route.method));
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
    unused.closeNeverUsed();
  });
  app.decorateRequest("apiKey", undefined);
  app.decorateRequest("tab", undefined);
  app.decorateRequest("receivedAt", 0);
  app.decorateRequest("startedAt", 0);
  app.decorateRequest("outcome", undefined);
  app.decorateRequest("failure", undefined);
  const requestLog = options.requestLog ?? null;
  const keysReady = ledger ? loadKeys(ctx, ledger, seeds, options.keyRefreshMs ?? 5000, app) : null;

  installJsonParser(app);
  if (options.cors) installCors(app, options.cors);
  app.addHook("onRequest", async (request, reply) => {
    request.receivedAt = ctx.clock();
    request.startedAt = performance.now();
    // On the raw response, so hijacked streams and keep-alive JSON carry it too.
    reply.raw.setHeader("x-request-id", request.id);
    const route = request.routeOptions.url ?? "unmatched";
    stats.inFlight++;
    let key: ApiKey | undefined;
    reply.raw.once("close", () => {
      stats.inFlight--;
      if (key) key.active--;
      request.tab?.end(reply.raw.writableFinished ? "error" : "cancelled");
      if (!reply.raw.writableFinished) stats.disconnects++;
      stats.request(route, reply.raw.statusCode);
      if (requestLog && !isQuietRoute(request.method, request.url)) requestLog(requestRecord(request, reply, performance.now()));
    });
    if (closing) {
      reply.header("connection", "close");
      throw serverOverloaded("the server is shutting down");
    }
    if (request.raw.httpVersionMajor !== 1) throw invalidRequest("http", `Bad Request: HTTP/${request.raw.httpVersion} is not served; use HTTP/1.1`);
    if (request.raw.httpVersion === "1.1" && request.headers.host === undefined) throw invalidRequest("host", "Bad Request: an HTTP/1.1 request needs a Host header");
    if (keysReady) await keysReady;
    key = authenticate(ctx, request);
    key.active++;
    if (key.active > maxConcurrent) throw rateLimitReached(maxConcurrent);
  });

  app.setErrorHandler((err: FastifyError | Error, request, reply) => sendError(request, reply, classify(err)));
  app.setNotFoundHandler((request, reply) => sendError(request, reply, notFoundError(request.method, request.url, routes.allowed(request.url))));

  chatRoutes(app, ctx);
  completionRoutes(app, ctx);
  generateRoutes(app, ctx);
  modelRoutes(app, ctx);
  anthropicRoutes(app, ctx);
  anthropicModelRoutes(app, ctx);
  responsesRoutes(app, ctx);
  opsRoutes(app, ctx);
  serverInfoRoutes(app, ctx);
  flushCacheRoutes(app, ctx);
  usageRoutes(app, ctx);
  tokenizeRoutes(app, ctx);
  if (ctx.playground) playgroundRoutes(app, ctx.playground);

  const sampler = setInterval(() => stats.sample(ctx.engine.metrics()), 1000);
  sampler.unref();
  stats.sample(ctx.engine.metrics());
  app.addHook("onClose", async () => {
    clearInterval(sampler);
    await ctx.settling.closeAll();
  });
  return app;
}

/**
 * Seeds the configured keys into the ledger, loads its enabled keys into the ring, and re-reads
 * them every `refreshMs` (keys created or disabled by `dsv4 keys` on a shared Postgres). The
 * server does not listen until the first load is done.
 */
function loadKeys(ctx: ServerContext, ledger: Ledger, seeds: readonly ApiKey[], refreshMs: number, app: FastifyInstance): Promise<void> {
  const load = async () => ctx.keys.replace(await ledger.listKeys());
  const ready = (async () => {
    for (const k of seeds) await ledger.seedKey(seedOf(k));
    await load();
  })();
  ready.catch(() => undefined);
  let warned = false;
  const timer = setInterval(() => {
    load().then(
      () => (warned = false),
      (err: Error) => {
        if (!warned) process.stderr.write(`dsv4: ledger: cannot re-read the keys from ${ledger.location}: ${err.message}\n`);
        warned = true;
      },
    );
  }, refreshMs);
  timer.unref();
  app.addHook("onReady", async () => {
    try {
      await ready;
    } catch (err) {
      throw new Error(`cannot load the API keys from the ledger at ${ledger.location}: ${(err as Error).message}`);
    }
  });
  app.addHook("onClose", async () => clearInterval(timer));
  return ready;
}

function checkedCap(cap: number | undefined): number {
  if (cap === undefined) return MAX_OUTPUT_TOKENS;
  if (!Number.isInteger(cap) || cap < 1 || cap > MAX_OUTPUT_TOKENS) {
    throw new Error(`maxOutputTokens must be an integer from 1 to ${MAX_OUTPUT_TOKENS} (the hosted maximum), got ${cap}`);
  }
  return cap;
}

/** Which key a request uses; throws 401. Without keys every request shares one anonymous account. */
function authenticate(ctx: ServerContext, request: FastifyRequest): ApiKey {
  if (!ctx.keys.enabled) return ANONYMOUS;
  const path = request.url.split("?")[0]!;
  if (PUBLIC.has(path) || request.method === "OPTIONS") return ANONYMOUS;
  // The page itself asks for the key; only what it then calls needs one.
  if (ctx.playground && (request.method === "GET" || request.method === "HEAD") && isPlaygroundPath(path)) return ANONYMOUS;
  const key = ctx.keys.find(presentedKey(request.headers));
  if (!key) throw authenticationFails();
  // The budget is checked when a generation reserves its worst case (billing.ts), not here.
  request.apiKey = key;
  return key;
}

function classify(err: FastifyError | Error): ApiError {
  if (err instanceof ApiError) return err;
  const code = (err as FastifyError).code;
  if (code === "FST_ERR_CTP_BODY_TOO_LARGE") return new ApiError(413, `Request body too large: ${err.message}`, "invalid_request_error", "body");
  if (code === "FST_ERR_CTP_INVALID_CONTENT_LENGTH") return invalidRequest("body", "the Content-Length header does not match the body");
  if (code === "FST_ERR_CTP_EMPTY_JSON_BODY") return invalidRequest("body", "Failed to parse the request body as JSON: the body is empty");
  const status = (err as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) return new ApiError(status, err.message, "invalid_request_error", "body");
  return toApiError(err);
}

/** The enveloped error, remembered for the request's log line. */
function sendError(request: FastifyRequest, reply: FastifyReply, err: ApiError): FastifyReply {
  request.failure = err.message;
  return sendApiError(request, reply, err);
}

/**
 * JSON for every content type (curl's `-d` sends form-encoded by default), with
 * axum's wording and the line and column of a syntax error.
 */
function installJsonParser(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  const parse: FastifyBodyParser<string> = (_request, body, done) => {
    const text = body as string;
    if (text.trim() === "") return done(invalidRequest("body", "Failed to parse the request body as JSON: the body is empty"), undefined);
    if (nestingDepth(text) > MAX_JSON_DEPTH) return done(invalidRequest("body", `JSON nested deeper than ${MAX_JSON_DEPTH} levels is not accepted`), undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(invalidRequest("body", `Failed to parse the request body as JSON: ${jsonErrorText(err, text)}`), undefined);
    }
  };
  // Any content type is read as JSON; application/json is named too because fastify caches the
  // parser it finds for a named type, while "*" costs a content-type parse on every request.
  app.addContentTypeParser("application/json", { parseAs: "string" }, parse);
  app.addContentTypeParser("*", { parseAs: "string" }, parse);
}

function jsonErrorText(err: unknown, text: string): string {
  const message = (err instanceof Error ? err.message : String(err)).replace(/ in JSON at position \d+.*$/, "").replace(/, (\.\.\.)?".*" is not valid JSON$/s, "");
  const offset = jsonErrorOffset(text);
  return offset < 0 ? message : `${message} at ${lineColumn(text, offset)}`;
}

function installCors(app: FastifyInstance, cors: true | string[]): void {
  const allowed = (origin: string | undefined) => origin !== undefined && (cors === true || cors.includes(origin));
  app.addHook("onRequest", async (request, reply) => {
    const origin = request.headers.origin;
    if (!allowed(origin)) return;
    // Set on the raw response so streams, which write their own head, carry them too.
    reply.raw.setHeader("access-control-allow-origin", cors === true ? "*" : origin!);
    reply.raw.setHeader("vary", "Origin");
    if (request.method === "OPTIONS") {
      reply.raw.setHeader("access-control-allow-methods", "GET, POST, OPTIONS");
      reply.raw.setHeader("access-control-allow-headers", request.headers["access-control-request-headers"] ?? "authorization, content-type, x-api-key");
      reply.raw.setHeader("access-control-max-age", "600");
      await reply.status(204).send();
    }
  });
}
