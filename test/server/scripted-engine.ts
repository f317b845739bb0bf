/**
 * An engine whose "model" output is a script of text pieces (one piece per
 * token), run through the real output parser. The tiny model has random
 * weights and never emits a tool call, so this is how the server's mapping of
 * reasoning, content and DSML tool calls is tested with real clients.
 */
import { randomUUID } from "node:crypto";
import { EngineError } from "../../src/engine/errors.js";
import type {
  ChatSession,
  EngineApi,
  EngineHealth,
  EngineMetrics,
  EngineUsage,
  FinishEvent,
  GenerateRequest,
  Generation,
  GenerationEvent,
  GenerationResult,
  ModelInfo,
  TokenLogprob,
} from "../../src/engine/types.js";
import { OutputParser } from "../../src/text/parser.js";
import { createToolCallIdGenerator } from "../../src/text/tool-call-id.js";

export interface ScriptStep {
  /** Model output, one token per piece (reasoning, `</think>`, content, DSML…). */
  pieces: string[];
  /** Pause before each token, to test keep-alives and disconnects. */
  delayMs?: number;
  /** Thrown by generate() (a refusal) instead of generating. */
  refuse?: Error;
  /** Thrown from the iterator after this many tokens (a failure mid-generation). */
  failAfter?: { tokens: number; error: Error };
  promptTokens?: number;
  cachedTokens?: number;
}

export type Script = (request: GenerateRequest, call: number) => ScriptStep;

const DSML = "｜DSML｜";

/** DSML for tool calls, as V4 writes them (spec §C.3), split into small pieces. */
export function toolCallPieces(calls: Array<{ name: string; args: Record<string, unknown> }>): string[] {
  const pieces = ["\n\n", `<${DSML}tool_calls>`, "\n"];
  for (const c of calls) {
    pieces.push(`<${DSML}invoke name="${c.name}">`, "\n");
    for (const [k, v] of Object.entries(c.args)) {
      const isString = typeof v === "string";
      pieces.push(`<${DSML}parameter name="${k}" string="${isString}">`, isString ? (v as string) : JSON.stringify(v), `</${DSML}parameter>`, "\n");
    }
    pieces.push(`</${DSML}invoke>`, "\n");
  }
  pieces.push(`</${DSML}tool_calls>`, "<｜end▁of▁sentence｜>");
  return pieces;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ScriptedEngine implements EngineApi {
  readonly requests: GenerateRequest[] = [];
  cancelled = 0;
  active = 0;
  readonly model: ModelInfo = {
    name: "deepseek-v4-flash",
    identity: "scripted",
    systemFingerprint: "fp_5c41a7ed00_dsv4",
    dir: "/scripted",
    backend: "script",
    contextLength: 4096,
    vocabSize: 129280,
    hasMtp: false,
    drafter: null,
    release: "april",
    encoding: "april",
    layers: 1,
    hiddenSize: 1,
  };
  readonly chat = { completions: undefined as never };

  /** `model` overrides ModelInfo fields, e.g. `{ release: "0731" }` for a 0731 checkpoint's prices. */
  constructor(private readonly script: Script, model: Partial<ModelInfo> = {}) {
    Object.assign(this.model, model);
  }

  generate(request: GenerateRequest): Generation {
    const call = this.requests.length;
    this.requests.push(request);
    const step = this.script(request, call);
    if (step.refuse) throw step.refuse;
    const id = request.id ?? randomUUID();
    const run = this.run(request, step);
    // As with the real engine, result() settles with the generation and takes no events from an iterating caller.
    let settle!: { resolve: (r: GenerationResult) => void; reject: (e: unknown) => void };
    const done = new Promise<GenerationResult>((resolve, reject) => (settle = { resolve, reject }));
    done.catch(() => undefined);
    const events = observe(run, id, settle);
    let iterated = false;
    return {
      id,
      [Symbol.asyncIterator]: () => {
        iterated = true;
        return events;
      },
      result: () => {
        if (!iterated) {
          iterated = true;
          void (async () => {
            for await (const _ of events);
          })().catch(() => undefined);
        }
        return done;
      },
      cancel: () => {
        void run.return(undefined);
        settle.reject(new EngineError("aborted", "the request was cancelled"));
      },
      [Symbol.asyncDispose]: async () => {
        void run.return(undefined);
        settle.reject(new EngineError("aborted", "the request was cancelled"));
      },
    };
  }

  private async *run(request: GenerateRequest, step: ScriptStep): AsyncGenerator<GenerationEvent, void, undefined> {
    const thinking = !(typeof request.thinking === "object" && request.thinking?.type === "disabled") && request.fim === undefined;
    const parser = new OutputParser({
      thinking_mode: thinking ? "thinking" : "chat",
      stop: typeof request.stop === "string" ? [request.stop] : (request.stop ?? []),
      toolCallId: createToolCallIdGenerator(7),
    });
    const prompt = step.promptTokens ?? 10;
    const cached = step.cachedTokens ?? 0;
    const max = request.max_tokens ?? Infinity;
    const reasoning: TokenLogprob[] = [];
    const content: TokenLogprob[] = [];
    let tokens = 0;
    let reasoningTokens = 0;
    let cause: "stop" | "length" = "stop";
    this.active++;
    let finished = false;
    try {
      yield { type: "queued", position: 0 };
      yield { type: "prefill", processed: prompt, total: prompt, cached };
      for (const piece of step.pieces) {
        if (tokens >= max) {
          cause = "length";
          break;
        }
        if (step.failAfter && tokens === step.failAfter.tokens) throw step.failAfter.error;
        if (step.delayMs) await sleep(step.delayMs);
        if (request.signal?.aborted) throw new EngineError("aborted", "the request was cancelled");
        const phase = parser.phase === "reasoning" ? "reasoning" : parser.phase === "tool_calls" ? "tool_calls" : "content";
        tokens++;
        if (phase === "reasoning") reasoningTokens++;
        const logprob: TokenLogprob | undefined = request.logprobs
          ? { token: piece, logprob: -0.5, bytes: [...Buffer.from(piece)], top_logprobs: Array.from({ length: request.top_logprobs ?? 0 }, (_, i) => ({ token: `${piece}${i}`, logprob: -1 - i, bytes: null })) }
          : undefined;
        if (logprob) (phase === "reasoning" ? reasoning : content).push(logprob);
        yield { type: "token", id: tokens, text: piece, phase, ...(logprob ? { logprob } : {}) };
        for (const d of parser.pushText(piece)) yield d;
        if (parser.done) break;
      }
      const end = parser.finish(cause);
      for (const d of end.deltas) yield d;
      const usage: EngineUsage = {
        prompt_tokens: prompt,
        completion_tokens: tokens,
        total_tokens: prompt + tokens,
        prompt_cache_hit_tokens: cached,
        prompt_cache_miss_tokens: prompt - cached,
        prompt_tokens_details: { cached_tokens: cached },
        completion_tokens_details: { reasoning_tokens: reasoningTokens },
      };
      yield { type: "usage", usage };
      finished = true;
      yield {
        type: "finish",
        finish_reason: end.result.finish_reason,
        message: end.result,
        usage,
        logprobs: request.logprobs ? { content: content.length ? content : null, reasoning_content: reasoning.length ? reasoning : null } : null,
        stats: {
          queueMs: 0, ttftMs: 0, prefillMs: 0, decodeMs: 0, decodeTokensPerSecond: 0, engineMs: 0,
          speculative: { enabled: false, drafted: 0, accepted: 0, acceptanceRate: 0 }, stateBytes: 0, reasoningBudgetHit: false,
        },
      };
    } finally {
      this.active--;
      if (!finished) this.cancelled++;
    }
  }

  createSession(): ChatSession {
    throw new Error("not scripted");
  }

  promptTokens(request: GenerateRequest): number[] {
    return Array.from({ length: JSON.stringify(request.messages ?? []).length % 97 + 3 }, (_, i) => i);
  }

  health(): EngineHealth {
    return { ok: true, reason: null };
  }

  tokenize(text: string): number[] {
    return Array.from(text, (c) => c.codePointAt(0)!);
  }

  detokenize(tokens: readonly number[]): string {
    return String.fromCodePoint(...tokens);
  }

  tokenPieces(tokens: readonly number[]): string[] {
    return tokens.map((t) => String.fromCodePoint(t));
  }

  tokenizerInfo(): Record<string, unknown> {
    return { tokenizer_class: "ScriptedTokenizer", eos_token: "</s>", bos_token: "<s>" };
  }

  stateBytesFor(): number {
    return 0;
  }

  metrics(): EngineMetrics {
    return {
      requests_total: this.requests.length, requests_rejected_total: 0, requests_cancelled_total: this.cancelled,
      prompt_tokens_total: 0, prompt_cache_hit_tokens_total: 0, prompt_cache_miss_tokens_total: 0, generated_tokens_total: 0,
      reasoning_tokens_total: 0, speculative_drafted_total: 0, speculative_accepted_total: 0, speculative_accepted_per_step: [], steps_total: 0, preemptions_total: 0,
      active_sequences: this.active, reader_blocked_sequences: 0, queued_requests: 0, state_bytes_in_use: 0, prefix_cache_entries: 0, prefix_cache_bytes: 0,
      prefix_cache_disk_entries: 0,
    };
  }

  async dispose(): Promise<void> {}
}

/** Passes the events through and settles the result from them. */
async function* observe(
  events: AsyncIterable<GenerationEvent>,
  id: string,
  settle: { resolve: (r: GenerationResult) => void; reject: (e: unknown) => void },
): AsyncGenerator<GenerationEvent, void, undefined> {
  let finish: FinishEvent | undefined;
  try {
    for await (const e of events) {
      if (e.type === "finish") finish = e;
      yield e;
    }
  } catch (err) {
    settle.reject(err);
    throw err;
  }
  if (!finish) settle.reject(new EngineError("aborted", "no result"));
  else settle.resolve({ id, finish_reason: finish.finish_reason, message: finish.message, usage: finish.usage, logprobs: finish.logprobs, stats: finish.stats, tokens: [] });
}
