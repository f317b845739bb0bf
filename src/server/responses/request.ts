/**
 * A Responses request (spec §A.12) → the chat request the chat route takes, then the chat
 * route's own preparation (chat-request.ts): one set of rules for thinking, effort, tools,
 * tool_choice, response formats and sampling. Input items become chat messages: `instructions`
 * the first system message, `developer` a system message, reasoning / assistant text /
 * function_call items one assistant turn, function_call_output a tool message. Errors from
 * the chat rules are renamed to the Responses field they came from.
 */
import { prepareChat, type ChatRouteContext, type PreparedChat } from "../chat-request.js";
import { ApiError, invalidRequest } from "../errors.js";
import type { ChatRequest, RequestMessage, RequestTool } from "../schemas.js";
import type { ResponsesInputItem, ResponsesRequest } from "./schema.js";

export interface PreparedResponses extends PreparedChat {
  /** The request's settings as the Response object echoes them. */
  echo: ResponsesEcho;
}

/** Request fields every Response object repeats (the SDK's `Response` type). */
export interface ResponsesEcho {
  instructions: string | null;
  max_output_tokens: number | null;
  temperature: number | null;
  top_p: number | null;
  tools: unknown[];
  tool_choice: unknown;
  reasoning: { effort: string | null; summary: string | null };
  text: { format: unknown };
  metadata: Record<string, string>;
  parallel_tool_calls: boolean;
}

const TEXT_PARTS = new Set(["input_text", "output_text", "text"]);
const MESSAGE_ROLES = new Set(["user", "assistant", "system", "developer"]);

/** Chat messages and, for each, the Responses field it came from (for error names). */
class Conversation {
  readonly messages: RequestMessage[] = [];
  readonly sources: string[] = [];
  private assistant: RequestMessage | undefined;

  push(message: RequestMessage, source: string): void {
    this.assistant = undefined;
    this.messages.push(message);
    this.sources.push(source);
  }

  /**
   * The assistant turn items join: reasoning, then text, then function calls (the order the
   * model writes them). An item that cannot follow what the turn already holds starts a new turn.
   */
  assistantFor(part: "reasoning" | "text" | "call", source: string): RequestMessage {
    const a = this.assistant;
    const calls = a?.tool_calls?.length ?? 0;
    const fits = a && (part === "call" || (calls === 0 && (part === "text" || (a.content === "" && a.reasoning_content === ""))));
    if (a && fits) return a;
    const fresh: RequestMessage = { role: "assistant", content: "", reasoning_content: "" };
    this.push(fresh, source);
    this.assistant = fresh;
    return fresh;
  }
}

function textOf(content: unknown, at: string): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) throw invalidRequest(`${at}.content`, "must be a string or an array of content parts");
  return content
    .map((part: unknown, j: number) => {
      const p = part as { type?: unknown; text?: unknown };
      if (typeof p !== "object" || p === null || !TEXT_PARTS.has(p.type as string)) {
        throw invalidRequest(`${at}.content[${j}].type`, `content part type ${JSON.stringify(p?.type)} is not supported; use input_text or output_text`);
      }
      if (typeof p.text !== "string") throw invalidRequest(`${at}.content[${j}].text`, "must be a string");
      return p.text;
    })
    .join("");
}

function reasoningText(item: ResponsesInputItem, at: string): string {
  const parts = Array.isArray(item.content) && item.content.length > 0 ? item.content : item.summary;
  if (parts === undefined || parts === null) return "";
  if (!Array.isArray(parts)) throw invalidRequest(`${at}.summary`, "must be an array of summary parts");
  return parts
    .map((part: unknown, j: number) => {
      const text = (part as { text?: unknown })?.text;
      if (typeof text !== "string") throw invalidRequest(`${at}.content[${j}].text`, "must be a string");
      return text;
    })
    .join("");
}

function requiredString(value: unknown, at: string): string {
  if (typeof value !== "string") throw invalidRequest(at, "must be a string");
  return value;
}

function addItem(conv: Conversation, item: ResponsesInputItem, at: string): void {
  const type = item.type ?? (item.role !== undefined ? "message" : undefined);
  switch (type) {
    case "message": {
      const role = item.role;
      if (typeof role !== "string" || !MESSAGE_ROLES.has(role)) {
        throw invalidRequest(`${at}.role`, `unknown role ${JSON.stringify(role)}; use user, assistant, system or developer`);
      }
      const text = textOf(item.content, at);
      if (role === "assistant") {
        const turn = conv.assistantFor("text", at);
        turn.content = `${turn.content as string}${text}`;
      } else conv.push({ role: role === "developer" ? "system" : role, content: text }, at);
      return;
    }
    case "reasoning": {
      const turn = conv.assistantFor("reasoning", at);
      turn.reasoning_content = `${turn.reasoning_content ?? ""}${reasoningText(item, at)}`;
      return;
    }
    case "function_call": {
      const turn = conv.assistantFor("call", at);
      const args = item.arguments ?? "{}";
      const call = { id: requiredString(item.call_id, `${at}.call_id`), type: "function", function: { name: requiredString(item.name, `${at}.name`), arguments: requiredString(args, `${at}.arguments`) } };
      turn.tool_calls = [...(turn.tool_calls ?? []), call];
      return;
    }
    case "function_call_output": {
      const output = typeof item.output === "string" ? item.output : textOf(item.output, `${at}.output`);
      conv.push({ role: "tool", tool_call_id: requiredString(item.call_id, `${at}.call_id`), content: output }, at);
      return;
    }
    default:
      throw invalidRequest(`${at}.type`, `input item type ${JSON.stringify(type)} is not supported; use message, reasoning, function_call or function_call_output`);
  }
}

function conversation(body: ResponsesRequest): Conversation {
  const conv = new Conversation();
  if (body.instructions !== undefined && body.instructions !== null && body.instructions !== "") conv.push({ role: "system", content: body.instructions }, "instructions");
  const input = body.input;
  if (typeof input === "string") conv.push({ role: "user", content: input }, "input");
  else if (Array.isArray(input)) input.forEach((item, i) => addItem(conv, item, `input[${i}]`));
  if (conv.messages.length === 0) throw invalidRequest("input", "input must hold at least one message");
  return conv;
}

function chatTools(body: ResponsesRequest): RequestTool[] | undefined {
  if (!body.tools || body.tools.length === 0) return undefined;
  return body.tools.map((t, i) => {
    if (t.type !== "function") throw invalidRequest(`tools[${i}].type`, `tool type ${JSON.stringify(t.type)} is not supported; only "function" tools are`);
    const fn: RequestTool["function"] = { name: requiredString(t.name, `tools[${i}].name`), parameters: t.parameters ?? { type: "object", properties: {} } };
    if (t.description !== undefined && t.description !== null) fn.description = t.description;
    if (t.strict !== undefined && t.strict !== null) fn.strict = t.strict;
    return { type: "function", function: fn };
  });
}

function chatToolChoice(choice: ResponsesRequest["tool_choice"]): ChatRequest["tool_choice"] {
  if (choice === undefined || choice === null || typeof choice === "string") return choice;
  if (choice.type !== "function") throw invalidRequest("tool_choice.type", `tool_choice type ${JSON.stringify(choice.type)} is not supported; use "function"`);
  return { type: "function", function: { name: requiredString(choice.name, "tool_choice.name") } };
}

/** text.format → the chat route's response_format (json_schema in OpenAI's chat shape). */
function chatResponseFormat(format: NonNullable<ResponsesRequest["text"]>["format"]): ChatRequest["response_format"] {
  if (format === undefined || format === null) return undefined;
  if (format.type !== "json_schema") return { type: format.type };
  const { type: _type, ...schema } = format;
  return { type: "json_schema", json_schema: schema };
}

function checkStateless(body: ResponsesRequest): void {
  const stateless = "this server's Responses API is stateless: send the whole conversation in `input`";
  if (body.previous_response_id) throw invalidRequest("previous_response_id", `previous_response_id is not supported; ${stateless}`);
  if (body.conversation !== undefined && body.conversation !== null) throw invalidRequest("conversation", `conversation is not supported; ${stateless}`);
  if (body.background === true) throw invalidRequest("background", "background responses are not supported; use stream: true for long generations");
}

/** The chat body equivalent to a Responses body, and where each message came from. */
export function toChatRequest(body: ResponsesRequest): { chat: ChatRequest; sources: string[] } {
  checkStateless(body);
  const conv = conversation(body);
  const effort = body.reasoning?.effort ?? undefined;
  const chat: ChatRequest = {
    model: body.model,
    messages: conv.messages,
    thinking: body.thinking,
    reasoning_effort: effort,
    max_tokens: body.max_output_tokens,
    temperature: body.temperature,
    top_p: body.top_p,
    tools: chatTools(body),
    tool_choice: chatToolChoice(body.tool_choice),
    response_format: chatResponseFormat(body.text?.format),
    stream: body.stream,
    seed: body.seed,
    priority: body.priority,
  };
  return { chat, sources: conv.sources };
}

/** Chat field names → Responses ones, for errors raised by the chat rules. */
const RENAMES: Array<[RegExp, string]> = [
  [/^max_tokens\b/, "max_output_tokens"],
  [/^reasoning_effort\b/, "reasoning.effort"],
  [/^response_format\.json_schema\b/, "text.format"],
  [/^response_format\b/, "text.format"],
  [/^(tools\[\d+\])\.function\b/, "$1"],
  [/^tool_choice\.function\b/, "tool_choice"],
];

export function renameParam(param: string, sources: readonly string[]): string {
  const m = /^messages\[(\d+)\](.*)$/.exec(param);
  if (m) return `${sources[Number(m[1])] ?? "input"}${m[2]}`;
  for (const [from, to] of RENAMES) if (from.test(param)) return param.replace(from, to);
  return param;
}

function renamed(err: ApiError, sources: readonly string[]): ApiError {
  if (err.param === null) return err;
  const param = renameParam(err.param, sources);
  if (param === err.param) return err;
  const chatName = err.param.replace(/[[.].*$/, "");
  const message = chatName === "messages" ? err.message : err.message.split(chatName).join(param.replace(/[[.].*$/, ""));
  return new ApiError(err.status, message, err.type, param, err.code, err.headers);
}

export function prepareResponses(body: ResponsesRequest, ctx: ChatRouteContext): PreparedResponses {
  const { chat, sources } = toChatRequest(body);
  let prepared: PreparedChat;
  try {
    prepared = prepareChat(chat, ctx);
  } catch (err) {
    throw err instanceof ApiError ? renamed(err, sources) : err;
  }
  return {
    ...prepared,
    echo: {
      instructions: body.instructions ?? null,
      max_output_tokens: body.max_output_tokens ?? null,
      temperature: body.temperature ?? null,
      top_p: body.top_p ?? null,
      tools: body.tools ?? [],
      tool_choice: body.tool_choice ?? "auto",
      reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
      text: { format: body.text?.format ?? { type: "text" } },
      metadata: body.metadata ?? {},
      parallel_tool_calls: body.parallel_tool_calls ?? true,
    },
  };
}

