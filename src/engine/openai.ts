/**
 * `engine.chat.completions.create(body)`: the OpenAI/DeepSeek chat shape on
 * top of generate(), so code written against the hosted API runs in-process.
 * Streaming follows the observed V4 wire rules (spec §A.6): a role chunk
 * first, reasoning then content deltas, tool-call fragments, and a final
 * chunk with finish_reason and usage.
 */
import { EngineError } from "./errors.js";
import type {
  ChatCompletion, ChatCompletionChunk, ChatCompletionChunkDelta, ChatCompletionCreateParams, ChatCompletions, EngineApi, GenerateRequest,
} from "./types.js";

function toRequest(body: ChatCompletionCreateParams): GenerateRequest {
  if (body.n !== undefined && body.n !== null && body.n !== 1) {
    throw new EngineError("invalid_request", "Invalid n value (currently only n = 1 is supported)", { param: "n" });
  }
  return {
    messages: body.messages,
    tools: body.tools,
    tool_choice: body.tool_choice,
    response_format: body.response_format,
    // As in OpenAI's API (and the server's chat route), effort "none" means no reasoning.
    thinking: body.reasoning_effort === "none" ? { type: "disabled" } : body.thinking,
    reasoning_effort: body.reasoning_effort === "none" ? undefined : body.reasoning_effort,
    reasoning_budget: body.reasoning_budget,
    speculative: body.speculative,
    user_id: body.user_id,
    tenant: body.tenant,
    temperature: body.temperature,
    top_p: body.top_p,
    top_k: body.top_k,
    min_p: body.min_p,
    seed: body.seed,
    max_tokens: body.max_tokens ?? body.max_completion_tokens,
    stop: body.stop,
    logprobs: body.logprobs,
    top_logprobs: body.top_logprobs,
    signal: body.signal,
  };
}

export function createChatCompletions(engine: EngineApi): ChatCompletions {
  async function create(body: ChatCompletionCreateParams): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const gen = engine.generate(toRequest(body));
    const created = Math.floor(Date.now() / 1000);
    const head = { id: gen.id, created, model: engine.model.name, system_fingerprint: engine.model.systemFingerprint };
    if (!body.stream) {
      const r = await gen.result();
      const m = r.message;
      return {
        ...head,
        object: "chat.completion",
        choices: [{
          index: 0,
          message: {
            role: "assistant",
            content: m.content,
            ...(m.reasoning_content !== null ? { reasoning_content: m.reasoning_content } : {}),
            ...(m.tool_calls.length > 0 ? { tool_calls: m.tool_calls } : {}),
          },
          logprobs: r.logprobs,
          finish_reason: r.finish_reason,
        }],
        usage: r.usage,
      };
    }
    const thinking = (body.thinking ?? { type: "enabled" }) !== false && (typeof body.thinking !== "object" || body.thinking === null || body.thinking.type !== "disabled");
    const includeUsage = body.stream_options?.include_usage === true;
    async function* chunks(): AsyncIterable<ChatCompletionChunk> {
      const chunk = (delta: ChatCompletionChunkDelta, extra: Partial<ChatCompletionChunk["choices"][0]> = {}): ChatCompletionChunk => ({
        ...head, object: "chat.completion.chunk",
        choices: [{ index: 0, delta, logprobs: null, finish_reason: null, ...extra }],
        usage: null,
      });
      yield chunk(thinking ? { role: "assistant", content: null, reasoning_content: "" } : { role: "assistant", content: "" });
      for await (const ev of gen) {
        switch (ev.type) {
          case "reasoning":
            yield chunk({ content: null, reasoning_content: ev.text });
            break;
          case "content":
            yield chunk({ content: ev.text, reasoning_content: null });
            break;
          case "tool_call":
            yield chunk({ tool_calls: [{ index: ev.index, id: ev.id, type: "function", function: { name: ev.name, arguments: "" } }] });
            break;
          case "tool_arguments":
            yield chunk({ tool_calls: [{ index: ev.index, function: { arguments: ev.text } }] });
            break;
          case "finish": {
            const last = chunk({ content: "", reasoning_content: null }, { finish_reason: ev.finish_reason, logprobs: ev.logprobs });
            last.usage = ev.usage;
            yield last;
            if (includeUsage) yield { ...head, object: "chat.completion.chunk", choices: [], usage: ev.usage };
            break;
          }
          default:
            break;
        }
      }
    }
    return chunks();
  }
  return { create } as ChatCompletions;
}
