/**
 * The gateway's calls to its replicas over node:http with keep-alive agents, instead of fetch:
 * on the per-request path fetch (undici's WHATWG streams, headers and abort plumbing) cost more
 * CPU than the rest of the gateway's own work for a short request (bench gateway's overhead).
 * The answer's body is read without destroying the response when the reader stops early (a
 * sequence finished on its last id before the upstream's closing chunks): release() then lets
 * the rest arrive and the socket go back to the pool, so the next request does not pay a connect.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Cancel } from "./cancel.js";

const agents = { http: new HttpAgent({ keepAlive: true, maxSockets: 1024 }), https: new HttpsAgent({ keepAlive: true, maxSockets: 1024 }) };

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

/** POSTs a JSON body; resolves at the response head. Aborting `cancel` destroys the socket (and fails a read in progress). */
export function postJson(url: string, body: string, headers: Record<string, string>, cancel: Cancel): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    if (cancel.aborted) return reject(new Error("aborted"));
    const u = new URL(url);
    const tls = u.protocol === "https:";
    const req = (tls ? httpsRequest : httpRequest)(
      u,
      { method: "POST", agent: tls ? agents.https : agents.http, headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res: IncomingMessage) => {
        // A finished answer's socket goes back to the pool: a later abort must not destroy it.
        res.once("end", () => unlisten());
        const status = res.statusCode ?? 0;
        resolve({
          status,
          ok: status >= 200 && status < 300,
          body: { [Symbol.asyncIterator]: () => res.iterator({ destroyOnReturn: false }) },
          release: (graceMs) => {
            if (res.readableEnded || res.destroyed) return;
            const cut = setTimeout(() => res.destroy(), graceMs);
            cut.unref();
            res.once("end", () => clearTimeout(cut));
            res.once("close", () => clearTimeout(cut));
            res.resume();
          },
          text: async () => {
            let out = "";
            res.setEncoding("utf8");
            for await (const chunk of res) out += chunk as string;
            return out;
          },
        });
      },
    );
    const unlisten = cancel.onAbort(() => req.destroy(new Error("aborted")));
    req.once("close", () => unlisten());
    // Every error is listened to (one after the head, e.g. an abort, must not be unhandled).
    req.on("error", (err) => reject(err));
    req.end(body);
  });
}
