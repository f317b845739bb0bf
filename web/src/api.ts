/**
 * The page's only way out: the server's public API (/models, /chat/completions with SSE,
 * /v1/usage), with the key from the session. Errors come back in the server's envelope and are
 * turned into sentences that say what to do.
 */
import type { UsageReport } from "../../src/server/usage-report.js";
export type { UsageReport };
import { SseParser } from "./sse.js";

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
  get unauthorized(): boolean {
    return this.status === 401;
  }
}

function headers(key: string): Record<string, string> {
  const h: Record<string, string> = { "content-type": "application/json" };
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

async function failure(res: Response, what: string, key: string): Promise<ApiFailure> {
  let detail = res.statusText;
  try {
    const body = await res.json();
    detail = body?.error?.message ?? JSON.stringify(body);
  } catch {
    /* not JSON: keep the status text */
  }
  if (res.status === 401) {
    if (!key) return new ApiFailure(401, `This server needs an API key (401 ${detail}). Enter yours in the API key field.`);
    return new ApiFailure(401, `The server refused the API key (401 ${detail}). Enter a valid key in the API key field.`);
  }
  if (res.status === 402) return new ApiFailure(402, `This key has no balance left (402 ${detail}).`);
  return new ApiFailure(res.status, `${what} failed: ${res.status} ${detail}`);
}

export async function listModels(key: string): Promise<string[]> {
  const res = await fetch("models", { headers: headers(key) });
  if (!res.ok) throw await failure(res, "Listing the models", key);
  const body = (await res.json()) as { data?: Array<{ id: string }> };
  return (body.data ?? []).map((m) => m.id);
}

/** The key's spend (GET /v1/usage); null where the server has no usage route (no keys, or not the gateway). */
export async function fetchUsage(key: string): Promise<UsageReport | null> {
  const res = await fetch("v1/usage", { headers: headers(key) });
  if (res.status === 404 || res.status === 405) return null;
  if (!res.ok) throw await failure(res, "Reading the usage", key);
  return (await res.json()) as UsageReport;
}

/** POSTs a streamed chat request and calls onChunk with each parsed chunk until [DONE]. */
export async function streamChat(body: Record<string, unknown>, key: string, signal: AbortSignal, onChunk: (chunk: unknown) => void): Promise<void> {
  const res = await fetch("chat/completions", { method: "POST", headers: headers(key), body: JSON.stringify({ ...body, stream: true }), signal });
  if (!res.ok || !res.body) throw await failure(res, "The chat request", key);
  const parser = new SseParser();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    for (const event of parser.push(value)) {
      if (event.data === "[DONE]") return;
      let chunk: unknown;
      try {
        chunk = JSON.parse(event.data);
      } catch {
        throw new ApiFailure(200, `The stream sent something that is not JSON: ${event.data.slice(0, 200)}`);
      }
      onChunk(chunk);
    }
  }
}
