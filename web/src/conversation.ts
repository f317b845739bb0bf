/**
 * Conversations as the page keeps them, and their two outside forms: the chat request sent to
 * /chat/completions, and the exported JSON, which is that request's body (model, messages in
 * the API's format, tools and options) so it can be replayed with curl or imported back.
 */
import type { StreamedTurn, ToolCall, Usage } from "./turn.js";

export type { ToolCall, Usage };

export interface TurnStats {
  usage: Usage | null;
  finishReason: string | null;
  /** Milliseconds from sending the request to the first reasoning, text or tool-call delta. */
  ttftMs: number | null;
  /** Output tokens per second after the first one. */
  tokensPerSecond: number | null;
}

export interface ChatMessage {
  id: string;
  role: "user" | "assistant" | "tool";
  content: string;
  reasoning?: string;
  toolCalls?: ToolCall[];
  /** role "tool": the call it answers. */
  toolCallId?: string;
  stats?: TurnStats;
  error?: string;
}

export interface ToolDef {
  name: string;
  description: string;
  /** The parameters' JSON Schema, as the user typed it. */
  parameters: string;
}

export const EFFORTS = ["default", "low", "medium", "high", "max"] as const;
export type Effort = (typeof EFFORTS)[number];

export interface Settings {
  model: string;
  system: string;
  thinking: boolean;
  effort: Effort;
  /** null: the server's default. */
  temperature: number | null;
  maxTokens: number | null;
  /** Stop strings, one per line. */
  stop: string;
  tools: ToolDef[];
  /** "auto" | "none" | "required" | "function:NAME" (force that tool). */
  toolChoice: string;
}

export interface Conversation {
  id: string;
  title: string;
  updated: number;
  settings: Settings;
  messages: ChatMessage[];
}

export function defaultSettings(model = "deepseek-v4-flash"): Settings {
  return { model, system: "You are a helpful assistant.", thinking: true, effort: "default", temperature: null, maxTokens: 512, stop: "", tools: [], toolChoice: "auto" };
}

export function newId(): string {
  return Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
}

export function newConversation(settings: Settings): Conversation {
  return { id: newId(), title: "New conversation", updated: Date.now(), settings, messages: [] };
}

/** A settings or tools mistake, named so the user can fix it in the form. */
export class InputError extends Error {}

/** The tools in the API's format; a schema that is not a JSON object is an InputError naming the tool. */
export function apiTools(tools: ToolDef[]): Array<{ type: "function"; function: { name: string; description?: string; parameters: unknown } }> {
  return tools.map((t, i) => {
    const label = t.name ? `tool "${t.name}"` : `tool ${i + 1}`;
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(t.name)) throw new InputError(`${label}: the name must be 1-64 letters, digits, _ or -`);
    let parameters: unknown;
    try {
      parameters = t.parameters.trim() === "" ? { type: "object", properties: {} } : JSON.parse(t.parameters);
    } catch (err) {
      throw new InputError(`${label}: the parameters are not valid JSON (${(err as Error).message})`);
    }
    if (typeof parameters !== "object" || parameters === null || Array.isArray(parameters)) throw new InputError(`${label}: the parameters must be a JSON Schema object`);
    return { type: "function" as const, function: { name: t.name, ...(t.description ? { description: t.description } : {}), parameters } };
  });
}

/** The messages in the API's format, the system prompt first. */
export function apiMessages(conv: Conversation): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  if (conv.settings.system.trim()) out.push({ role: "system", content: conv.settings.system });
  for (const m of conv.messages) {
    if (m.role === "user") out.push({ role: "user", content: m.content });
    else if (m.role === "tool") out.push({ role: "tool", tool_call_id: m.toolCallId, content: m.content });
    else {
      const msg: Record<string, unknown> = { role: "assistant", content: m.content };
      // DeepSeek's thinking-mode tool loop wants the reasoning of a tool-call turn sent back.
      if (m.reasoning) msg.reasoning_content = m.reasoning;
      if (m.toolCalls?.length) msg.tool_calls = m.toolCalls;
      out.push(msg);
    }
  }
  return out;
}

/** The request body for /chat/completions, without `stream`. */
export function requestBody(conv: Conversation): Record<string, unknown> {
  const s = conv.settings;
  const body: Record<string, unknown> = { model: s.model, messages: apiMessages(conv), thinking: { type: s.thinking ? "enabled" : "disabled" } };
  if (s.thinking && s.effort !== "default") body.reasoning_effort = s.effort;
  if (s.temperature !== null) body.temperature = s.temperature;
  if (s.maxTokens !== null) body.max_tokens = s.maxTokens;
  const stop = s.stop.split("\n").filter((x) => x !== "");
  if (stop.length > 0) body.stop = stop;
  if (s.tools.length > 0) {
    body.tools = apiTools(s.tools);
    if (s.toolChoice.startsWith("function:")) {
      const name = s.toolChoice.slice("function:".length);
      if (!s.tools.some((t) => t.name === name)) throw new InputError(`tool_choice forces "${name}", which is not among the tools`);
      body.tool_choice = { type: "function", function: { name } };
    } else body.tool_choice = s.toolChoice;
  }
  return body;
}

/** The finished (or stopped) streamed turn as a message with its figures. */
export function assistantMessage(id: string, turn: StreamedTurn, timing: { sentAt: number; firstAt: number | null; endAt: number }): ChatMessage {
  const completion = turn.usage?.completion_tokens ?? null;
  const span = timing.firstAt === null ? 0 : timing.endAt - timing.firstAt;
  return {
    id,
    role: "assistant",
    content: turn.content,
    ...(turn.reasoning ? { reasoning: turn.reasoning } : {}),
    ...(turn.toolCalls.length ? { toolCalls: turn.toolCalls } : {}),
    ...(turn.error ? { error: turn.error } : {}),
    stats: {
      usage: turn.usage,
      finishReason: turn.finishReason,
      ttftMs: timing.firstAt === null ? null : timing.firstAt - timing.sentAt,
      tokensPerSecond: completion !== null && completion > 1 && span > 0 ? ((completion - 1) * 1000) / span : null,
    },
  };
}

/** Tool calls of the last assistant turn still waiting for a hand-written result. */
export function pendingToolCalls(conv: Conversation): ToolCall[] {
  const last = [...conv.messages].reverse().findIndex((m) => m.role === "assistant");
  if (last < 0) return [];
  const i = conv.messages.length - 1 - last;
  const calls = conv.messages[i]!.toolCalls ?? [];
  const answered = new Set(conv.messages.slice(i + 1).filter((m) => m.role === "tool").map((m) => m.toolCallId));
  return calls.filter((c) => !answered.has(c.id));
}

export function titleOf(text: string): string {
  const line = text.trim().split("\n")[0] ?? "";
  return line.length > 48 ? `${line.slice(0, 47)}…` : line || "New conversation";
}

/** The exported file: a chat request body (model, messages, tools, options). */
export function exportJson(conv: Conversation): string {
  let body: Record<string, unknown>;
  try {
    body = requestBody(conv);
  } catch {
    // Tools that do not parse yet are left out rather than blocking the export.
    body = requestBody({ ...conv, settings: { ...conv.settings, tools: [], toolChoice: "auto" } });
  }
  return JSON.stringify(body, null, 2);
}

/** A conversation from an exported file, a chat request body or a bare messages array. */
export function importJson(text: string, fallback: Settings): Conversation {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new InputError(`the file is not JSON (${(err as Error).message})`);
  }
  const body = (Array.isArray(data) ? { messages: data } : data) as Record<string, any>;
  if (!body || !Array.isArray(body.messages)) throw new InputError('the file has no "messages" array (expected a chat request body or an array of messages)');
  const settings: Settings = { ...fallback, system: "", tools: [], toolChoice: "auto" };
  if (typeof body.model === "string") settings.model = body.model;
  if (body.thinking?.type) settings.thinking = body.thinking.type !== "disabled";
  if (EFFORTS.includes(body.reasoning_effort)) settings.effort = body.reasoning_effort;
  if (typeof body.temperature === "number") settings.temperature = body.temperature;
  if (typeof body.max_tokens === "number") settings.maxTokens = body.max_tokens;
  if (typeof body.stop === "string") settings.stop = body.stop;
  else if (Array.isArray(body.stop)) settings.stop = body.stop.join("\n");
  if (Array.isArray(body.tools)) {
    settings.tools = body.tools.map((t: any) => ({ name: String(t?.function?.name ?? ""), description: String(t?.function?.description ?? ""), parameters: JSON.stringify(t?.function?.parameters ?? {}, null, 2) }));
  }
  const tc = body.tool_choice;
  if (typeof tc === "string") settings.toolChoice = tc;
  else if (tc?.function?.name) settings.toolChoice = `function:${tc.function.name}`;
  const messages: ChatMessage[] = [];
  const systems: string[] = [];
  body.messages.forEach((m: any, i: number) => {
    const content = typeof m?.content === "string" ? m.content : Array.isArray(m?.content) ? m.content.map((p: any) => p?.text ?? "").join("") : "";
    switch (m?.role) {
      case "system":
      case "developer":
        systems.push(content);
        break;
      case "user":
        messages.push({ id: newId(), role: "user", content });
        break;
      case "assistant":
        messages.push({
          id: newId(),
          role: "assistant",
          content,
          ...(typeof m.reasoning_content === "string" && m.reasoning_content ? { reasoning: m.reasoning_content } : {}),
          ...(Array.isArray(m.tool_calls) && m.tool_calls.length ? { toolCalls: m.tool_calls } : {}),
        });
        break;
      case "tool":
        messages.push({ id: newId(), role: "tool", content, toolCallId: String(m.tool_call_id ?? "") });
        break;
      default:
        throw new InputError(`messages[${i}]: unknown role ${JSON.stringify(m?.role)} (expected system, user, assistant or tool)`);
    }
  });
  settings.system = systems.join("\n\n");
  const firstUser = messages.find((m) => m.role === "user");
  return { id: newId(), title: titleOf(firstUser?.content ?? "Imported conversation"), updated: Date.now(), settings, messages };
}
