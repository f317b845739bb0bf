/**
 * Server-sent events on a raw Node response, as DeepSeek streams them
 * (spec §A.6): `data: <json>` events separated by blank lines, `: keep-alive`
 * comments while nothing else is sent, `data: [DONE]` at the end. Writes wait
 * for `drain`, so a slow reader slows its own generation instead of growing
 * a buffer without bound (the engine pauses a sequence whose events are not
 * read, see src/engine/backpressure.ts).
 */
import { once } from "node:events";
import type { ServerResponse } from "node:http";
import { isEngineError } from "../engine/errors.js";
import type { Generation } from "../engine/types.js";
import { limitUnsentBytes } from "./socket-limits.js";

export interface SseOptions {
  /** Extra response headers (request id, CORS). */
  headers?: Record<string, string>;
  /** Send a keep-alive after this long without output; 0 disables. */
  keepAliveMs: number;
  /** The keep-alive text: an SSE comment for OpenAI clients, a ping event for Anthropic ones. */
  keepAlive?: string;
}

export class SseWriter {
  private lastWrite = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private readonly keepAliveText: string;

  constructor(
    private readonly res: ServerResponse,
    private readonly options: SseOptions,
  ) {
    this.keepAliveText = options.keepAlive ?? ": keep-alive\n\n";
  }

  /** True once the client went away (or the stream ended). */
  get closed(): boolean {
    return this.res.writableEnded || this.res.destroyed;
  }

  /**
   * The 200 and the stream's headers. `flush` false leaves them to go out with the first event
   * (or a keep-alive): for a reader that only acts on events (the gateway's token stream), one
   * segment less per answer.
   */
  open(flush = true): void {
    this.res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      // No explicit Connection header: Node keeps the connection alive unless the client sent
      // `Connection: close`, which a forced keep-alive here would override (the socket never closed).
      // Stops reverse proxies (nginx) from buffering the stream.
      "x-accel-buffering": "no",
      ...this.options.headers,
    });
    // A client that stops reading should meet backpressure once its own receive buffer is
    // full, not after the server's send buffer has taken megabytes more (socket-limits.ts).
    limitUnsentBytes(this.res.socket);
    // Headers go out now, so clients see the 200 before the first token.
    if (flush) this.res.flushHeaders();
    if (this.options.keepAliveMs > 0) {
      const every = this.options.keepAliveMs;
      this.timer = setInterval(() => {
        // A client that is not reading gets nothing more buffered for it, not even a keep-alive.
        if (Date.now() - this.lastWrite >= every && !this.closed && !this.res.writableNeedDrain) this.raw(this.keepAliveText);
      }, Math.max(10, Math.floor(every / 2)));
      this.timer.unref();
    }
  }

  /** One `data:` event. */
  data(payload: unknown): Promise<void> {
    return this.write(`data: ${JSON.stringify(payload)}\n\n`);
  }

  /** One named event (Anthropic streams). */
  event(name: string, payload: unknown): Promise<void> {
    return this.write(`event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`);
  }

  /** `data: [DONE]` and the end of the response, after a last event `last` when given, in one write. */
  async done(last?: unknown): Promise<void> {
    this.stopKeepAlive();
    if (this.closed) return;
    this.lastWrite = Date.now();
    this.res.end(`${last === undefined ? "" : `data: ${JSON.stringify(last)}\n\n`}data: [DONE]\n\n`);
  }

  end(): void {
    this.stopKeepAlive();
    if (!this.closed) this.res.end();
  }

  stopKeepAlive(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private raw(text: string): boolean {
    this.lastWrite = Date.now();
    return this.res.write(text);
  }

  private async write(text: string): Promise<void> {
    if (this.closed) return;
    if (!this.raw(text)) {
      await Promise.race([once(this.res, "drain"), once(this.res, "close")]);
    }
  }
}

/**
 * An AbortSignal that fires when the client disconnects before the response
 * is complete: the engine frees the sequence at once.
 */
export function abortOnDisconnect(res: ServerResponse): AbortController {
  const controller = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) controller.abort(new Error("client disconnected"));
  });
  return controller;
}

/**
 * Drops the connection of a client whose generation the engine cancelled for not reading
 * (EngineError "reader_timeout"). The stream is blocked on `drain` at that point, so no
 * error event can reach the client, and keeping the socket would hold its buffers for as
 * long as the client lingers.
 */
export function hangUpOnReaderTimeout(res: ServerResponse, generation: Generation): void {
  generation.result().catch((err: unknown) => {
    if (isEngineError(err) && err.code === "reader_timeout") res.destroy();
  });
}
