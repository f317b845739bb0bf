/**
 * Messages → prompt text, byte for byte as DeepSeek-V4 was trained (spec §C).
 * The pipeline follows the reference encoder: validate, merge tool results
 * into user turns, sort them by call order, drop old reasoning, render each
 * turn, and append the generation cue after user turns.
 */
import { pyJsonDumps } from "./pyjson.js";
import type { Release } from "./release.js";
import { renderToolCalls } from "./dsml.js";
import {
  EncodingError,
  flattenContent,
  normalizeMessage,
  toolFunctions,
  type ChatMessage,
  type NormalizedMessage,
  type ToolDefinition,
  type Turn,
  type UserBlock,
} from "./messages.js";
import { EFFORT_ABSOLUTE_MAXIMUM, EFFORT_BEYOND_MAXIMUM, RESPONSE_FORMAT_HEADER, toolsBlock } from "./prompt-texts.js";
import {
  ASSISTANT,
  BOS,
  EOS,
  FIM_BEGIN,
  FIM_END,
  FIM_HOLE,
  LATEST_REMINDER,
  TASK_TOKENS,
  THINK_END,
  THINK_START,
  USER,
} from "./special-tokens.js";

export { EncodingError } from "./messages.js";
export type { ChatMessage, ContentPart, ToolCallInput, ToolDefinition, Role } from "./messages.js";

export type ThinkingMode = "chat" | "thinking";

/** Which encoder's effort texts to use: the April open weights, or the 0731 re-release. */
export type EffortPrompts = Release;

const EFFORT_TEXTS: Record<EffortPrompts, Record<string, string>> = {
  april: { high: "", max: EFFORT_ABSOLUTE_MAXIMUM },
  "0731": { low: "", high: EFFORT_ABSOLUTE_MAXIMUM, max: EFFORT_BEYOND_MAXIMUM },
};

/** Encoder options, named as in the reference encoder (plus request-level `tools`). */
export interface EncodeOptions {
  /** Default "thinking", the API default. */
  thinking_mode?: ThinkingMode;
  /** April: null | "high" | "max"; 0731: null | "low" | "high" | "max". */
  reasoning_effort?: string | null;
  /** Drop reasoning of turns before the last user turn (default true; off whenever any message has tools). */
  drop_thinking?: boolean;
  /** Write BOS at the start (default true; never with a context). */
  add_default_bos_token?: boolean;
  /** Earlier messages, treated as already rendered: they shape this rendering but are not output. */
  context?: ChatMessage[] | null;
  /** Request-level tools, attached to the first message (§C.2 step 1). */
  tools?: ToolDefinition[] | null;
  /** Effort texts of the April encoder (default) or the 0731 one. */
  effort_prompts?: EffortPrompts;
  /**
   * End with the cue that opens the assistant's answer (default true). False stops after the
   * last message, as HF/vLLM's add_generation_prompt=false: for counting or inspecting a
   * conversation rather than generating from it.
   */
  add_generation_prompt?: boolean;
}

const OPTION_NAMES: ReadonlySet<string> = new Set([
  "thinking_mode",
  "reasoning_effort",
  "drop_thinking",
  "add_default_bos_token",
  "context",
  "tools",
  "effort_prompts",
  "add_generation_prompt",
]);

interface ResolvedOptions {
  thinking: boolean;
  dropThinking: boolean;
  bos: boolean;
  effortText: string;
  generationPrompt: boolean;
}

function resolveOptions(options: EncodeOptions): ResolvedOptions {
  if (typeof options !== "object" || options === null || Array.isArray(options)) throw new EncodingError("options", "must be an object");
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.has(key)) throw new EncodingError(`options.${key}`, `unknown option; valid options are ${[...OPTION_NAMES].join(", ")}`);
  }
  const mode = options.thinking_mode ?? "thinking";
  if (mode !== "chat" && mode !== "thinking") {
    throw new EncodingError("options.thinking_mode", `invalid value ${JSON.stringify(mode)}; expected "chat" or "thinking"`);
  }
  const version = options.effort_prompts ?? "april";
  if (version !== "april" && version !== "0731") {
    throw new EncodingError("options.effort_prompts", `invalid value ${JSON.stringify(version)}; expected "april" or "0731"`);
  }
  const effort = options.reasoning_effort ?? null;
  const texts = EFFORT_TEXTS[version];
  if (effort !== null && (typeof effort !== "string" || !Object.prototype.hasOwnProperty.call(texts, effort))) {
    const valid = ["null", ...Object.keys(texts).map((k) => JSON.stringify(k))].join(", ");
    throw new EncodingError("options.reasoning_effort", `invalid value ${JSON.stringify(effort)} for the ${version} encoder; expected one of ${valid}`);
  }
  for (const key of ["drop_thinking", "add_default_bos_token", "add_generation_prompt"] as const) {
    const v = options[key];
    if (v !== undefined && v !== null && typeof v !== "boolean") throw new EncodingError(`options.${key}`, `must be a boolean, not ${typeof v}`);
  }
  // With no effort the 0731 encoder behaves as `low`, the April one as `high`: no text either way.
  const effortText = effort === null ? "" : texts[effort]!;
  return {
    thinking: mode === "thinking",
    dropThinking: options.drop_thinking ?? true,
    bos: options.add_default_bos_token ?? true,
    effortText,
    generationPrompt: options.add_generation_prompt ?? true,
  };
}

function normalizeList(list: unknown, path: string): NormalizedMessage[] {
  if (!Array.isArray(list)) throw new EncodingError(path, "must be an array of messages");
  return list.map((m, i) => {
    const isPrefix = (m as ChatMessage | null)?.prefix === true;
    if (isPrefix && i !== list.length - 1) throw new EncodingError(`${path}[${i}].prefix`, "only the last message can be a prefix");
    return normalizeMessage(m, `${path}[${i}]`);
  });
}

/** §C.2 step 1: request-level tools go on the first message, or on a new empty system message. */
function attachTools(list: NormalizedMessage[], tools: Record<string, unknown>[]): NormalizedMessage[] {
  const first = list[0];
  if (first && (first.role === "system" || first.role === "developer")) {
    return [{ ...first, tools }, ...list.slice(1)];
  }
  return [{ role: "system", content: "", tools, openEnded: false }, ...list];
}

/** §C.2 step 2: tool results become blocks of user turns; adjacent user messages merge. */
function mergeToolResults(list: NormalizedMessage[]): Turn[] {
  const turns: Turn[] = [];
  for (const m of list) {
    const last = turns[turns.length - 1];
    const lastIsUserTurn = last !== undefined && last.role === "user" && last.blocks !== undefined;
    if (m.role === "tool") {
      if (lastIsUserTurn) last.blocks!.push(m.block);
      else turns.push({ role: "user", content: "", blocks: [m.block], openEnded: false });
    } else if (m.role === "user") {
      const block: UserBlock = { type: "text", text: m.content };
      if (lastIsUserTurn && last.task === undefined) last.blocks!.push(block);
      else turns.push({ ...m, blocks: [block] });
    } else {
      turns.push(m);
    }
  }
  return turns;
}

/** §C.2 step 3: results follow the order of the latest assistant turn's call ids (unknown ids first). */
function sortToolResults(turns: Turn[]): void {
  let order = new Map<string, number>();
  for (const t of turns) {
    if (t.role === "assistant" && t.toolCalls) {
      order = new Map();
      t.toolCalls.forEach((c, i) => {
        const id = c.id || c.function.id || "";
        if (id) order.set(id, i);
      });
    } else if (t.role === "user" && t.blocks) {
      const results = t.blocks.filter((b) => b.type === "tool_result");
      if (results.length < 2 || order.size === 0) continue;
      const sorted = [...results].sort((a, b) => (order.get(a.callId) ?? 0) - (order.get(b.callId) ?? 0));
      let k = 0;
      t.blocks = t.blocks.map((b) => (b.type === "tool_result" ? sorted[k++]! : b));
    }
  }
}

function lastUserIndex(turns: Turn[]): number {
  for (let i = turns.length - 1; i >= 0; i--) {
    if (turns[i]!.role === "user" || turns[i]!.role === "developer") return i;
  }
  return -1;
}

/** §C.2 step 5: before the last user turn, assistants lose reasoning and developer turns go. */
function dropThinking(turns: Turn[]): Turn[] {
  const lastUser = lastUserIndex(turns);
  const out: Turn[] = [];
  turns.forEach((t, i) => {
    if (i >= lastUser || t.role === "user" || t.role === "system" || t.role === "latest_reminder") out.push(t);
    else if (t.role === "assistant") out.push({ ...t, reasoning: undefined });
  });
  return out;
}

function renderBlock(block: UserBlock): string {
  if (block.type === "text") return block.text;
  const content = typeof block.content === "string" ? block.content : flattenContent(block.content, "\n\n");
  return `<tool_result>${content}</tool_result>`;
}

function appendix(turn: Turn): string {
  let out = "";
  if (turn.tools) out += "\n\n" + toolsBlock(turn.tools.map(pyJsonDumps));
  if (turn.responseFormat !== undefined) out += "\n\n" + RESPONSE_FORMAT_HEADER + pyJsonDumps(turn.responseFormat);
  return out;
}

interface RenderContext {
  turns: Turn[];
  lastUser: number;
  thinking: boolean;
  dropThinking: boolean;
  effortText: string;
  generationPrompt: boolean;
}

function renderTurn(index: number, ctx: RenderContext): string {
  const turn = ctx.turns[index]!;
  let out = index === 0 && ctx.thinking ? ctx.effortText : "";
  switch (turn.role) {
    case "system":
      out += turn.content + appendix(turn);
      break;
    case "developer":
      out += USER + turn.content + appendix(turn);
      break;
    case "user":
      out += USER + (turn.blocks ? turn.blocks.map(renderBlock).join("\n\n") : turn.content);
      break;
    case "latest_reminder":
      out += LATEST_REMINDER + turn.content;
      break;
    case "assistant": {
      // The opening <think> belongs to the cue after the user turn, not to the assistant text.
      const afterTask = index > 0 && ctx.turns[index - 1]!.task !== undefined;
      const keepsReasoning = !ctx.dropThinking || index > ctx.lastUser;
      if (ctx.thinking && !afterTask && keepsReasoning) out += (turn.reasoning ?? "") + THINK_END;
      out += turn.content;
      if (turn.toolCalls) out += renderToolCalls(turn.toolCalls, `messages[${index}].tool_calls`);
      if (!turn.openEnded) out += EOS;
      break;
    }
  }
  return out + cue(index, ctx);
}

/** §C.4: the generation cue, only before an assistant or reminder turn, or at the very end. */
function cue(index: number, ctx: RenderContext): string {
  const next = ctx.turns[index + 1];
  if (next === undefined && !ctx.generationPrompt) return "";
  if (next !== undefined && next.role !== "assistant" && next.role !== "latest_reminder") return "";
  const turn = ctx.turns[index]!;
  if (turn.task !== undefined) {
    if (turn.task !== "action") return TASK_TOKENS[turn.task];
    return ASSISTANT + (ctx.thinking ? THINK_START : THINK_END) + TASK_TOKENS.action;
  }
  if (turn.role !== "user" && turn.role !== "developer") return "";
  const opensThinking = ctx.thinking && (!ctx.dropThinking || index >= ctx.lastUser);
  return ASSISTANT + (opensThinking ? THINK_START : THINK_END);
}

function prepare(list: NormalizedMessage[]): Turn[] {
  const turns = mergeToolResults(list);
  sortToolResults(turns);
  return turns;
}

/**
 * Renders a conversation as V4 prompt text (spec §C). Tokenize the result
 * without adding special tokens: BOS is already in the text.
 * Throws EncodingError (with `field`) on an invalid message or option.
 */
export function encodeMessages(messages: ChatMessage[], options: EncodeOptions = {}): string {
  const opts = resolveOptions(options);
  let context = options.context === undefined || options.context === null ? [] : normalizeList(options.context, "options.context");
  let current = normalizeList(messages, "messages");
  const tools = toolFunctions(options.tools, "options.tools");
  if (tools) {
    if (context.length > 0) context = attachTools(context, tools);
    else current = attachTools(current, tools);
  }

  const contextTurns = prepare(context);
  // Sorting runs over the whole list, so results answering the context's calls sort right.
  const all = [...contextTurns, ...mergeToolResults(current)];
  sortToolResults(all);

  const anyTools = all.some((t) => t.tools !== undefined);
  const drop = opts.dropThinking && !anyTools;
  let turns = all;
  let first = contextTurns.length;
  if (opts.thinking && drop) {
    turns = dropThinking(all);
    // As the reference does: the context's own drop decides how many turns count as already rendered.
    first = dropThinking(contextTurns).length;
  }
  const ctx: RenderContext = {
    turns,
    lastUser: lastUserIndex(turns),
    thinking: opts.thinking,
    dropThinking: drop,
    effortText: opts.effortText,
    generationPrompt: opts.generationPrompt,
  };
  let prompt = opts.bos && context.length === 0 ? BOS : "";
  for (let i = first; i < turns.length; i++) prompt += renderTurn(i, ctx);
  return prompt;
}

export interface FimRequest {
  prompt: string;
  suffix?: string | null;
}

/**
 * FIM prompt of the V2/V3 family (spec §C.9; unverified for V4):
 * `<BOS><｜fim▁begin｜>prompt<｜fim▁hole｜>suffix<｜fim▁end｜>`.
 */
export function encodeFim(request: FimRequest, options: { add_default_bos_token?: boolean } = {}): string {
  if (typeof request.prompt !== "string") throw new EncodingError("prompt", "must be a string");
  const suffix = request.suffix ?? "";
  if (typeof suffix !== "string") throw new EncodingError("suffix", "must be a string or null");
  const bos = options.add_default_bos_token ?? true ? BOS : "";
  return `${bos}${FIM_BEGIN}${request.prompt}${FIM_HOLE}${suffix}${FIM_END}`;
}
