/**
 * zod parsing with DeepSeek-shaped failures: the first issue becomes a 422
 * in serde's wording ("invalid type: …, expected …", "missing field …"),
 * prefixed with the JSON path of the field, so every rejection names it.
 */
import type { z } from "zod";
import { invalidParameters, type ApiError } from "./errors.js";

type Issue = z.core.$ZodIssue;
type Path = readonly PropertyKey[];

/** ["messages", 1, "content"] → "messages[1].content". */
export function formatPath(path: Path): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? "body" : out;
}

function valueAt(input: unknown, path: Path): unknown {
  let v = input;
  for (const key of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[key as string];
  }
  return v;
}

/** serde's name for what it found. */
export function serdeKind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "sequence";
  switch (typeof v) {
    case "string":
      return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
    case "number":
      return Number.isInteger(v) ? `integer \`${v}\`` : `floating point \`${v}\``;
    case "boolean":
      return `boolean \`${v}\``;
    case "object":
      return "map";
    default:
      return typeof v;
  }
}

const EXPECTED: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "a boolean",
  object: "a map",
  array: "a sequence",
};

/** The issue a client can act on: inside a union, the branch that got furthest. */
function deepest(issue: Issue): Issue {
  if (issue.code !== "invalid_union" || issue.errors.length === 0) return issue;
  let best: Issue | undefined;
  for (const branch of issue.errors) {
    const first = branch[0];
    if (first && first.path.length > 0 && (!best || first.path.length > best.path.length)) best = first;
  }
  return best ? deepest({ ...best, path: [...issue.path, ...best.path] } as Issue) : issue;
}

function describeIssue(issue: Issue, input: unknown): { path: Path; detail: string } {
  const actual = valueAt(input, issue.path);
  const custom = issue.message.startsWith("expected ") ? issue.message : undefined;
  switch (issue.code) {
    case "invalid_type":
      if (actual === undefined) {
        const field = issue.path[issue.path.length - 1];
        return { path: issue.path.slice(0, -1), detail: `missing field \`${String(field)}\`` };
      }
      return { path: issue.path, detail: `invalid type: ${serdeKind(actual)}, ${custom ?? `expected ${EXPECTED[issue.expected] ?? issue.expected}`}` };
    case "invalid_union":
      return { path: issue.path, detail: `invalid type: ${serdeKind(actual)}, ${custom ?? "expected one of the documented forms"}` };
    case "invalid_value":
      return {
        path: issue.path,
        detail: `unknown variant ${serdeKind(actual)}, expected one of ${issue.values.map((v) => `\`${String(v)}\``).join(", ")}`,
      };
    case "too_big":
      return { path: issue.path, detail: `${describeSize(actual)} is too large (at most ${String(issue.maximum)})` };
    case "too_small":
      return { path: issue.path, detail: `${describeSize(actual)} is too small (at least ${String(issue.minimum)})` };
    case "invalid_format":
      return { path: issue.path, detail: `invalid value: ${serdeKind(actual)}, ${custom ?? `expected ${issue.format}`}` };
    default:
      return { path: issue.path, detail: issue.message };
  }
}

function describeSize(v: unknown): string {
  if (Array.isArray(v)) return `a sequence of ${v.length} items`;
  if (typeof v === "string") return `a string of ${v.length} characters`;
  return serdeKind(v);
}

export function zodError(error: z.ZodError, input: unknown): ApiError {
  const issue = deepest(error.issues[0]!);
  const { path, detail } = describeIssue(issue, input);
  return invalidParameters(formatPath(path), detail);
}

/** Parses or throws the 422 ApiError for the first problem. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw zodError(r.error, input);
  return r.data;
}
