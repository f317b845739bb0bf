/**
 * Engine errors are values with codes, so the server can map them to HTTP
 * statuses without matching message text.
 */
export type EngineErrorCode =
  /** Queue full: retry later (HTTP 429; 503 when the engine is shutting down). */
  | "overloaded"
  /** Prompt + max_tokens exceed the context (HTTP 400, DeepSeek wording). */
  | "context_length_exceeded"
  /** The sequence state cannot fit in the engine's state budget even alone (HTTP 400). */
  | "insufficient_memory"
  /** Bad request field (HTTP 400/422); `param` names it. */
  | "invalid_request"
  /** Cancelled by the caller's AbortSignal or cancel(). */
  | "aborted"
  /** The caller stopped reading a generation's events for EngineOptions.readerTimeoutMs (HTTP 408). */
  | "reader_timeout"
  /** The engine was disposed (HTTP 503). */
  | "disposed"
  /** Stopped by a server shutting down (its drain timed out, or a second signal): HTTP 503. */
  | "shutdown"
  /** The model runner is down (its thread exited or failed): nothing can run until a restart (HTTP 503). */
  | "unavailable"
  /** A bug or backend failure (HTTP 500). */
  | "internal";

const STATUS: Record<EngineErrorCode, number> = {
  overloaded: 429,
  context_length_exceeded: 400,
  insufficient_memory: 400,
  invalid_request: 400,
  aborted: 499,
  reader_timeout: 408,
  disposed: 503,
  shutdown: 503,
  unavailable: 503,
  internal: 500,
};

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  /** Suggested HTTP status. */
  readonly status: number;
  /** Offending request field, when there is one. */
  readonly param: string | null;

  constructor(code: EngineErrorCode, message: string, options: { param?: string | null; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "EngineError";
    this.code = code;
    this.status = STATUS[code];
    this.param = options.param ?? null;
  }
}

export function isEngineError(e: unknown): e is EngineError {
  return e instanceof EngineError;
}
