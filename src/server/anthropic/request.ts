/**
 * An Anthropic Messages request → the engine's GenerateRequest (spec §A.11,
 * §B.1): system text, user/assistant turns with thinking, tool_use and
 * tool_result blocks rewritten as the OpenAI-shaped messages the encoder
 * takes. Unsupported blocks are refused by name rather than dropped.
 */
import type { ChatMessage, GenerateRequest, ToolDefinition } from "../../engine/types.js";
import { API_EFFORTS, isApiEffort } from "../../text/effort.js";
import { defaultedMaxTokens, range, stopStrings } from "../chat-request.js";
import { invalidRequest } from "../errors.js";
import { MAX_OUTPUT_TOKENS } from "../limits.js";
import type { RequestTool } from "../schemas.js";
import { checkTools } from "../tool-schema.js";
import { reasoningBudget } from "./budget.js";
import type { AnthropicBlock, AnthropicRequest } from "./schema.js";

const UNSUPPORTED_BLOCKS = new Set(["image", "document", "search_result", "redacted_thinking", "container_upload", "code_execution_tool_result"]);

export interface PreparedAnthropic {
  request: GenerateRequest;
  thinking: boolean;
  stream: boolean;
}

function text(value: unknown, at: string): string {
  if (typeof value !== "string") throw invalidRequest(at, "must be a string");
  return value;
}

function toolResultText(block: AnthropicBlock, at: string): string {
  const c = block.content;
  if (c === undefined || c === null) return "";
  if (typeof c === "string") return c;
  if (!Array.isArray(c)) throw invalidRequest(`${at}.content`, "must be a string or an array of text blocks");
  return c
    .map((part: unknown, k: number) => {
      const p = part as { type?: unknown; text?: unknown };
      if (p?.type !== "text") throw invalidRequest(`${at}.content[${k}].type`, `tool_result content block ${JSON.stringify(p?.type)} is not supported; only "text" is`);
      return text(p.text, `${at}.content[${k}].text`);
    })
    .join("");
}

function checkBlockType(block: AnthropicBlock, at: string): void {
  if (UNSUPPORTED_BLOCKS.has(block.type) || block.type.startsWith("mcp_")) {
    throw invalidRequest(`${at}.type`, `content block type "${block.type}" is not supported`);
  }
}

function userMessages(content: AnthropicRequest["messages"][number]["content"], at: string): ChatMessage[] {
  if (typeof content === "string") return [{ role: "user", content }];
  const out: ChatMessage[] = [];
  let pendingText = "";
  content.forEach((block, j) => {
    const p = `${at}.content[${j}]`;
    checkBlockType(block, p);
    if (block.type === "text") pendingText += text(block.text, `${p}.text`);
    else if (block.type === "tool_result" || block.type === "web_search_tool_result") {
      out.push({ role: "tool", tool_call_id: text(block.tool_use_id, `${p}.tool_use_id`), content: toolResultText(block, p) });
    } else throw invalidRequest(`${p}.type`, `content block type "${block.type}" is not allowed in a user message`);
  });
  // Tool results answer the previous assistant turn; the user's own words follow them.
  if (pendingText !== "" || out.length === 0) out.push({ role: "user", content: pendingText });
  return out;
}

function assistantMessage(content: AnthropicRequest["messages"][number]["content"], at: string): ChatMessage {
  if (typeof content === "string") return { role: "assistant", content, reasoning_content: "" };
  let reasoning = "";
  let body = "";
  const calls: NonNullable<ChatMessage["tool_calls"]> = [];
  content.forEach((block, j) => {
    const p = `${at}.content[${j}]`;
    checkBlockType(block, p);
    switch (block.type) {
      case "text":
        body += text(block.text, `${p}.text`);
        break;
      case "thinking":
        reasoning += text(block.thinking, `${p}.thinking`);
        break;
      case "tool_use":
      case "server_tool_use": {
        const input = block.input ?? {};
        if (typeof input !== "object" || Array.isArray(input)) throw invalidRequest(`${p}.input`, "must be an object");
        calls.push({ id: text(block.id, `${p}.id`), type: "function", function: { name: text(block.name, `${p}.name`), arguments: JSON.stringify(input) } });
        break;
      }
      default:
        throw invalidRequest(`${p}.type`, `content block type "${block.type}" is not allowed in an assistant message`);
    }
  });
  // Anthropic clients send thinking back only when they have it; an empty one keeps tool turns valid (spec §A.3).
  const msg: ChatMessage = { role: "assistant", content: body, reasoning_content: reasoning };
  if (calls.length > 0) msg.tool_calls = calls;
  return msg;
}

function tools(body: AnthropicRequest): ToolDefinition[] | undefined {
  if (!body.tools || body.tools.length === 0) return undefined;
  const defs = body.tools.map((t, i) => {
    if (t.type !== undefined && t.type !== null && t.type !== "custom") {
      throw invalidRequest(`tools[${i}].type`, `tool type "${t.type}" is not supported; define the tool with name, description and input_schema`);
    }
    const fn: RequestTool["function"] = { name: t.name, parameters: t.input_schema ?? { type: "object", properties: {} } };
    if (t.description !== undefined && t.description !== null) fn.description = t.description;
    // Anthropic's strict tool use: the input is decoded under input_schema (forced calls are, strict or not).
    if (t.strict === true) fn.strict = true;
    return { type: "function", function: fn };
  });
  checkTools(defs, { beta: true, hostedRules: false });
  return defs as ToolDefinition[];
}

function toolChoice(body: AnthropicRequest, defs: ToolDefinition[] | undefined): GenerateRequest["tool_choice"] {
  const choice = body.tool_choice;
  if (!choice) return undefined;
  switch (choice.type) {
    case "auto":
      return "auto";
    case "none":
      return "none";
    case "any":
      if (!defs) throw invalidRequest("tool_choice", "tool_choice \"any\" needs tools");
      return "required";
    case "tool": {
      const name = choice.name ?? "";
      if (!defs?.some((d) => d.function.name === name)) throw invalidRequest("tool_choice.name", `no tool named ${JSON.stringify(name)} in tools`);
      return { type: "function", function: { name } };
    }
    default:
      throw invalidRequest("tool_choice.type", `unknown tool_choice type ${JSON.stringify(choice.type)}; use auto, any, tool or none`);
  }
}

function thinkingOf(body: AnthropicRequest): boolean {
  const type = body.thinking?.type;
  // Anthropic clients expect no thinking blocks unless they ask for them.
  if (type === undefined) return body.output_config?.effort !== undefined && body.output_config.effort !== null;
  if (type === "enabled" || type === "adaptive") return true;
  if (type === "disabled") return false;
  throw invalidRequest("thinking.type", `unknown thinking type ${JSON.stringify(type)}; use enabled or disabled`);
}

/** `maxOutputTokens`: the server's max_tokens cap (default the hosted 393,216). */
export function prepareAnthropic(body: AnthropicRequest, maxOutputTokens = MAX_OUTPUT_TOKENS): PreparedAnthropic {
  const thinking = thinkingOf(body);
  const effort = body.output_config?.effort ?? undefined;
  // The same values as reasoning_effort, rendered per the encoder in use (text/effort.ts).
  if (effort !== undefined && !isApiEffort(effort)) {
    throw invalidRequest("output_config.effort", `unknown effort ${JSON.stringify(effort)}; use one of ${API_EFFORTS.join(", ")}`);
  }
  if (body.messages.length === 0) throw invalidRequest("messages", "messages must contain at least one message");
  const messages: ChatMessage[] = [];
  if (body.system !== undefined && body.system !== null) {
    const system = typeof body.system === "string" ? body.system : body.system.map((b) => b.text).join("\n");
    if (system !== "") messages.push({ role: "system", content: system });
  }
  body.messages.forEach((m, i) => {
    const at = `messages[${i}]`;
    if (m.role === "user") messages.push(...userMessages(m.content, at));
    else if (m.role === "assistant") messages.push(assistantMessage(m.content, at));
    else throw invalidRequest(`${at}.role`, `unknown role ${JSON.stringify(m.role)}; use user or assistant`);
  });
  const last = body.messages[body.messages.length - 1]!;
  if (last.role === "assistant") {
    // A trailing assistant turn is Anthropic's prefill: continue it.
    messages[messages.length - 1]!.prefix = true;
  }
  const defs = tools(body);
  const userId = body.metadata?.user_id ?? undefined;
  const request: GenerateRequest = {
    messages,
    tools: defs,
    tool_choice: toolChoice(body, defs),
    thinking: { type: thinking ? "enabled" : "disabled" },
    reasoning_effort: thinking ? effort : undefined,
    reasoning_budget: reasoningBudget(body),
    max_tokens: defaultedMaxTokens(body.max_tokens, "max_tokens", maxOutputTokens),
    stop: stopStrings(body.stop_sequences ?? undefined),
    temperature: thinking ? undefined : range(body.temperature, "temperature", 0, 2),
    top_p: thinking ? undefined : range(body.top_p, "top_p", 0, 1),
    // Anthropic user ids are free-form; the engine uses them only to separate cache entries.
    user_id: userId === undefined || userId === null ? undefined : userId.replace(/[^a-zA-Z0-9_-]/g, "_").slice(0, 512),
  };
  return { request, thinking, stream: body.stream === true };
}
