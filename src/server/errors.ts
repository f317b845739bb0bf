/**
 * Errors as DeepSeek's hosted API reports them (spec §A.9): an HTTP status and
 * an OpenAI-shaped body `{"error":{message,type,param,code}}`. Every error the
 * server raises names the request field at fault in `param` (and the message),
 * so a client can tell what to fix without reading server logs.
 */
import { isEngineError, type EngineError } from "../engine/errors.js";
import { EncodingError } from "../text/messages.js";

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = "invalid_request_error",
    /** Extra response headers (Retry-After on 429/503). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400: a field holds a value the API does not accept. */
export function invalidRequest(param: string | null, message: string): ApiError {
  return new ApiError(400, message, "invalid_request_error", param);
}

/**
 * 422: the body does not deserialize (wrong JSON type), in the serde wording
 * the hosted service uses, with the field path in front.
 */
export function invalidParameters(param: string, detail: string): ApiError {
  return new ApiError(
    422,
    `Failed to deserialize the JSON body into the target type: ${param}: ${detail}`,
    "invalid_request_error",
    param,
  );
}

/** The hosted message is exactly "Model Not Exist"; `param` names the field. */
export function modelNotExist(): ApiError {
  return new ApiError(400, "Model Not Exist", "invalid_request_error", "model");
}

export function authenticationFails(): ApiError {
  return new ApiError(401, "Authentication Fails (no such user)", "authentication_error", "authorization");
}

export function insufficientBalance(): ApiError {
  return new ApiError(402, "Insufficient Balance", "unknown_error", "authorization");
}

export function rateLimitReached(limit: number): ApiError {
  return new ApiError(
    429,
    `Rate Limit Reached: at most ${limit} concurrent requests per API key`,
    "rate_limit_error",
    null,
    "rate_limit_reached",
    { "retry-after": "1" },
  );
}

export function serverOverloaded(detail?: string): ApiError {
  return new ApiError(503, detail ? `Server Overloaded: ${detail}` : "Server Overloaded", "server_error", null, "server_overloaded", {
    "retry-after": "1",
  });
}

export function serverError(message = "Server Error"): ApiError {
  return new ApiError(500, message, "server_error", null, "internal_error");
}

/** 503: nothing can be served until the server is restarted (its model runner is down). */
export function engineUnavailable(message: string): ApiError {
  return new ApiError(503, message, "server_error", null, "engine_unavailable");
}

/**
 * Any thrown value → ApiError. Engine and encoder errors keep their field;
 * everything else is a 500 whose text does not leak internals.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof EncodingError) return invalidRequest(err.field, err.message);
  if (isEngineError(err)) return fromEngineError(err);
  return serverError();
}

function fromEngineError(err: EngineError): ApiError {
  switch (err.code) {
    case "overloaded":
      // A full engine queue is capacity, not the client's concurrency quota: DeepSeek's 503.
      return serverOverloaded(err.message);
    case "disposed":
      return serverOverloaded("the model is shutting down");
    case "shutdown":
      return new ApiError(503, err.message, "server_error", null, "server_shutting_down", { "retry-after": "1" });
    case "unavailable":
      return engineUnavailable(err.message);
    case "context_length_exceeded":
      return invalidRequest(err.param ?? "messages", err.message);
    case "insufficient_memory":
    case "invalid_request":
      return invalidRequest(err.param, err.message);
    case "aborted":
      return new ApiError(499, err.message, "invalid_request_error", null, "client_closed_request");
    case "reader_timeout":
      return new ApiError(408, err.message, "invalid_request_error", null, "reader_timeout");
    default:
      return serverError();
  }
}
