/**
 * One structured line per request (`dsv4 serve` writes them to stderr or --log FILE): who asked
 * (request id, route, model, API key label: never the key), what it cost (prompt, cached and
 * completion tokens, USD), how it went (time to first token, duration, finish reason, status,
 * client disconnect, error). Routes record a generation's outcome through bill() (context.ts);
 * the line is written when the response closes.
 */
import { randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { GenerationStats } from "../engine/types.js";
import type { DeepSeekUsage } from "./usage.js";

export interface RequestRecord {
  time: string;
  request_id: string;
  method: string;
  route: string;
  status: number;
  model: string | null;
  /** The API key's label (its last 4 characters), null without keys. */
  key: string | null;
  prompt_tokens: number | null;
  cached_tokens: number | null;
  completion_tokens: number | null;
  reasoning_tokens: number | null;
  cost_usd: number | null;
  /** Engine time from the generation's start to its first token. */
  ttft_ms: number | null;
  queue_ms: number | null;
  duration_ms: number;
  finish_reason: string | null;
  /** The client left before the response ended (the generation was cancelled). */
  client_disconnected: boolean;
  error: string | null;
  spec_draft_tokens: number | null;
  spec_accepted_tokens: number | null;
}

/** Where records go (ServerOptions.requestLog). */
export type RequestLogSink = (record: RequestRecord) => void;

/** What a finished generation adds to its request's record (set by bill()). */
export interface RequestOutcome {
  usage: DeepSeekUsage;
  stats?: GenerationStats;
  finishReason?: string;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The generation's usage and finish, once billed. */
    outcome: RequestOutcome | undefined;
    /** The message of the error the request was answered with. */
    failure: string | undefined;
    /** performance.now() when the request arrived. */
    startedAt: number;
  }
}

/** Ids a client may choose: printable, no spaces or quotes, short enough for a log line. */
const SANE_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** The request id: the client's `X-Request-Id` when it is sane, else a fresh UUID. */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && SANE_ID.test(value) ? value : randomUUID();
}

const QUIET_GETS = new Set(["/health", "/health_generate", "/metrics", "/load"]);

/** Liveness probes, load polls and metric scrapes would drown the requests that matter. */
export function isQuietRoute(method: string, url: string): boolean {
  const path = url.split("?")[0]!;
  if (path === "/ping") return method === "GET" || method === "POST";
  return method === "GET" && QUIET_GETS.has(path);
}

export function requestRecord(request: FastifyRequest, reply: FastifyReply, now: number): RequestRecord {
  const o = request.outcome;
  const body = request.body as { model?: unknown } | undefined;
  const model = typeof body?.model === "string" ? body.model : null;
  return {
    time: new Date().toISOString(),
    request_id: request.id,
    method: request.method,
    route: request.routeOptions.url ?? request.url.split("?")[0]!,
    status: reply.raw.statusCode,
    model,
    key: request.apiKey?.label ?? null,
    prompt_tokens: o?.usage.prompt_tokens ?? null,
    cached_tokens: o?.usage.prompt_cache_hit_tokens ?? null,
    completion_tokens: o?.usage.completion_tokens ?? null,
    reasoning_tokens: o?.usage.completion_tokens_details.reasoning_tokens ?? null,
    cost_usd: o?.usage.cost ?? null,
    ttft_ms: o?.stats ? round(o.stats.ttftMs) : null,
    queue_ms: o?.stats ? round(o.stats.queueMs) : null,
    duration_ms: round(now - request.startedAt),
    finish_reason: o?.finishReason ?? null,
    client_disconnected: !reply.raw.writableFinished,
    error: request.failure ?? null,
    spec_draft_tokens: o?.stats?.speculative.drafted ?? null,
    spec_accepted_tokens: o?.stats?.speculative.accepted ?? null,
  };
}

const round = (ms: number) => Math.round(ms * 10) / 10;

/** JSON lines on a stream (stderr by default). */
export function jsonLines(out: NodeJS.WritableStream = process.stderr): RequestLogSink {
  return (record) => {
    out.write(`${JSON.stringify(record)}\n`);
  };
}

/** JSON lines appended to a file; close() flushes it. */
export function jsonLinesFile(path: string): { sink: RequestLogSink; close: () => Promise<void> } {
  const stream = createWriteStream(path, { flags: "a" });
  return { sink: jsonLines(stream), close: () => new Promise((resolve) => stream.end(resolve)) };
}
