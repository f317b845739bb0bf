/**
 * DSML, the markup V4 writes tool calls in (spec §C.3, §D.2): the markers, and
 * the rendering of OpenAI tool calls into an assistant turn.
 */
import { parsePyJson, pyJsonDumps, pyJsonString, pyKeys } from "./pyjson.js";
import { EncodingError, type ToolCallInput } from "./messages.js";
import { DSML } from "./special-tokens.js";

export const TOOL_CALLS_OPEN = `<${DSML}tool_calls>`;
export const TOOL_CALLS_CLOSE = `</${DSML}tool_calls>`;
export const INVOKE_OPEN = `<${DSML}invoke`;
export const INVOKE_CLOSE = `</${DSML}invoke>`;
export const PARAMETER_OPEN = `<${DSML}parameter`;
export const PARAMETER_CLOSE = `</${DSML}parameter>`;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/**
 * The arguments as an ordered object. A string that is not JSON becomes one
 * string parameter named `arguments`, as the reference does; JSON that is not
 * an object has no parameter form (the reference fails on it too).
 */
function argumentsObject(call: ToolCallInput, path: string): Record<string, unknown> {
  const raw = call.function.arguments;
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== "string") return raw;
  let parsed: unknown;
  try {
    parsed = parsePyJson(raw);
  } catch {
    return { arguments: raw };
  }
  if (!isPlainObject(parsed)) throw new EncodingError(`${path}.function.arguments`, "must encode a JSON object");
  return parsed;
}

function renderParameter(key: string, value: unknown): string {
  const isString = typeof value === "string";
  const text = isString ? value : pyJsonDumps(value);
  return `<${DSML}parameter name="${key}" string="${isString}">${text}${PARAMETER_CLOSE}`;
}

function renderInvoke(call: ToolCallInput, path: string): string {
  const args = argumentsObject(call, path);
  const params = pyKeys(args).map((k) => renderParameter(k, args[k]));
  return `${INVOKE_OPEN} name="${call.function.name}">\n${params.join("\n")}\n${INVOKE_CLOSE}`;
}

/** The `\n\n<｜DSML｜tool_calls>…</｜DSML｜tool_calls>` block of an assistant turn. */
export function renderToolCalls(calls: ToolCallInput[], path: string): string {
  const invokes = calls.map((c, i) => renderInvoke(c, `${path}[${i}]`));
  return `\n\n${TOOL_CALLS_OPEN}\n${invokes.join("\n")}\n${TOOL_CALLS_CLOSE}`;
}

/** One `arguments` member as §D.2 builds it: `"key": value`. */
export function argumentMember(key: string, value: string, isString: boolean): string {
  return `${pyJsonString(key)}: ${isString ? pyJsonString(value) : value}`;
}
