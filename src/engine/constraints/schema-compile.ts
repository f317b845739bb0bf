/**
 * A JSON Schema → the small grammar tree that schema-match.ts decodes against.
 *
 * Supported (README "JSON Schemas as grammars"): `type` (one or a list),
 * `properties`, `required`, `additionalProperties` (false, true or a schema),
 * `items`, `minItems`, `maxItems`, `minLength`, `maxLength`, `enum`, `const`,
 * `anyOf`, `oneOf` (decoded as anyOf: a value may match several branches),
 * `allOf` with a single member, `$ref` to `#`, `#/$defs/…` or
 * `#/definitions/…` (recursion allowed), `format` for the formats that need no
 * checking beyond a string (`FREE_FORMATS`), and `minimum`/`maximum` only when
 * they span the safe-integer range (what zod writes for `.int()`).
 * Annotations are ignored. Anything else is refused in strict mode with the
 * keyword and its JSON path; lenient mode (a non-strict tool whose call is
 * forced) ignores what it cannot enforce, so the call still follows the rest.
 */

export type SchemaNode =
  | { kind: "any" }
  | { kind: "never" }
  | { kind: "object"; props: Map<string, SchemaNode>; required: string[]; additional: SchemaNode | null }
  | { kind: "array"; items: SchemaNode; min: number; max: number }
  | { kind: "string"; min: number; max: number }
  | { kind: "number"; integer: boolean }
  | { kind: "boolean" }
  | { kind: "null" }
  /** enum / const: the JSON texts (UTF-8 as binary strings) of the allowed values. */
  | { kind: "literal"; texts: string[]; values: unknown[] }
  | { kind: "anyOf"; options: SchemaNode[] }
  | { kind: "ref"; name: string; target: SchemaNode | null };

/** A schema the grammar cannot enforce: `keyword` at `path` (a JSON path from the schema's root). */
export class SchemaError extends Error {
  constructor(readonly path: string, readonly keyword: string, message: string) {
    super(message);
  }
}

export const ANNOTATIONS = new Set(["$schema", "$id", "title", "description", "examples", "default", "$comment", "deprecated", "readOnly", "writeOnly"]);
/** String formats accepted as plain strings: their values are not checked. */
export const FREE_FORMATS = new Set(["date-time", "date", "time", "email", "hostname", "ipv4", "ipv6", "uuid", "uri", "duration"]);
const HANDLED = new Set([
  "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "minLength", "maxLength",
  "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions", "format", "minimum", "maximum",
]);
const TYPES = ["object", "array", "string", "number", "integer", "boolean", "null"] as const;
/** Keeps a hostile schema from exhausting the stack. */
const MAX_DEPTH = 64;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function binaryUtf8(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/** JSON text as the model writes it (Python json.dumps defaults: `", "` and `": "`). */
export function pyJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pyJson).join(", ")}]`;
  if (isObject(v)) return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${pyJson(x)}`).join(", ")}}`;
  return JSON.stringify(v);
}

export interface CompileOptions {
  /** Refuse what cannot be enforced (true), or ignore it (false). */
  strict: boolean;
}

export function compileSchema(schema: unknown, opts: CompileOptions): SchemaNode {
  const refs = new Map<string, SchemaNode & { kind: "ref" }>();
  const root = schema;
  const c = new Compiler(root, opts, refs);
  const node = c.node(schema, "", 0);
  for (const [name, ref] of refs) {
    if (ref.target === null) ref.target = c.resolve(name);
  }
  return node;
}

class Compiler {
  constructor(private readonly root: unknown, private readonly opts: CompileOptions, private readonly refs: Map<string, SchemaNode & { kind: "ref" }>) {}

  private refuse(path: string, keyword: string, why: string): void {
    if (this.opts.strict) throw new SchemaError(`${path}.${keyword}`.replace(/^\./, ""), keyword, why);
  }

  resolve(ref: string): SchemaNode {
    if (ref === "#") return this.node(this.root, "", 0);
    const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
    const defs = m && isObject(this.root) ? this.root[m[1]!] : undefined;
    const name = m ? m[2]!.replace(/~1/g, "/").replace(/~0/g, "~") : "";
    if (!m || !isObject(defs) || !(name in defs)) throw new SchemaError("$ref", "$ref", `$ref ${JSON.stringify(ref)} does not name a schema in this schema's $defs or definitions`);
    return this.node(defs[name], `${m[1]}.${name}`, 0);
  }

  node(s: unknown, path: string, depth: number): SchemaNode {
    if (depth > MAX_DEPTH) throw new SchemaError(path, "", `schema nested deeper than ${MAX_DEPTH} levels`);
    if (s === true || (isObject(s) && Object.keys(s).every((k) => ANNOTATIONS.has(k) || k === "$defs" || k === "definitions"))) return { kind: "any" };
    if (s === false) return { kind: "never" };
    if (!isObject(s)) throw new SchemaError(path, "", "a JSON Schema must be an object or a boolean");
    for (const key of Object.keys(s)) {
      if (!HANDLED.has(key) && !ANNOTATIONS.has(key)) this.refuse(path, key, `JSON Schema keyword "${key}" is not supported by constrained decoding`);
    }
    const at = (k: string) => (path === "" ? k : `${path}.${k}`);
    if (typeof s.$ref === "string") {
      const name = s.$ref;
      let ref = this.refs.get(name);
      if (!ref) {
        if (name !== "#" && !/^#\/(\$defs|definitions)\/[^/]+$/.test(name)) throw new SchemaError(at("$ref"), "$ref", `$ref ${JSON.stringify(name)}: only "#", "#/$defs/NAME" and "#/definitions/NAME" are supported`);
        ref = { kind: "ref", name, target: null };
        this.refs.set(name, ref);
      }
      return ref;
    }
    const parts: SchemaNode[] = [];
    if ("enum" in s || "const" in s) {
      const values = "const" in s ? [s.const] : s.enum;
      if (!Array.isArray(values) || values.length === 0) throw new SchemaError(at("enum"), "enum", "enum must be a non-empty array");
      return { kind: "literal", values, texts: values.map((v) => binaryUtf8(pyJson(v))) };
    }
    for (const key of ["anyOf", "oneOf"] as const) {
      if (s[key] === undefined) continue;
      const list = s[key];
      if (!Array.isArray(list) || list.length === 0) throw new SchemaError(at(key), key, `${key} must be a non-empty array of schemas`);
      const options = list.map((x, i) => this.node(x, at(`${key}[${i}]`), depth + 1));
      parts.push({ kind: "anyOf", options });
    }
    if (s.allOf !== undefined) {
      if (!Array.isArray(s.allOf) || s.allOf.length !== 1) this.refuse(path, "allOf", "allOf is supported with a single schema only");
      else parts.push(this.node(s.allOf[0], at("allOf[0]"), depth + 1));
    }
    const typed = this.typed(s, path, at, depth);
    if (typed) parts.push(typed);
    if (parts.length === 0) return { kind: "any" };
    if (parts.length > 1) this.refuse(path, "anyOf", "anyOf/oneOf/allOf beside type or each other is not supported; put the alternatives in one anyOf");
    return parts[parts.length - 1]!;
  }

  /** The node `type` (or the keywords that imply one) describes, or null when the schema names no type. */
  private typed(s: Record<string, unknown>, path: string, at: (k: string) => string, depth: number): SchemaNode | null {
    let types: string[];
    if (s.type === undefined) {
      if (isObject(s.properties) || s.additionalProperties !== undefined || Array.isArray(s.required)) types = ["object"];
      else if (s.items !== undefined) types = ["array"];
      else if (s.minLength !== undefined || s.maxLength !== undefined) types = ["string"];
      else return null;
    } else types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
    for (const t of types) {
      if (!(TYPES as readonly string[]).includes(t)) throw new SchemaError(at("type"), "type", `unknown JSON Schema type ${JSON.stringify(t)}`);
    }
    if (s.format !== undefined && !(typeof s.format === "string" && FREE_FORMATS.has(s.format))) {
      this.refuse(path, "format", `string format ${JSON.stringify(s.format)} is not supported (supported: ${[...FREE_FORMATS].join(", ")})`);
    }
    const nodes = types.map((t) => this.one(t, s, path, at, depth));
    return nodes.length === 1 ? nodes[0]! : { kind: "anyOf", options: nodes };
  }

  private count(s: Record<string, unknown>, key: string, at: (k: string) => string, fallback: number): number {
    const v = s[key];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new SchemaError(at(key), key, `${key} must be a non-negative integer`);
    return v;
  }

  private one(t: string, s: Record<string, unknown>, path: string, at: (k: string) => string, depth: number): SchemaNode {
    switch (t) {
      case "object": {
        const props = new Map<string, SchemaNode>();
        if (s.properties !== undefined) {
          if (!isObject(s.properties)) throw new SchemaError(at("properties"), "properties", "properties must be an object mapping names to schemas");
          for (const [k, v] of Object.entries(s.properties)) props.set(k, this.node(v, at(`properties.${k}`), depth + 1));
        }
        const required = s.required === undefined ? [] : s.required;
        if (!Array.isArray(required) || required.some((r) => typeof r !== "string")) throw new SchemaError(at("required"), "required", "required must be an array of property names");
        const ap = s.additionalProperties;
        // A required name without a property schema takes the additionalProperties schema.
        const additional = ap === false ? null : ap === undefined || ap === true ? ({ kind: "any" } as SchemaNode) : this.node(ap, at("additionalProperties"), depth + 1);
        for (const r of required as string[]) {
          if (!props.has(r)) {
            if (additional === null) throw new SchemaError(at("required"), "required", `required property ${JSON.stringify(r)} is not in properties and additionalProperties is false`);
            props.set(r, additional);
          }
        }
        return { kind: "object", props, required: [...new Set(required as string[])], additional };
      }
      case "array": {
        if (Array.isArray(s.items)) this.refuse(path, "items", "tuple items (an array) are not supported");
        const items = s.items === undefined || Array.isArray(s.items) ? ({ kind: "any" } as SchemaNode) : this.node(s.items, at("items"), depth + 1);
        const min = this.count(s, "minItems", at, 0);
        const max = this.count(s, "maxItems", at, Infinity);
        if (min > max) throw new SchemaError(at("minItems"), "minItems", "minItems is larger than maxItems");
        return { kind: "array", items, min, max };
      }
      case "string": {
        const min = this.count(s, "minLength", at, 0);
        const max = this.count(s, "maxLength", at, Infinity);
        if (min > max) throw new SchemaError(at("minLength"), "minLength", "minLength is larger than maxLength");
        return { kind: "string", min, max };
      }
      case "number":
      case "integer": {
        for (const k of ["minimum", "maximum"] as const) {
          const v = s[k];
          if (v === undefined) continue;
          const noop = k === "minimum" ? typeof v === "number" && v <= -Number.MAX_SAFE_INTEGER : typeof v === "number" && v >= Number.MAX_SAFE_INTEGER;
          if (!noop) this.refuse(path, k, `"${k}" is not supported by constrained decoding (except the safe-integer bounds)`);
        }
        return { kind: "number", integer: t === "integer" };
      }
      case "boolean":
        return { kind: "boolean" };
      default:
        return { kind: "null" };
    }
  }
}

/** The node behind a ref chain. */
export function deref(n: SchemaNode): SchemaNode {
  let x = n;
  for (let i = 0; x.kind === "ref" && i < 100; i++) x = x.target ?? { kind: "any" };
  return x.kind === "ref" ? { kind: "any" } : x;
}

/** Whether every value the node admits is a JSON string (a DSML parameter written raw, `string="true"`). */
export function isStringOnly(n: SchemaNode, seen = new Set<SchemaNode>()): boolean {
  const x = deref(n);
  if (seen.has(x)) return false;
  seen.add(x);
  switch (x.kind) {
    case "string":
      return true;
    case "literal":
      return x.values.every((v) => typeof v === "string");
    case "anyOf":
      return x.options.every((o) => isStringOnly(o, seen));
    default:
      return false;
  }
}
