/**
 * Request messages as the encoder accepts them (OpenAI shape plus the
 * reference encoder's internal roles and fields), and their validation into
 * one internal form. Validation errors carry the JSON path of the offending
 * field so the HTTP layer can answer 400 with a precise message.
 */
import { TASK_TOKENS, type Task } from "./special-tokens.js";

export type Role = "system" | "user" | "assistant" | "tool" | "developer" | "latest_reminder";
const ROLES: readonly Role[] = ["system", "user", "assistant", "tool", "developer", "latest_reminder"];

export interface ContentPart {
  type: string;
  text?: string;
  [key: string]: unknown;
}

export interface ToolCallInput {
  id?: string;
  type?: string;
  function: { name: string; arguments?: string | Record<string, unknown> | null; id?: string };
}

export interface ToolDefinition {
  type?: string;
  function: { name: string; description?: string; parameters?: unknown; strict?: boolean; [key: string]: unknown };
}

export interface ChatMessage {
  role: Role | string;
  content?: string | ContentPart[] | null;
  reasoning_content?: string | null;
  tool_calls?: ToolCallInput[] | null;
  tool_call_id?: string | null;
  /** Tools rendered after this (system or developer) message's text. */
  tools?: ToolDefinition[] | null;
  response_format?: unknown;
  /** Internal "quick instruction" task (§C.4). */
  task?: Task | null;
  /** API prefix completion: the assistant turn stays open (no EOS); must be the last message. */
  prefix?: boolean | null;
  /** The reference encoder's spelling of `prefix`. */
  wo_eos?: boolean | null;
  name?: string | null;
  [key: string]: unknown;
}

export class EncodingError extends Error {
  /** JSON path of the offending field, e.g. `messages[2].role`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = "EncodingError";
    this.field = field;
  }
}

export interface ToolResultBlock {
  type: "tool_result";
  callId: string;
  content: string | ContentPart[];
}
export interface TextBlock {
  type: "text";
  text: string;
}
export type UserBlock = ToolResultBlock | TextBlock;

/** A message after validation; `tool` messages are gone once merged into user turns. */
export interface Turn {
  role: Exclude<Role, "tool">;
  content: string;
  blocks?: UserBlock[];
  /** Inner `function` objects of the tools attached to this turn. */
  tools?: Record<string, unknown>[];
  responseFormat?: unknown;
  reasoning?: string;
  toolCalls?: ToolCallInput[];
  task?: Task;
  openEnded: boolean;
}

/** A validated message before merging: tool messages carry their result block. */
export type NormalizedMessage = Turn | { role: "tool"; block: ToolResultBlock; task?: Task };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function describe(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : typeof v;
}

function contentParts(v: unknown[], path: string): ContentPart[] {
  return v.map((part, i) => {
    if (!isObject(part) || typeof part.type !== "string") throw new EncodingError(`${path}[${i}]`, "content parts must be objects with a string `type`");
    if (part.type === "text" && typeof part.text !== "string") throw new EncodingError(`${path}[${i}].text`, "must be a string");
    return part as ContentPart;
  });
}

/**
 * Message text. Text parts are concatenated without a separator (spec §C.7
 * recommendation); other parts are named as the reference names unsupported
 * tool-result parts, so nothing silently disappears.
 */
export function flattenContent(parts: ContentPart[], separator: string): string {
  return parts.map((p) => (p.type === "text" ? (p.text ?? "") : `[Unsupported ${p.type}]`)).join(separator);
}

function textContent(v: unknown, path: string): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return flattenContent(contentParts(v, path), "");
  throw new EncodingError(path, `must be a string, an array of content parts or null, not ${describe(v)}`);
}

function optionalBool(v: unknown, path: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw new EncodingError(path, `must be a boolean, not ${describe(v)}`);
  return v;
}

function task(v: unknown, path: string): Task | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || !Object.prototype.hasOwnProperty.call(TASK_TOKENS, v)) {
    throw new EncodingError(path, `unknown task ${JSON.stringify(v)}; valid tasks are ${Object.keys(TASK_TOKENS).join(", ")}`);
  }
  return v as Task;
}

/** Inner function objects of an OpenAI `tools` list; undefined when empty (renders nothing). */
export function toolFunctions(v: unknown, path: string): Record<string, unknown>[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new EncodingError(path, `must be an array of tools, not ${describe(v)}`);
  if (v.length === 0) return undefined;
  return v.map((tool, i) => {
    const fn = isObject(tool) ? tool.function : undefined;
    if (!isObject(fn)) throw new EncodingError(`${path}[${i}].function`, "each tool must be {\"type\":\"function\",\"function\":{...}}");
    if (typeof fn.name !== "string" || fn.name === "") throw new EncodingError(`${path}[${i}].function.name`, "must be a non-empty string");
    return fn;
  });
}

function toolCalls(v: unknown, path: string): ToolCallInput[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new EncodingError(path, `must be an array, not ${describe(v)}`);
  if (v.length === 0) return undefined;
  return v.map((call, i) => {
    const p = `${path}[${i}]`;
    if (!isObject(call) || !isObject(call.function)) throw new EncodingError(`${p}.function`, "each tool call needs a `function` object");
    const fn = call.function;
    if (typeof fn.name !== "string") throw new EncodingError(`${p}.function.name`, "must be a string");
    const args = fn.arguments;
    if (args !== undefined && args !== null && typeof args !== "string" && !isObject(args)) {
      throw new EncodingError(`${p}.function.arguments`, `must be a JSON string, not ${describe(args)}`);
    }
    if (call.id !== undefined && call.id !== null && typeof call.id !== "string") throw new EncodingError(`${p}.id`, "must be a string");
    return call as unknown as ToolCallInput;
  });
}

function optionalString(v: unknown, path: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new EncodingError(path, `must be a string or null, not ${describe(v)}`);
  return v;
}

/** Validates one request message (`path` like `messages[3]`). */
export function normalizeMessage(msg: unknown, path: string): NormalizedMessage {
  if (!isObject(msg)) throw new EncodingError(path, `must be an object, not ${describe(msg)}`);
  const role = msg.role;
  if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role)) {
    throw new EncodingError(`${path}.role`, `unknown role ${JSON.stringify(role)}; valid roles are ${ROLES.join(", ")}`);
  }
  const t = task(msg.task, `${path}.task`);
  if (role === "tool") {
    const c = msg.content;
    let content: string | ContentPart[];
    if (c === undefined || c === null) content = "";
    else if (typeof c === "string") content = c;
    else if (Array.isArray(c)) content = contentParts(c, `${path}.content`);
    else throw new EncodingError(`${path}.content`, `must be a string or an array of content parts, not ${describe(c)}`);
    const callId = optionalString(msg.tool_call_id, `${path}.tool_call_id`) ?? "";
    return { role, block: { type: "tool_result", callId, content }, task: t };
  }
  const turn: Turn = { role: role as Turn["role"], content: textContent(msg.content, `${path}.content`), openEnded: false };
  if (t !== undefined) turn.task = t;
  if (role === "system" || role === "developer") {
    turn.tools = toolFunctions(msg.tools, `${path}.tools`);
    if (msg.response_format !== undefined && msg.response_format !== null) turn.responseFormat = msg.response_format;
    if (role === "developer" && turn.content === "") throw new EncodingError(`${path}.content`, "a developer message needs non-empty content");
  } else if (role !== "user" && msg.tools !== undefined && msg.tools !== null) {
    // Only system/developer render tools, but tools on an assistant or reminder
    // still keep reasoning (§B.4); the reference's merge step drops a user's.
    turn.tools = toolFunctions(msg.tools, `${path}.tools`);
  }
  if (role === "assistant") {
    turn.reasoning = optionalString(msg.reasoning_content, `${path}.reasoning_content`);
    turn.toolCalls = toolCalls(msg.tool_calls, `${path}.tool_calls`);
    turn.openEnded = optionalBool(msg.prefix, `${path}.prefix`) || optionalBool(msg.wo_eos, `${path}.wo_eos`);
  } else if (msg.prefix === true) {
    throw new EncodingError(`${path}.prefix`, "only an assistant message can be a prefix");
  }
  return turn;
}
