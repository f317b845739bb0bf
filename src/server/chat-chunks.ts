/**
 * Engine events → DeepSeek chat payloads: `chat.completion.chunk` deltas in
 * the observed wire order (spec §A.6, §D.4) and the non-streamed
 * `chat.completion` (§A.5). Pure functions of the events: no I/O.
 */
import type { FinishEvent, FinishReason, GenerationResult, OutputDelta, TokenLogprob, TokenPhase } from "../engine/types.js";
import type { RunningUsage, RunningUsageFields } from "./running-usage.js";
import type { DeepSeekUsage } from "./usage.js";

export interface ResponseIdentity {
  id: string;
  created: number;
  model: string;
  system_fingerprint: string;
}

type Logprobs = { content: TokenLogprob[] | null; reasoning_content: TokenLogprob[] | null };

export interface ChunkDelta {
  role?: "assistant";
  content?: string | null;
  reasoning_content?: string | null;
  tool_calls?: Array<{ index: number; id?: string; type?: "function"; function: { name?: string; arguments: string } }>;
}

export interface ChatChunk extends ResponseIdentity {
  object: "chat.completion.chunk";
  choices: Array<{ index: 0; delta: ChunkDelta; logprobs: Logprobs | null; finish_reason: FinishReason | null }>;
  /** Null but on the finish chunk, unless continuous usage stats were asked for (running-usage.ts). */
  usage: DeepSeekUsage | RunningUsageFields | null;
}

/**
 * Builds the chunks of one streamed choice. Token logprobs arrive before the
 * text they produce; they ride on the next chunk (content and tool-call tokens
 * under `content`, reasoning tokens under `reasoning_content`), and whatever
 * is left (EOS, held-back markup) on the finish chunk, so the concatenated
 * lists are the non-streamed ones.
 */
export class ChatChunker {
  private pendingContent: TokenLogprob[] = [];
  private pendingReasoning: TokenLogprob[] = [];

  constructor(
    private readonly identity: ResponseIdentity,
    private readonly thinking: boolean,
    private readonly logprobs: boolean,
    private readonly running: RunningUsage | null = null,
  ) {}

  first(): ChatChunk {
    const delta: ChunkDelta = this.thinking ? { role: "assistant", content: null, reasoning_content: "" } : { role: "assistant", content: "" };
    return this.chunk(delta, null, null, false);
  }

  token(phase: TokenPhase, logprob: TokenLogprob | undefined): void {
    if (!this.logprobs || !logprob) return;
    (phase === "reasoning" ? this.pendingReasoning : this.pendingContent).push(logprob);
  }

  delta(d: OutputDelta): ChatChunk {
    switch (d.type) {
      case "reasoning":
        return this.chunk({ content: null, reasoning_content: d.text }, null, null, true);
      case "content":
        return this.chunk(this.thinking ? { content: d.text, reasoning_content: null } : { content: d.text }, null, null, true);
      case "tool_call":
        return this.chunk({ tool_calls: [{ index: d.index, id: d.id, type: "function", function: { name: d.name, arguments: "" } }] }, null, null, true);
      case "tool_arguments":
        return this.chunk({ tool_calls: [{ index: d.index, function: { arguments: d.text } }] }, null, null, true);
    }
  }

  finish(reason: FinishReason, usage: DeepSeekUsage): ChatChunk {
    const delta: ChunkDelta = this.thinking ? { content: "", reasoning_content: null } : { content: "" };
    return this.chunk(delta, reason, usage, true);
  }

  /** The extra `include_usage` chunk: no choices, only usage (spec §A.6 rule 6). */
  usageOnly(usage: DeepSeekUsage): ChatChunk {
    return { ...this.head(), choices: [], usage };
  }

  private head(): ResponseIdentity & { object: "chat.completion.chunk" } {
    const { id, created, model, system_fingerprint } = this.identity;
    return { id, object: "chat.completion.chunk", created, model, system_fingerprint };
  }

  private chunk(delta: ChunkDelta, finish: FinishReason | null, usage: DeepSeekUsage | null, withLogprobs: boolean): ChatChunk {
    return {
      ...this.head(),
      choices: [{ index: 0, delta, logprobs: withLogprobs ? this.takeLogprobs() : null, finish_reason: finish }],
      usage: usage ?? this.running?.fields ?? null,
    };
  }

  private takeLogprobs(): Logprobs | null {
    if (!this.logprobs) return null;
    const out: Logprobs = {
      content: this.pendingContent.length > 0 ? this.pendingContent : null,
      reasoning_content: this.pendingReasoning.length > 0 ? this.pendingReasoning : null,
    };
    this.pendingContent = [];
    this.pendingReasoning = [];
    return out.content || out.reasoning_content ? out : null;
  }
}

export interface ChatCompletionBody extends ResponseIdentity {
  object: "chat.completion";
  choices: [
    {
      index: 0;
      message: {
        role: "assistant";
        content: string;
        reasoning_content?: string | null;
        tool_calls?: Array<{ index: number; id: string; type: "function"; function: { name: string; arguments: string } }>;
      };
      logprobs: Logprobs | null;
      finish_reason: FinishReason;
    },
  ];
  usage: DeepSeekUsage;
}

export function completionBody(
  identity: ResponseIdentity,
  result: Pick<GenerationResult, "message" | "finish_reason" | "logprobs">,
  usage: DeepSeekUsage,
  thinking: boolean,
  logprobs: boolean,
): ChatCompletionBody {
  const m = result.message;
  const message: ChatCompletionBody["choices"][0]["message"] = { role: "assistant", content: m.content };
  if (thinking) message.reasoning_content = m.reasoning_content ?? "";
  if (m.tool_calls.length > 0) message.tool_calls = m.tool_calls.map((c) => ({ index: c.index, id: c.id, type: "function", function: { ...c.function } }));
  return {
    id: identity.id,
    object: "chat.completion",
    created: identity.created,
    model: identity.model,
    system_fingerprint: identity.system_fingerprint,
    choices: [{ index: 0, message, logprobs: logprobs ? normalizeLogprobs(result.logprobs) : null, finish_reason: result.finish_reason }],
    usage,
  };
}

function normalizeLogprobs(l: FinishEvent["logprobs"]): Logprobs {
  return { content: l?.content ?? null, reasoning_content: l?.reasoning_content ?? null };
}
