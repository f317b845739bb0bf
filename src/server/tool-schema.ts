/**
 * Checks on function tool definitions (spec §A.2 `tools`): names, parameter
 * schemas, and the JSON Schema subset that strict mode (beta) supports. The
 * model never sees an invalid schema, so a mistake is reported at the field
 * rather than surfacing later as a confused tool call.
 */
import { invalidRequest } from "./errors.js";
import { MAX_TOOLS, TOOL_NAME } from "./limits.js";
import type { RequestTool } from "./schemas.js";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

const JSON_TYPES = new Set(["object", "string", "number", "integer", "boolean", "array", "null"]);
const STRICT_UNSUPPORTED = ["minLength", "maxLength", "minItems", "maxItems"];
/** Deeper schemas are abuse, not tools; the limit also keeps recursion off the stack limit. */
const MAX_SCHEMA_DEPTH = 64;
const STRICT_FORMATS = new Set(["email", "hostname", "ipv4", "ipv6", "uuid"]);

export interface ToolCheckOptions {
  /** The request came in under /beta. */
  beta: boolean;
  /**
   * The hosted service's rules for strict tools (only under /beta, all or none strict, its
   * strict subset). Without them strict schemas are checked when the engine compiles them.
   */
  hostedRules: boolean;
}

export function checkTools(tools: RequestTool[], opts: ToolCheckOptions): void {
  const { beta, hostedRules } = opts;
  if (tools.length > MAX_TOOLS) throw invalidRequest("tools", `too many tools: ${tools.length} given, at most ${MAX_TOOLS} are supported`);
  const names = new Set<string>();
  const strict = tools.map((t) => t.function.strict === true);
  tools.forEach((tool, i) => {
    const at = `tools[${i}]`;
    if (tool.type !== "function") throw invalidRequest(`${at}.type`, `unknown tool type ${JSON.stringify(tool.type)}; only "function" is supported`);
    const name = tool.function.name;
    if (!TOOL_NAME.test(name)) {
      throw invalidRequest(`${at}.function.name`, `invalid function name ${JSON.stringify(name)}: use 1 to 64 characters from a-z, A-Z, 0-9, _ and -`);
    }
    if (names.has(name)) throw invalidRequest(`${at}.function.name`, `duplicate function name ${JSON.stringify(name)}`);
    names.add(name);
    const params = tool.function.parameters;
    if (params !== undefined && params !== null) checkSchema(params, `${at}.function.parameters`, hostedRules && strict[i]!, true);
  });
  if (hostedRules && strict.some((s) => s)) {
    if (!beta) throw invalidRequest("tools", "strict function calling is only available when using beta api (set base_url to the /beta path)");
    const loose = strict.indexOf(false);
    if (loose >= 0) throw invalidRequest(`tools[${loose}].function.strict`, "when any function is strict, all functions must be strict");
  }
}

function checkSchema(schema: unknown, at: string, strict: boolean, root: boolean, depth = 0): void {
  if (depth > MAX_SCHEMA_DEPTH) throw invalidRequest(at, `schemas nested deeper than ${MAX_SCHEMA_DEPTH} levels are not supported`);
  if (typeof schema === "boolean" && !root && !strict) return;
  if (!isObject(schema)) throw invalidRequest(at, "a JSON Schema must be an object");
  const type = schema.type;
  const types = Array.isArray(type) ? type : type === undefined ? [] : [type];
  for (const t of types) {
    if (typeof t !== "string" || !JSON_TYPES.has(t)) throw invalidRequest(`${at}.type`, `unknown JSON Schema type ${JSON.stringify(t)}`);
  }
  if (root && type !== undefined && type !== "object") throw invalidRequest(`${at}.type`, `function parameters must be an object schema, not ${JSON.stringify(type)}`);
  const props = schema.properties;
  if (props !== undefined) {
    if (!isObject(props)) throw invalidRequest(`${at}.properties`, "must be an object mapping names to schemas");
    for (const [key, sub] of Object.entries(props)) checkSchema(sub, `${at}.properties.${key}`, strict, false, depth + 1);
  }
  const required = schema.required;
  if (required !== undefined && (!Array.isArray(required) || required.some((r) => typeof r !== "string"))) {
    throw invalidRequest(`${at}.required`, "must be an array of property names");
  }
  if (schema.items !== undefined && !Array.isArray(schema.items)) checkSchema(schema.items, `${at}.items`, strict, false, depth + 1);
  for (const key of ["anyOf", "oneOf", "allOf"] as const) {
    const list = schema[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw invalidRequest(`${at}.${key}`, "must be an array of schemas");
    list.forEach((sub, j) => checkSchema(sub, `${at}.${key}[${j}]`, strict, false, depth + 1));
  }
  for (const key of ["$defs", "definitions"] as const) {
    const defs = schema[key];
    if (defs === undefined) continue;
    if (!isObject(defs)) throw invalidRequest(`${at}.${key}`, "must be an object mapping names to schemas");
    for (const [name, sub] of Object.entries(defs)) checkSchema(sub, `${at}.${key}.${name}`, strict, false, depth + 1);
  }
  if (strict) checkStrict(schema, at);
}

/** The strict-mode subset (spec §A.2 `tools[].function.strict`). */
function checkStrict(schema: Record<string, unknown>, at: string): void {
  for (const key of STRICT_UNSUPPORTED) {
    if (key in schema) throw invalidRequest(`${at}.${key}`, `"${key}" is not supported in strict mode`);
  }
  if (schema.type === "string" && schema.format !== undefined && !STRICT_FORMATS.has(String(schema.format))) {
    throw invalidRequest(`${at}.format`, `string format ${JSON.stringify(schema.format)} is not supported in strict mode`);
  }
  if (schema.type === "object" || isObject(schema.properties)) {
    const props = isObject(schema.properties) ? Object.keys(schema.properties) : [];
    const required = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
    const missing = props.find((p) => !required.has(p));
    if (missing !== undefined) throw invalidRequest(`${at}.required`, `strict mode needs every property in "required"; "${missing}" is missing`);
    if (schema.additionalProperties !== false) throw invalidRequest(`${at}.additionalProperties`, "strict mode needs \"additionalProperties\": false on every object");
  }
}
