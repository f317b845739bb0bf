/**
 * The gateway's calls to its replicas: undici's request API on one keep-alive pool per origin.
 * fetch (undici's WHATWG streams, headers and abort plumbing) cost more CPU than the rest of the
 * gateway's own work for a short request, and node:http's ClientRequest, agent and parser about
 * 0.1-0.2 ms more per request than undici's (bench gateway's overhead, same process A/B).
 * The answer's body is read without destroying it when the reader stops early (a sequence
 * finished on its last id before the upstream's closing chunks): release() then lets the rest
 * arrive and the connection go back to the pool, so the next request does not pay a connect.
 */
import { Pool } from "undici";
import type { Cancel } from "./cancel.js";

export interface UpstreamResponse {
  status: number;
  ok: boolean;
  body: AsyncIterable<Uint8Array>;
  text(): Promise<string>;
  /**
   * Done with the answer: the rest is read and dropped, keeping the connection; an answer still
   * running after `graceMs` (the upstream generates on) is cut, which stops its work.
   */
  release(graceMs: number): void;
}

export class UpstreamClient {
  private readonly pools = new Map<string, Pool>();

  private pool(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (!pool) {
      // No header or body timeouts: a long prefill sends nothing for minutes, and a stalled
      // upstream is the health checks' and the client's to notice, as with node:http before.
      pool = new Pool(origin, { headersTimeout: 0, bodyTimeout: 0 });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  /** POSTs a JSON body; resolves at the response head. Aborting `cancel` cuts the request (and fails a read in progress). */
  async postJson(url: string, body: string, headers: Record<string, string>, cancel: Cancel): Promise<UpstreamResponse> {
    if (cancel.aborted) throw new Error("aborted");
    const u = new URL(url);
    const res = await this.pool(u.origin).request({
      method: "POST",
      path: u.pathname + u.search,
      headers: { ...headers, "content-type": "application/json" },
      body,
      // Cancel has the two methods and the flag undici reads from a signal; no AbortController per request.
      signal: cancel as unknown as AbortSignal,
    });
    const stream = res.body;
    // A reader (the iterator, text()) sees a body's error through its own listeners; with none
    // left, an error would be uncaught and end the process. It happens to an answer drained
    // after release(): cut when its grace ends (undici: "Request aborted"), or when the
    // connection dies under it (a replica killed: "other side closed"; the pools closed at
    // shutdown: "The client is destroyed"). All three reproduced in test/gateway/upstream-http.
    stream.on("error", () => undefined);
    return {
      status: res.statusCode,
      ok: res.statusCode >= 200 && res.statusCode < 300,
      body: { [Symbol.asyncIterator]: () => stream.iterator({ destroyOnReturn: false }) },
      release: (graceMs) => {
        if (stream.readableEnded || stream.destroyed) return;
        const cut = setTimeout(() => stream.destroy(), graceMs);
        cut.unref();
        stream.once("end", () => clearTimeout(cut));
        stream.once("close", () => clearTimeout(cut));
        stream.resume();
      },
      text: () => stream.text(),
    };
  }

  /** Closes every pool's connections (requests still running are cut). */
  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy()));
  }
}
