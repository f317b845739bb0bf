/**
 * One assistant turn assembled from streamed chat chunks (spec §A.6): reasoning, content and
 * tool calls arrive as deltas; tool-call fragments merge by `index`; the last chunk carries
 * finish_reason and usage. Immutable, so the view re-renders on each new object.
 */
export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** The usage fields the server returns (src/server/usage.ts), cost in USD. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens?: number;
  prompt_cache_hit_tokens?: number;
  prompt_cache_miss_tokens?: number;
  completion_tokens_details?: { reasoning_tokens?: number };
  cost?: number;
}

export interface StreamedTurn {
  content: string;
  reasoning: string;
  toolCalls: ToolCall[];
  finishReason: string | null;
  usage: Usage | null;
  /** An error event inside the stream (the HTTP status was already 200). */
  error: string | null;
  /** Chunks seen; the view shows the turn as streaming while the count grows. */
  chunks: number;
}

export function emptyTurn(): StreamedTurn {
  return { content: "", reasoning: "", toolCalls: [], finishReason: null, usage: null, error: null, chunks: 0 };
}

interface ToolCallDelta {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

/** Whether a chunk carries text or a tool call (what time to first token waits for). */
export function hasOutput(chunk: unknown): boolean {
  const delta = (chunk as { choices?: Array<{ delta?: Record<string, unknown> }> })?.choices?.[0]?.delta;
  if (!delta) return false;
  return Boolean(delta.content) || Boolean(delta.reasoning_content) || (Array.isArray(delta.tool_calls) && delta.tool_calls.length > 0);
}

export function applyChunk(turn: StreamedTurn, chunk: unknown): StreamedTurn {
  const c = chunk as {
    error?: { message?: string };
    usage?: Usage | null;
    choices?: Array<{ delta?: { content?: string | null; reasoning_content?: string | null; tool_calls?: ToolCallDelta[] }; finish_reason?: string | null }>;
  };
  const next: StreamedTurn = { ...turn, chunks: turn.chunks + 1 };
  if (c.error) {
    next.error = c.error.message ?? JSON.stringify(c.error);
    return next;
  }
  if (c.usage) next.usage = c.usage;
  const choice = c.choices?.[0];
  if (!choice) return next;
  const delta = choice.delta ?? {};
  if (delta.reasoning_content) next.reasoning += delta.reasoning_content;
  if (delta.content) next.content += delta.content;
  if (delta.tool_calls?.length) next.toolCalls = mergeToolCalls(turn.toolCalls, delta.tool_calls);
  if (choice.finish_reason) next.finishReason = choice.finish_reason;
  return next;
}

function mergeToolCalls(calls: ToolCall[], deltas: ToolCallDelta[]): ToolCall[] {
  const out = calls.slice();
  for (const d of deltas) {
    const i = d.index ?? out.length;
    const prev = out[i] ?? { id: "", type: "function" as const, function: { name: "", arguments: "" } };
    out[i] = {
      id: d.id ?? prev.id,
      type: "function",
      function: { name: prev.function.name + (d.function?.name ?? ""), arguments: prev.function.arguments + (d.function?.arguments ?? "") },
    };
  }
  return out;
}
