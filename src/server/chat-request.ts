/**
 * A parsed chat body → the engine's GenerateRequest, after the value rules
 * the hosted service enforces with a 400 (spec §A.2–§A.4, §B). Each rule
 * names its field; DeepSeek's exact wording is kept where it is known.
 */
import { DEFAULT_MAX_TOKENS } from "../engine/request.js";
import type { ChatMessage, GenerateRequest, ToolDefinition } from "../engine/types.js";
import { API_EFFORTS, isApiEffort } from "../text/effort.js";
import { invalidParameters, invalidRequest } from "./errors.js";
import { MAX_OUTPUT_TOKENS, MAX_STOP_STRINGS, MAX_TOP_LOGPROBS, MAX_USER_ID_LENGTH, USER_ID } from "./limits.js";
import type { ChatRequest, RequestMessage } from "./schemas.js";
import { checkTools } from "./tool-schema.js";

export interface ChatRouteContext {
  /** The request came in under /beta (prefix completion, strict tools). */
  beta: boolean;
  /** Honour temperature/top_p in thinking mode (the hosted service ignores them, spec §B.3). */
  samplingInThinking: boolean;
  /** The server's max_tokens cap (default MAX_OUTPUT_TOKENS, the hosted 393,216). */
  maxOutputTokens?: number;
  /** Refuse what the hosted service refuses (reasoning passback, strict tools outside /beta, json_schema). */
  strictApi?: boolean;
}

export interface PreparedChat {
  request: GenerateRequest;
  thinking: boolean;
  stream: boolean;
  includeUsage: boolean;
  logprobs: boolean;
}

const ROLES = new Set(["system", "user", "assistant", "tool"]);
export const BETA_HINT = "set base_url to this server's /beta path";
export const REASONING_PASSBACK = "The reasoning_content in the thinking mode must be passed back to the API.";

export function maxTokens(value: number | null | undefined, field: string, upper = MAX_OUTPUT_TOKENS): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (value < 1 || value > upper) throw invalidRequest(field, `Invalid ${field} value, the valid range of ${field} is [1, ${upper}]`);
  return value;
}

/**
 * A request's max_tokens under the server's cap: above it a 400 naming the field and the cap,
 * as the hosted service answers above 393,216. Absent: undefined, so the engine's default
 * (DEFAULT_MAX_TOKENS, clamped to what the context leaves) applies, unless the operator's cap
 * is lower than that default: then the cap is the default.
 */
export function defaultedMaxTokens(value: number | null | undefined, field: string, cap: number): number | undefined {
  return maxTokens(value, field, cap) ?? (cap < DEFAULT_MAX_TOKENS ? cap : undefined);
}

function outputTokens(body: ChatRequest, cap: number): number | undefined {
  const field = body.max_tokens === null || body.max_tokens === undefined ? "max_completion_tokens" : "max_tokens";
  return defaultedMaxTokens(body.max_tokens ?? body.max_completion_tokens, field, cap);
}

export function checkN(n: number | null | undefined): void {
  if (n !== null && n !== undefined && n !== 1) throw invalidRequest("n", "Invalid n value (currently only n = 1 is supported)");
}

export function stopStrings(stop: string | string[] | null | undefined): string[] | undefined {
  if (stop === null || stop === undefined) return undefined;
  const list = typeof stop === "string" ? [stop] : stop;
  if (list.length > MAX_STOP_STRINGS) throw invalidRequest("stop", `too many stop strings: ${list.length} given, at most ${MAX_STOP_STRINGS}`);
  const empty = list.indexOf("");
  if (empty >= 0) throw invalidRequest(typeof stop === "string" ? "stop" : `stop[${empty}]`, "a stop string cannot be empty");
  return list.length > 0 ? list : undefined;
}

export function range(value: number | null | undefined, field: string, lo: number, hi: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (!(value >= lo && value <= hi)) throw invalidRequest(field, `Invalid ${field} value ${value}, the valid range of ${field} is [${lo}, ${hi}]`);
  return value;
}

/** vLLM's chat_template_kwargs (thinking / enable_thinking, reasoning_effort) where the DeepSeek fields are absent. */
function templateKwargs(body: ChatRequest): ChatRequest {
  const kw = body.chat_template_kwargs;
  if (!kw) return body;
  const on = kw.thinking ?? kw.enable_thinking;
  return {
    ...body,
    thinking: body.thinking ?? (typeof on === "boolean" ? { type: on ? "enabled" : "disabled" } : undefined),
    reasoning_effort: body.reasoning_effort ?? kw.reasoning_effort,
  };
}

function thinkingEnabled(body: ChatRequest): boolean {
  if (body.reasoning_effort === "none") return false;
  const type = body.thinking?.type;
  if (type === undefined || type === null) return true;
  if (type === "enabled" || type === "adaptive") return true;
  if (type === "disabled") return false;
  throw invalidParameters("thinking.type", `unknown variant ${JSON.stringify(type)}, expected \`enabled\` or \`disabled\``);
}

/** The request's effort, checked; the engine renders it per the encoder in use (text/effort.ts). */
function effort(value: string | null | undefined): string | undefined {
  if (value === null || value === undefined || value === "none") return undefined;
  if (!isApiEffort(value)) {
    throw invalidRequest("reasoning_effort", `unknown reasoning_effort ${JSON.stringify(value)}; use one of none, ${API_EFFORTS.join(", ")}`);
  }
  return value;
}

function checkContentParts(msg: RequestMessage, at: string): void {
  if (!Array.isArray(msg.content)) return;
  msg.content.forEach((part, j) => {
    if (part.type !== "text") throw invalidRequest(`${at}.content[${j}].type`, `content part type ${JSON.stringify(part.type)} is not supported; only "text" is`);
    if (typeof part.text !== "string") throw invalidParameters(`${at}.content[${j}]`, "missing field `text`");
  });
}

function checkMessages(messages: RequestMessage[], thinking: boolean, beta: boolean, strictApi: boolean): void {
  if (messages.length === 0) throw invalidRequest("messages", "messages must contain at least one message");
  let openCalls = new Set<string>();
  messages.forEach((msg, i) => {
    const at = `messages[${i}]`;
    if (!ROLES.has(msg.role)) {
      throw invalidParameters(`${at}.role`, `unknown variant ${JSON.stringify(msg.role)}, expected one of \`system\`, \`user\`, \`assistant\`, \`tool\``);
    }
    checkContentParts(msg, at);
    if ((msg.role === "system" || msg.role === "user" || msg.role === "tool") && (msg.content === undefined || msg.content === null)) {
      throw invalidParameters(at, "missing field `content`");
    }
    if (msg.prefix === true) {
      if (msg.role !== "assistant") throw invalidRequest(`${at}.prefix`, "only an assistant message can be a prefix");
      if (i !== messages.length - 1) throw invalidRequest(`${at}.prefix`, "a prefix assistant message must be the last message");
      if (!beta) throw invalidRequest(`${at}.prefix`, `chat prefix completion is only available when using beta api (${BETA_HINT})`);
    }
    if (msg.role === "assistant") {
      const calls = msg.tool_calls ?? [];
      calls.forEach((call, j) => {
        if (call.type !== undefined && call.type !== null && call.type !== "function") {
          throw invalidRequest(`${at}.tool_calls[${j}].type`, `unknown tool call type ${JSON.stringify(call.type)}; only "function" is supported`);
        }
      });
      if (strictApi && calls.length > 0 && thinking && (msg.reasoning_content === undefined || msg.reasoning_content === null)) {
        throw invalidRequest(`${at}.reasoning_content`, REASONING_PASSBACK);
      }
      openCalls = new Set(calls.map((c) => c.id).filter((id): id is string => typeof id === "string" && id !== ""));
      // A turn whose calls carry no ids cannot be matched; the encoder orders its results by position.
      if (calls.length > 0 && openCalls.size === 0) openCalls = new Set(["*"]);
      return;
    }
    if (msg.role === "tool") {
      if (msg.tool_call_id === undefined || msg.tool_call_id === null) throw invalidParameters(at, "missing field `tool_call_id`");
      if (!openCalls.has("*") && !openCalls.has(msg.tool_call_id)) {
        throw invalidRequest(
          `${at}.tool_call_id`,
          `tool_call_id ${JSON.stringify(msg.tool_call_id)} does not answer any tool call of the preceding assistant message`,
        );
      }
      return;
    }
    openCalls = new Set();
  });
}

function toolChoice(body: ChatRequest, tools: ToolDefinition[] | undefined): GenerateRequest["tool_choice"] {
  const choice = body.tool_choice;
  if (choice === undefined || choice === null) return undefined;
  if (typeof choice === "string") {
    if (choice !== "none" && choice !== "auto" && choice !== "required") {
      throw invalidRequest("tool_choice", `unknown tool_choice ${JSON.stringify(choice)}; use "none", "auto", "required" or a named function`);
    }
    if (choice === "required" && !tools) throw invalidRequest("tool_choice", "tool_choice \"required\" needs tools");
    return choice;
  }
  if (choice.type !== "function") throw invalidRequest("tool_choice.type", `unknown tool_choice type ${JSON.stringify(choice.type)}; use "function"`);
  const name = choice.function.name;
  if (!tools?.some((t) => t.function.name === name)) throw invalidRequest("tool_choice.function.name", `no tool named ${JSON.stringify(name)} in tools`);
  return { type: "function", function: { name } };
}

function responseFormat(body: ChatRequest, strictApi: boolean): GenerateRequest["response_format"] {
  const type = body.response_format?.type;
  if (type === undefined || type === null) return undefined;
  if (type === "json_schema" && !strictApi) return jsonSchemaFormat(body.response_format!.json_schema);
  if (type !== "text" && type !== "json_object") {
    const allowed = strictApi ? '"text" or "json_object"' : '"text", "json_object" or "json_schema"';
    throw invalidRequest("response_format.type", `unsupported response_format type ${JSON.stringify(type)}; use ${allowed}`);
  }
  return { type };
}

/** OpenAI's structured-output shape: {name, schema, strict?, description?}; the schema itself is compiled by the engine. */
function jsonSchemaFormat(value: unknown): GenerateRequest["response_format"] {
  const at = "response_format.json_schema";
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalidRequest(at, 'json_schema must be an object {"name": …, "schema": {…}, "strict": true}');
  const js = value as Record<string, unknown>;
  if (typeof js.name !== "string" || !/^[a-zA-Z0-9_-]{1,64}$/.test(js.name)) throw invalidRequest(`${at}.name`, "name must be 1 to 64 characters from a-z, A-Z, 0-9, _ and -");
  if (js.schema !== undefined && (typeof js.schema !== "object" || js.schema === null || Array.isArray(js.schema))) throw invalidRequest(`${at}.schema`, "schema must be a JSON Schema object");
  if (js.strict !== undefined && js.strict !== null && typeof js.strict !== "boolean") throw invalidRequest(`${at}.strict`, "strict must be a boolean");
  return { type: "json_schema", json_schema: { name: js.name, schema: js.schema ?? {}, strict: (js.strict as boolean | null | undefined) ?? null } };
}

/**
 * Thinking-mode tool-call turns sent back without reasoning_content (the
 * OpenAI Agents SDK and LangChain do not keep it) are encoded as if it were
 * "", which the hosted service accepts; --strict-api refuses them instead.
 */
function withReasoningDefaults(messages: RequestMessage[], thinking: boolean): ChatMessage[] {
  if (!thinking) return messages as ChatMessage[];
  return messages.map((m) =>
    m.role === "assistant" && (m.tool_calls?.length ?? 0) > 0 && (m.reasoning_content === undefined || m.reasoning_content === null) ? { ...m, reasoning_content: "" } : m,
  ) as ChatMessage[];
}

function logprobSettings(body: ChatRequest): { logprobs: boolean; top: number | undefined } {
  const logprobs = body.logprobs === true;
  const top = body.top_logprobs ?? undefined;
  if (top !== undefined) {
    range(top, "top_logprobs", 0, MAX_TOP_LOGPROBS);
    if (!logprobs) throw invalidRequest("top_logprobs", "top_logprobs requires logprobs to be true");
  }
  return { logprobs, top };
}

export function userId(value: string | null | undefined): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (value.length > MAX_USER_ID_LENGTH || !USER_ID.test(value)) {
    throw invalidRequest("user_id", `user_id must be 1 to ${MAX_USER_ID_LENGTH} characters from a-z, A-Z, 0-9, - and _`);
  }
  return value;
}

/**
 * OpenAI clients send instructions as `developer`; DeepSeek's encoder has a developer role
 * with other semantics (an internal user-like turn), so it is read as `system`, as the
 * hosted Responses API does (spec §A.12).
 */
export function developerAsSystem(messages: RequestMessage[]): RequestMessage[] {
  return messages.map((m) => (m.role === "developer" ? { ...m, role: "system" } : m));
}

export function prepareChat(body: ChatRequest, ctx: ChatRouteContext): PreparedChat {
  body = { ...templateKwargs(body), messages: developerAsSystem(body.messages) };
  checkN(body.n);
  const thinking = thinkingEnabled(body);
  const max = outputTokens(body, ctx.maxOutputTokens ?? MAX_OUTPUT_TOKENS);
  const temperature = range(body.temperature, "temperature", 0, 2);
  const topP = range(body.top_p, "top_p", 0, 1);
  range(body.frequency_penalty, "frequency_penalty", -2, 2);
  range(body.presence_penalty, "presence_penalty", -2, 2);
  const tools = body.tools && body.tools.length > 0 ? body.tools : undefined;
  const strictApi = ctx.strictApi === true;
  if (tools) checkTools(tools, { beta: ctx.beta, hostedRules: strictApi });
  const engineTools = tools as ToolDefinition[] | undefined;
  checkMessages(body.messages, thinking, ctx.beta, strictApi);
  const { logprobs, top } = logprobSettings(body);
  const honour = !thinking || ctx.samplingInThinking;
  const request: GenerateRequest = {
    messages: withReasoningDefaults(body.messages, thinking),
    tools: engineTools,
    tool_choice: toolChoice(body, engineTools),
    response_format: responseFormat(body, strictApi),
    thinking: { type: thinking ? "enabled" : "disabled" },
    reasoning_effort: thinking ? effort(body.reasoning_effort) : undefined,
    max_tokens: max,
    stop: stopStrings(body.stop),
    temperature: honour ? temperature : undefined,
    top_p: honour ? topP : undefined,
    top_k: honour ? range(body.top_k, "top_k", 0, Number.MAX_SAFE_INTEGER) : undefined,
    min_p: honour ? range(body.min_p, "min_p", 0, 1) : undefined,
    seed: body.seed ?? undefined,
    logprobs,
    top_logprobs: top,
    user_id: userId(body.user_id),
    priority: body.priority ?? undefined,
    min_tokens: body.min_tokens ?? undefined,
    stop_token_ids: body.stop_token_ids ?? undefined,
    include_stop_str_in_output: body.include_stop_str_in_output ?? undefined,
    ignore_eos: body.ignore_eos ?? undefined,
    reasoning_budget: body.reasoning_budget === null || body.reasoning_budget === undefined ? undefined : range(body.reasoning_budget, "reasoning_budget", 0, MAX_OUTPUT_TOKENS),
  };
  if (!thinking) effort(body.reasoning_effort); // still reject nonsense values
  return {
    request,
    thinking,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    logprobs,
  };
}
