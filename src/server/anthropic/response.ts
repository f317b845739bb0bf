/**
 * Engine results and events → Anthropic Messages responses and stream events
 * (message_start, content_block_start/delta/stop, message_delta, message_stop).
 */
import { randomBytes } from "node:crypto";
import type { EngineUsage, FinishReason, OutputDelta, ParsedOutput } from "../../engine/types.js";
import type { ApiError } from "../errors.js";

export interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export type AnthropicContentBlock =
  | { type: "thinking"; thinking: string; signature: string }
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: unknown };

export function messageId(): string {
  return `msg_${randomBytes(12).toString("hex")}`;
}

/** Anthropic counts cache reads apart from input tokens. */
export function anthropicUsage(u: EngineUsage): AnthropicUsage {
  return {
    input_tokens: u.prompt_cache_miss_tokens,
    output_tokens: u.completion_tokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: u.prompt_cache_hit_tokens,
  };
}

export function stopReason(reason: FinishReason, stopString: string | undefined): { stop_reason: string; stop_sequence: string | null } {
  if (stopString !== undefined) return { stop_reason: "stop_sequence", stop_sequence: stopString };
  switch (reason) {
    case "length":
      return { stop_reason: "max_tokens", stop_sequence: null };
    case "tool_calls":
      return { stop_reason: "tool_use", stop_sequence: null };
    case "content_filter":
      return { stop_reason: "refusal", stop_sequence: null };
    default:
      return { stop_reason: "end_turn", stop_sequence: null };
  }
}

/** Tool arguments as an object; arguments the model got wrong are kept as the raw string. */
export function toolInput(args: string): unknown {
  try {
    const v: unknown = JSON.parse(args === "" ? "{}" : args);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? v : { value: v };
  } catch {
    return { _raw_arguments: args };
  }
}

export function contentBlocks(m: ParsedOutput, thinking: boolean): AnthropicContentBlock[] {
  const blocks: AnthropicContentBlock[] = [];
  if (thinking && m.reasoning_content) blocks.push({ type: "thinking", thinking: m.reasoning_content, signature: "" });
  if (m.content !== "" || m.tool_calls.length === 0) blocks.push({ type: "text", text: m.content });
  for (const c of m.tool_calls) blocks.push({ type: "tool_use", id: c.id, name: c.function.name, input: toolInput(c.function.arguments) });
  return blocks;
}

/** The Anthropic error envelope; the field at fault leads the message, since the format has no `param`. */
export function anthropicError(err: ApiError): { type: "error"; error: { type: string; message: string } } {
  const type =
    err.status === 401 ? "authentication_error"
    : err.status === 402 ? "billing_error"
    : err.status === 404 ? "not_found_error"
    : err.status === 413 ? "request_too_large"
    : err.status === 429 ? "rate_limit_error"
    : err.status === 503 ? "overloaded_error"
    : err.status >= 500 ? "api_error"
    : "invalid_request_error";
  const message = err.param && !err.message.startsWith(err.param) ? `${err.param}: ${err.message}` : err.message;
  return { type: "error", error: { type, message } };
}

type Emit = (event: string, payload: unknown) => Promise<void>;
type BlockKind = "thinking" | "text" | "tool_use";

/** Tracks the open content block of a streamed message and emits Anthropic's block events. */
export class AnthropicStreamer {
  private index = -1;
  private open: BlockKind | undefined;

  constructor(private readonly emit: Emit) {}

  async delta(d: OutputDelta): Promise<void> {
    switch (d.type) {
      case "reasoning":
        await this.ensure("thinking", { type: "thinking", thinking: "", signature: "" });
        return this.emit("content_block_delta", { type: "content_block_delta", index: this.index, delta: { type: "thinking_delta", thinking: d.text } });
      case "content":
        await this.ensure("text", { type: "text", text: "" });
        return this.emit("content_block_delta", { type: "content_block_delta", index: this.index, delta: { type: "text_delta", text: d.text } });
      case "tool_call":
        await this.close();
        await this.start("tool_use", { type: "tool_use", id: d.id, name: d.name, input: {} });
        return;
      case "tool_arguments":
        return this.emit("content_block_delta", { type: "content_block_delta", index: this.index, delta: { type: "input_json_delta", partial_json: d.text } });
    }
  }

  async close(): Promise<void> {
    if (this.open === undefined) return;
    if (this.open === "thinking") {
      await this.emit("content_block_delta", { type: "content_block_delta", index: this.index, delta: { type: "signature_delta", signature: "" } });
    }
    await this.emit("content_block_stop", { type: "content_block_stop", index: this.index });
    this.open = undefined;
  }

  private async ensure(kind: BlockKind, block: AnthropicContentBlock): Promise<void> {
    if (this.open === kind) return;
    await this.close();
    await this.start(kind, block);
  }

  private async start(kind: BlockKind, block: AnthropicContentBlock): Promise<void> {
    this.index++;
    this.open = kind;
    await this.emit("content_block_start", { type: "content_block_start", index: this.index, content_block: block });
  }
}
