/**
 * Which constraint a request asks for (`tool_choice`, `response_format`), its
 * validation, and the runtime object for a sequence.
 */
import type { Tokenizer } from "../../text/tokenizer.js";
import { EngineError } from "../errors.js";
import type { GenerateRequest } from "../types.js";
import type { TokenConstraint } from "./constraint.js";
import { JsonObjectConstraint } from "./json-object.js";
import { NoToolCalls, RequiredToolCall } from "./tool-choice.js";

export type { DecodeView, TokenConstraint } from "./constraint.js";
export { sampleAllowed } from "./masked-sampler.js";

export type ConstraintSpec =
  | { kind: "no_tool_calls" }
  | { kind: "tool_call"; names: string[]; only: string | null }
  | { kind: "json_object" };

const bad = (param: string, message: string) => new EngineError("invalid_request", `${param}: ${message}`, { param });

/**
 * The constraint for a request, or null. "auto" (and tool_choice "none"
 * without tools, which has nothing to forbid) needs none.
 */
export function constraintSpec(req: GenerateRequest, hasTokenizer: boolean): ConstraintSpec | null {
  const tools = req.tools ?? [];
  const names = tools.map((t) => t?.function?.name).filter((n): n is string => typeof n === "string");
  const choice = req.tool_choice ?? null;
  let toolSpec: ConstraintSpec | null = null;
  if (choice === "none") {
    if (names.length > 0) toolSpec = { kind: "no_tool_calls" };
  } else if (choice === "required") {
    if (names.length === 0) throw bad("tool_choice", '"required" needs at least one function in tools');
    toolSpec = { kind: "tool_call", names, only: null };
  } else if (choice !== null && choice !== "auto") {
    const name = typeof choice === "object" ? choice.function?.name : undefined;
    if (typeof choice !== "object" || choice.type !== "function" || typeof name !== "string") {
      throw bad("tool_choice", 'must be "none", "auto", "required" or {"type":"function","function":{"name":…}}');
    }
    if (!names.includes(name)) {
      throw bad("tool_choice", `function ${JSON.stringify(name)} is not among the tools of the request (${names.map((n) => JSON.stringify(n)).join(", ") || "none given"})`);
    }
    toolSpec = { kind: "tool_call", names, only: name };
  }

  const format = req.response_format ?? null;
  if (format !== null && (typeof format !== "object" || (format.type !== "text" && format.type !== "json_object"))) {
    throw bad("response_format", 'type must be "text" or "json_object"');
  }
  const json = format?.type === "json_object";
  if (json && toolSpec?.kind === "tool_call") {
    throw bad("response_format", "json_object cannot be combined with a tool_choice that requires a tool call");
  }
  const spec: ConstraintSpec | null = json ? { kind: "json_object" } : toolSpec;
  if (spec && !hasTokenizer) throw bad(json ? "response_format" : "tool_choice", "constrained decoding needs the model's tokenizer.json");
  return spec;
}

export function createConstraint(spec: ConstraintSpec, tok: Tokenizer): TokenConstraint {
  switch (spec.kind) {
    case "no_tool_calls":
      return new NoToolCalls(tok);
    case "tool_call":
      return new RequiredToolCall(tok, spec.names, spec.only);
    case "json_object":
      return new JsonObjectConstraint(tok);
  }
}
