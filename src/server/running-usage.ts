/**
 * vLLM's `stream_options.continuous_usage_stats`: with `include_usage`, every chunk of a
 * stream carries the usage so far, `{prompt_tokens, completion_tokens, total_tokens}`, so a
 * client can follow the token count as it goes (and tell how many tokens a chunk carries: a
 * token whose text is still held back, such as half of a UTF-8 character, sends no chunk of
 * its own). The finish chunk keeps the whole billed usage, as without the option.
 */
import type { GenerateRequest, GenerationEvent, EngineApi } from "../engine/types.js";

export interface RunningUsageFields {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export class RunningUsage {
  private completion = 0;

  private constructor(private readonly prompt: number) {}

  /**
   * The counter for a stream that asked for it, else null. The prompt is counted on the
   * request object the generation is then started with, which the engine resolves only once.
   */
  static forRequest(
    options: { include_usage?: boolean | null; continuous_usage_stats?: boolean | null } | null | undefined,
    engine: EngineApi,
    request: GenerateRequest,
  ): RunningUsage | null {
    if (options?.include_usage !== true || options.continuous_usage_stats !== true) return null;
    return new RunningUsage(engine.promptTokens(request).length);
  }

  /** Counts the generated tokens among the events as they are relayed. */
  observe(e: GenerationEvent): void {
    if (e.type === "token") this.completion++;
  }

  get fields(): RunningUsageFields {
    return { prompt_tokens: this.prompt, completion_tokens: this.completion, total_tokens: this.prompt + this.completion };
  }
}
