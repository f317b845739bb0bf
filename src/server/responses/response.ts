/**
 * Engine results → Responses API objects (the `openai` SDK's `Response`): output items
 * (reasoning, message, function_call), status, and usage with cached tokens and dsv4's cost.
 * Pure functions: no I/O.
 */
import { randomBytes } from "node:crypto";
import type { FinishReason, ParsedOutput } from "../../engine/types.js";
import type { DeepSeekUsage } from "../usage.js";
import type { ResponsesEcho } from "./request.js";

export interface ResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
  /** dsv4: the request's price in USD, as in the chat route's usage. */
  cost: number;
}

export type ReasoningItem = { id: string; type: "reasoning"; summary: []; content: Array<{ type: "reasoning_text"; text: string }>; status: ItemStatus };
export type OutputText = { type: "output_text"; text: string; annotations: []; logprobs: [] };
export type MessageItem = { id: string; type: "message"; role: "assistant"; status: ItemStatus; content: OutputText[] };
export type FunctionCallItem = { id: string; type: "function_call"; call_id: string; name: string; arguments: string; status: ItemStatus };
export type OutputItem = ReasoningItem | MessageItem | FunctionCallItem;
type ItemStatus = "in_progress" | "completed" | "incomplete";
export type ResponseStatus = "in_progress" | "completed" | "incomplete" | "failed";

export interface ResponseObject extends ResponsesEcho {
  id: string;
  object: "response";
  created_at: number;
  status: ResponseStatus;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: "max_output_tokens" | "content_filter" } | null;
  model: string;
  output: OutputItem[];
  previous_response_id: null;
  store: false;
  truncation: "disabled";
  usage: ResponsesUsage | null;
  user: null;
}

/** OpenAI-style ids: a type prefix and 48 hex digits. */
export function itemId(prefix: "resp" | "rs" | "msg" | "fc"): string {
  return `${prefix}_${randomBytes(24).toString("hex")}`;
}

export function responsesUsage(u: DeepSeekUsage): ResponsesUsage {
  return {
    input_tokens: u.prompt_tokens,
    input_tokens_details: { cached_tokens: u.prompt_cache_hit_tokens },
    output_tokens: u.completion_tokens,
    output_tokens_details: { reasoning_tokens: u.completion_tokens_details.reasoning_tokens },
    total_tokens: u.total_tokens,
    cost: u.cost,
  };
}

/** How a finish reason ends a response: `length` is incomplete, a resource failure failed. */
export function finalStatus(reason: FinishReason): Pick<ResponseObject, "status" | "incomplete_details" | "error"> {
  switch (reason) {
    case "length":
      return { status: "incomplete", incomplete_details: { reason: "max_output_tokens" }, error: null };
    case "content_filter":
      return { status: "incomplete", incomplete_details: { reason: "content_filter" }, error: null };
    case "insufficient_system_resource":
      return { status: "failed", incomplete_details: null, error: { code: "server_error", message: "the generation stopped: insufficient system resource" } };
    default:
      return { status: "completed", incomplete_details: null, error: null };
  }
}

export function itemStatus(status: ResponseStatus): ItemStatus {
  return status === "completed" ? "completed" : "incomplete";
}

export function outputText(text: string): OutputText {
  return { type: "output_text", text, annotations: [], logprobs: [] };
}

/**
 * The output items of a finished generation, in the order the model wrote them: its reasoning
 * (thinking mode, when there is any), its text (also when empty, unless calls were made) and
 * one item per function call, `call_id` being the DeepSeek call id.
 */
export function outputItems(message: ParsedOutput, thinking: boolean, status: ItemStatus): OutputItem[] {
  const items: OutputItem[] = [];
  const reasoning = message.reasoning_content ?? "";
  if (thinking && reasoning !== "") items.push({ id: itemId("rs"), type: "reasoning", summary: [], content: [{ type: "reasoning_text", text: reasoning }], status });
  if (message.content !== "" || message.tool_calls.length === 0) {
    items.push({ id: itemId("msg"), type: "message", role: "assistant", status, content: [outputText(message.content)] });
  }
  for (const call of message.tool_calls) {
    items.push({ id: itemId("fc"), type: "function_call", call_id: call.id, name: call.function.name, arguments: call.function.arguments, status: "completed" });
  }
  return items;
}

export interface ResponseIdentity {
  id: string;
  created_at: number;
  model: string;
}

/** A Response object; `in_progress` with no output or usage while streaming starts. */
export function responseObject(
  ident: ResponseIdentity,
  echo: ResponsesEcho,
  end: { output: OutputItem[]; usage: ResponsesUsage | null; status: Pick<ResponseObject, "status" | "incomplete_details" | "error"> },
): ResponseObject {
  return {
    id: ident.id,
    object: "response",
    created_at: ident.created_at,
    ...end.status,
    model: ident.model,
    output: end.output,
    previous_response_id: null,
    store: false,
    truncation: "disabled",
    usage: end.usage,
    user: null,
    ...echo,
  };
}

export const IN_PROGRESS: Pick<ResponseObject, "status" | "incomplete_details" | "error"> = { status: "in_progress", incomplete_details: null, error: null };
