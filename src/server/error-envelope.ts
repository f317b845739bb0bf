/**
 * One error path for every non-2xx answer, whatever raised it: the route handlers,
 * the framework (bad URL encoding, over-long path parameters, body parsing, 404/405),
 * Node's HTTP layer (an unsupported `Expect`, framing errors reported as `clientError`
 * before any request exists). Each goes out in the envelope of the route family the
 * request was for: DeepSeek/OpenAI `{"error":{message,type,param,code}}` or, under
 * /anthropic/, `{"type":"error","error":{type,message}}`, with a message naming what
 * was wrong.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { anthropicError } from "./anthropic/response.js";
import { ApiError, invalidRequest } from "./errors.js";
import { keepNeverUsed, neverUsed } from "./unused-connections.js";

export type RouteFamily = "deepseek" | "anthropic";

/** Which envelope a request path answers in; anything unparseable is DeepSeek's. */
export function routeFamily(url: string | undefined): RouteFamily {
  return url !== undefined && url.startsWith("/anthropic/") ? "anthropic" : "deepseek";
}

/** The error body for a request path. */
export function errorBody(url: string | undefined, err: ApiError): object {
  return routeFamily(url) === "anthropic" ? anthropicError(err) : err.body();
}

/** The longest request path shown back in a message: enough to recognise it, never a 100 KB echo. */
const SHOWN_PATH = 120;
const shown = (path: string) => (path.length > SHOWN_PATH ? `${path.slice(0, SHOWN_PATH)}… (${path.length} characters)` : path);

/** Fastify's `frameworkErrors`: raised while routing, before any hook or handler runs. */
export function frameworkApiError(err: FastifyError, url: string): ApiError {
  const path = url.split("?")[0] ?? url;
  switch (err.code) {
    case "FST_ERR_BAD_URL":
      return invalidRequest("url", `Bad Request: the path ${JSON.stringify(shown(path))} is not a valid URL (malformed percent-encoding)`);
    case "FST_ERR_MAX_PARAM_LENGTH":
      return new ApiError(414, `URI Too Long: a path segment of ${JSON.stringify(shown(path))} is longer than the ${MAX_PARAM_LENGTH} characters accepted`, "invalid_request_error", "url");
    default:
      return new ApiError(400, `Bad Request: ${err.message}`, "invalid_request_error", "url");
  }
}

/** Fastify's default; named here so the 414 message can say it. */
export const MAX_PARAM_LENGTH = 100;

/** A 404, or a 405 naming the methods the path does take. */
export function notFoundError(method: string, url: string, allowed: readonly string[]): ApiError {
  const path = shown(url.split("?")[0] ?? url);
  if (allowed.length > 0) {
    return new ApiError(405, `Method Not Allowed: ${method} ${path} (this path takes ${allowed.join(", ")})`, "invalid_request_error", "method", "method_not_allowed", { allow: allowed.join(", ") });
  }
  return new ApiError(404, `Not Found: ${method} ${path}`, "invalid_request_error", "url", "not_found");
}

/**
 * The routes' methods by path pattern, for telling 405 from 404. Patterns are fastify's
 * (`/v1/models/:model`); a parameter matches one non-empty path segment.
 */
export class RouteMethods {
  private readonly routes: Array<{ pattern: RegExp; methods: string[] }> = [];

  add(url: string, method: string | string[]): void {
    const source = url.split("/").map((seg) => (seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("/");
    this.routes.push({ pattern: new RegExp(`^${source}$`), methods: Array.isArray(method) ? method : [method] });
  }

  /** The methods some route takes at this concrete path (empty: no route has the path). */
  allowed(url: string): string[] {
    const path = url.split("?")[0] ?? url;
    const out = new Set<string>();
    for (const r of this.routes) if (r.pattern.test(path)) for (const m of r.methods) out.add(m);
    return [...out].sort();
  }
}

/** An ApiError as a whole HTTP/1.1 response, for the paths that have only a socket or a raw response. */
function rawResponse(err: ApiError, url: string | undefined): { head: Record<string, string>; body: string } {
  const body = JSON.stringify(errorBody(url, err));
  return {
    head: { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(body)), connection: "close", ...err.headers },
    body,
  };
}

/** Node's `checkExpectation`: any Expect but 100-continue. Node's own answer is a bare 417. */
export function answerExpectation(req: IncomingMessage, res: ServerResponse): void {
  const value = String(req.headers.expect ?? "");
  const err = new ApiError(417, `Expectation Failed: the Expect header ${JSON.stringify(value.slice(0, SHOWN_PATH))} is not supported (only 100-continue is)`, "invalid_request_error", "expect");
  const { head, body } = rawResponse(err, req.url);
  res.writeHead(err.status, head);
  res.end(body);
}

/** What llhttp's error codes mean, for the client reading the message. */
const FRAMING: Record<string, string> = {
  HPE_INVALID_CHUNK_SIZE: "an invalid chunk size in the chunked body",
  HPE_UNEXPECTED_CONTENT_LENGTH: "both Content-Length and Transfer-Encoding, or two different Content-Length headers",
  HPE_INVALID_CONTENT_LENGTH: "an invalid Content-Length header",
  HPE_INVALID_TRANSFER_ENCODING: "an invalid Transfer-Encoding header",
  HPE_INVALID_HEADER_TOKEN: "an invalid character in a header name or value (NUL, control characters, obs-fold)",
  HPE_INVALID_METHOD: "an unknown method, or a request that is not HTTP/1.x (an HTTP/2 preface, HTTP/0.9)",
  HPE_INVALID_VERSION: "an HTTP version other than HTTP/1.0 or HTTP/1.1",
  HPE_INVALID_CONSTANT: "a malformed request line: not an HTTP/1.x request",
  HPE_INVALID_URL: "an invalid request target",
  HPE_LF_EXPECTED: "a malformed line ending (CR without LF)",
  HPE_CR_EXPECTED: "a malformed line ending (LF without CR)",
  HPE_PAUSED_H2_UPGRADE: "an HTTP/2 connection preface: only HTTP/1.0 and HTTP/1.1 are served",
  HPE_INVALID_EOF_STATE: "a request that ended in the middle",
};

/** Node's headers / request timeouts (server.headersTimeout, server.requestTimeout). */
const isTimeout = (code: string | undefined) => code === "ERR_HTTP_REQUEST_TIMEOUT" || code === "ERR_HTTP_HEADERS_TIMEOUT";

/** The ApiError for a framing error Node reports before any request object exists. */
export function clientApiError(err: NodeJS.ErrnoException & { reason?: string }): ApiError {
  const code = err.code ?? "";
  const detail = err.reason ?? err.message;
  if (code === "HPE_HEADER_OVERFLOW") {
    return new ApiError(431, `Request Header Fields Too Large: the request line and headers exceed the server's limit (${detail})`, "invalid_request_error", "headers");
  }
  if (isTimeout(code)) {
    return new ApiError(408, "Request Timeout: the request line and headers were not all received in time (the server's headers timeout); send them without pausing", "invalid_request_error", null, "request_timeout");
  }
  const what = FRAMING[code] ?? "a malformed HTTP request";
  return new ApiError(400, `Bad Request: the request has ${what} (${code || "error"}: ${detail})`, "invalid_request_error", "http");
}

/** The request target of the packet being parsed, if its request line got that far. */
function targetOf(raw: Buffer | undefined): string | undefined {
  if (!raw) return undefined;
  const m = /^[A-Z]+ (\S+)/.exec(raw.subarray(0, 2048).toString("latin1"));
  return m?.[1];
}

/**
 * Fastify's `clientErrorHandler`: answer in the envelope, then close the socket, as
 * Node's default does (but with a body a client can read). Nothing is written when the
 * socket is gone or a response on it has already begun.
 */
export function answerClientError(error: Error, socket: Socket): void {
  // Node's clientError carries llhttp's code, reason and the packet being parsed.
  const err = error as NodeJS.ErrnoException & { rawPacket?: Buffer; reason?: string };
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  // A connection that never sent a byte has no request to answer (unused-connections.ts).
  if (isTimeout(err.code) && neverUsed(socket)) return keepNeverUsed(socket);
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (socket.writable && !(inFlight && inFlight.headersSent)) {
    const apiErr = clientApiError(err);
    const { head, body } = rawResponse(apiErr, targetOf(err.rawPacket));
    const lines = Object.entries(head).map(([k, v]) => `${k}: ${v}`);
    socket.write(`HTTP/1.1 ${apiErr.status} ${STATUS_TEXT[apiErr.status] ?? "Bad Request"}\r\n${lines.join("\r\n")}\r\n\r\n${body}`);
    socket.end();
    // end() flushes, then closes; destroy shortly after in case the peer never reads.
    setTimeout(() => socket.destroy(), 1000).unref();
    return;
  }
  socket.destroy(err);
}

const STATUS_TEXT: Record<number, string> = { 400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large" };

/** Hooks the raw server's paths that never reach fastify's handlers. */
export function installRawErrorPaths(server: Server): void {
  server.on("checkExpectation", answerExpectation);
}

/** Sends an ApiError in its route family's envelope (or just ends a response already begun). */
export function sendApiError(request: FastifyRequest, reply: FastifyReply, err: ApiError): FastifyReply {
  if (reply.sent || reply.raw.headersSent) {
    if (!reply.raw.writableEnded) reply.raw.end();
    return reply;
  }
  return reply.status(err.status).headers(err.headers).type("application/json; charset=utf-8").send(errorBody(request.url, err));
}
