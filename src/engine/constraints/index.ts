/**
 * Which constraint a request asks for (`tool_choice`, `response_format`), its
 * validation, and the runtime object for a sequence.
 */
import type { Tokenizer } from "../../text/tokenizer.js";
import { EngineError } from "../errors.js";
import type { GenerateRequest } from "../types.js";
import type { TokenConstraint } from "./constraint.js";
import { JsonObjectConstraint } from "./json-object.js";
import { JsonSchemaConstraint } from "./json-schema.js";
import { compileSchema, SchemaError, type SchemaNode } from "./schema-compile.js";
import { ToolCallConstraint, type ToolGrammar } from "./tool-call.js";
import { NoToolCalls } from "./tool-choice.js";

export type { DecodeView, TokenConstraint } from "./constraint.js";
export { sampleAllowed } from "./masked-sampler.js";

export type { SchemaNode } from "./schema-compile.js";
export { compileSchema, SchemaError } from "./schema-compile.js";

export type ConstraintSpec =
  | { kind: "no_tool_calls" }
  /** A call under the tools' schemas: `forced` for required/named (`only` names the tool), else auto with strict tools. */
  | { kind: "tool_call"; tools: ToolGrammar[]; only: string | null; forced: boolean }
  | { kind: "json_object" }
  | { kind: "json_schema"; schema: SchemaNode };

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
    toolSpec = { kind: "tool_call", tools: [], only: null, forced: true };
  } else if (choice !== null && choice !== "auto") {
    const name = typeof choice === "object" ? choice.function?.name : undefined;
    if (typeof choice !== "object" || choice.type !== "function" || typeof name !== "string") {
      throw bad("tool_choice", 'must be "none", "auto", "required" or {"type":"function","function":{"name":…}}');
    }
    if (!names.includes(name)) {
      throw bad("tool_choice", `function ${JSON.stringify(name)} is not among the tools of the request (${names.map((n) => JSON.stringify(n)).join(", ") || "none given"})`);
    }
    toolSpec = { kind: "tool_call", tools: [], only: name, forced: true };
  }

  if (toolSpec?.kind === "tool_call" || (toolSpec === null && choice !== "none" && tools.some((t) => t?.function?.strict === true))) {
    toolSpec = { kind: "tool_call", tools: toolGrammars(tools), only: toolSpec?.kind === "tool_call" ? toolSpec.only : null, forced: toolSpec?.kind === "tool_call" };
  }

  const format = req.response_format ?? null;
  if (format !== null && (typeof format !== "object" || (format.type !== "text" && format.type !== "json_object" && format.type !== "json_schema"))) {
    throw bad("response_format", 'type must be "text", "json_object" or "json_schema"');
  }
  const json = format?.type === "json_object" || format?.type === "json_schema";
  if (json && toolSpec?.kind === "tool_call" && toolSpec.forced) {
    throw bad("response_format", `${format!.type} cannot be combined with a tool_choice that requires a tool call`);
  }
  const spec: ConstraintSpec | null = format?.type === "json_schema" ? { kind: "json_schema", schema: responseSchema(format) } : json ? { kind: "json_object" } : toolSpec;
  if (spec && !hasTokenizer) throw bad(json ? "response_format" : "tool_choice", "constrained decoding needs the model's tokenizer.json");
  return spec;
}

/** Strict tools compile strictly (an unsupported keyword is a 400); the others leniently, for forced calls. */
function toolGrammars(tools: NonNullable<GenerateRequest["tools"]>): ToolGrammar[] {
  return tools.map((t, i) => {
    const params = t.function.parameters ?? { type: "object", properties: {} };
    const strict = t.function.strict === true;
    return { name: t.function.name, schema: compile(params, strict, `tools[${i}].function.parameters`) };
  });
}

function responseSchema(format: { type: "json_schema"; json_schema?: { schema?: unknown; strict?: boolean | null } | null }): SchemaNode {
  const js = format.json_schema;
  if (js === undefined || js === null || typeof js !== "object") throw bad("response_format.json_schema", "json_schema must be an object with name and schema");
  return compile(js.schema ?? {}, js.strict === true, "response_format.json_schema.schema");
}

function compile(schema: unknown, strict: boolean, at: string): SchemaNode {
  try {
    return compileSchema(schema, { strict });
  } catch (e) {
    if (!(e instanceof SchemaError)) throw e;
    const param = e.path === "" ? at : `${at}.${e.path}`;
    throw new EngineError("invalid_request", `${param}: ${e.message}`, { param });
  }
}

/**
 * Tokens the shortest answer a constraint allows needs (`</think>` included
 * when the answer starts in the reasoning), or 0 when it has no minimum.
 */
export function minimalTokens(spec: ConstraintSpec, tok: Tokenizer, startsInReasoning: boolean): number {
  const think = startsInReasoning && tok.specialIds.thinkEnd !== undefined ? 1 : 0;
  if (spec.kind === "tool_call" && spec.forced) return new ToolCallConstraint(tok, spec.tools, spec.only, true).minTokens() + think;
  if (spec.kind === "json_schema") return new JsonSchemaConstraint(tok, spec.schema).minTokens() + think;
  return 0;
}

export function createConstraint(spec: ConstraintSpec, tok: Tokenizer): TokenConstraint {
  switch (spec.kind) {
    case "no_tool_calls":
      return new NoToolCalls(tok);
    case "tool_call":
      return new ToolCallConstraint(tok, spec.tools, spec.only, spec.forced);
    case "json_object":
      return new JsonObjectConstraint(tok);
    case "json_schema":
      return new JsonSchemaConstraint(tok, spec.schema);
  }
}
