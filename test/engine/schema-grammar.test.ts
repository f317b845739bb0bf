/**
 * JSON Schemas as byte grammars (constraints/schema-compile.ts, schema-match.ts):
 * what compiles, what is refused and where, which texts are accepted, and the
 * shortest-completion counts the token budget relies on.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compileSchema, SchemaError } from "../../src/engine/constraints/schema-compile.js";
import { matchCanEnd, matchDone, matchStart, matchStep, minFinish, type MatchState } from "../../src/engine/constraints/schema-match.js";

/** The state after `text`, or the byte offset where it was refused. */
function feed(schema: unknown, text: string): { state: MatchState; at: number } {
  let state = matchStart(compileSchema(schema, { strict: true }));
  const bytes = new TextEncoder().encode(text);
  for (let i = 0; i < bytes.length; i++) {
    state = matchStep(state, bytes[i]!);
    if (state.length === 0) return { state, at: i };
  }
  return { state, at: -1 };
}
const accepts = (schema: unknown, text: string) => {
  const r = feed(schema, text);
  return r.at === -1 && matchCanEnd(r.state);
};

const point = { type: "object", properties: { x: { type: "integer" }, y: { type: "number" } }, required: ["x"], additionalProperties: false };

describe("schema compilation", () => {
  test("an unsupported keyword is refused with its JSON path", () => {
    const schema = { type: "object", properties: { a: { type: "string", pattern: "^x" } } };
    assert.throws(() => compileSchema(schema, { strict: true }), (e: unknown) => e instanceof SchemaError && e.path === "properties.a.pattern" && e.keyword === "pattern");
  });

  test("lenient compilation ignores what it cannot enforce", () => {
    const node = compileSchema({ type: "object", properties: { a: { type: "string", pattern: "^x", format: "regex" } }, not: {} }, { strict: false });
    assert.equal(node.kind, "object");
  });

  test("annotation keywords are accepted and ignored", () => {
    const schema = { $schema: "https://json-schema.org/draft/2020-12/schema", $id: "x", title: "T", description: "d", examples: [1], default: 1, $comment: "c", deprecated: false, readOnly: true, writeOnly: false, type: "integer" };
    assert.ok(accepts(schema, "12"));
    assert.ok(!accepts(schema, '"a"'));
  });

  test("a $ref outside the schema's own $defs/definitions is refused", () => {
    assert.throws(() => compileSchema({ $ref: "https://example.com/s.json" }, { strict: true }), SchemaError);
    assert.throws(() => compileSchema({ type: "object", properties: { a: { $ref: "#/$defs/missing" } } }, { strict: true }), SchemaError);
  });
});

describe("schema matching", () => {
  test("required properties must come before the object closes; any order", () => {
    assert.ok(accepts(point, '{"x":1}'));
    assert.ok(accepts(point, '{"y":2.5, "x":-3}'));
    assert.equal(feed(point, '{"y":2}').at, 6);
    assert.equal(feed(point, "{}").at, 1);
  });

  test("additionalProperties false: only declared names, each once", () => {
    assert.equal(feed(point, '{"z"').at, 2);
    assert.equal(feed(point, '{"x":1,"x"').at, 8);
  });

  test("additionalProperties true (the default): other names too, with any value", () => {
    assert.ok(accepts({ type: "object", properties: { x: { type: "integer" } } }, '{"other":[true,{"k":null}],"x":2}'));
  });

  test("integers have no fraction; numbers no exponent", () => {
    assert.equal(feed({ type: "integer" }, "1.5").at, 1);
    assert.ok(accepts({ type: "number" }, "-0.25"));
    assert.equal(feed({ type: "number" }, "1e5").at, 1);
  });

  test("enum and const match whole JSON values", () => {
    const e = { enum: ["a", 2, null] };
    for (const t of ['"a"', "2", "null"]) assert.ok(accepts(e, t), t);
    assert.equal(feed(e, '"b"').at, 1);
    assert.equal(feed({ const: { k: [1] } }, '{"k": [1]}').at, -1);
  });

  test("string lengths count characters, not bytes", () => {
    const s = { type: "string", minLength: 2, maxLength: 3 };
    assert.ok(accepts(s, '"日本"'));
    assert.ok(accepts(s, '"a\\nb"'));
    assert.equal(feed(s, '"a"').at, 2);
    assert.equal(feed(s, '"abcd"').at, 4);
  });

  test("array items, minItems and maxItems", () => {
    const a = { type: "array", items: { type: "boolean" }, minItems: 1, maxItems: 2 };
    assert.ok(accepts(a, "[true, false]"));
    assert.equal(feed(a, "[]").at, 1);
    assert.equal(feed(a, "[true,false,").at, 11);
    assert.equal(feed(a, "[1]").at, 1);
  });

  test("anyOf and type lists keep every branch that still fits", () => {
    const u = { anyOf: [{ type: "object", properties: { a: { type: "string" } }, required: ["a"], additionalProperties: false }, { type: "object", properties: { b: { type: "null" } }, required: ["b"], additionalProperties: false }] };
    assert.ok(accepts(u, '{"a":"x"}'));
    assert.ok(accepts(u, '{"b":null}'));
    assert.equal(feed(u, '{"c"').at, 2);
    assert.ok(accepts({ type: ["integer", "null"] }, "null"));
  });

  test("a recursive $ref decodes nested values", () => {
    const tree = { $ref: "#/$defs/node", $defs: { node: { type: "object", properties: { v: { type: "integer" }, kids: { type: "array", items: { $ref: "#/$defs/node" } } }, required: ["v"], additionalProperties: false } } };
    assert.ok(accepts(tree, '{"v":1,"kids":[{"v":2,"kids":[{"v":3}]}]}'));
    assert.equal(minFinish(matchStart(compileSchema(tree, { strict: true }))), '{"v":0}'.length);
  });

  test("no whitespace before the value, one blank at most between tokens", () => {
    assert.equal(feed(point, ' {"x":1}').at, 0);
    assert.ok(accepts(point, '{"x": 1, "y": 2}'));
    assert.equal(feed(point, '{"x":  1}').at, 6);
  });

  test("an object value is done at its closing brace; nothing may follow", () => {
    const r = feed(point, '{"x":1}');
    assert.ok(matchDone(r.state));
    assert.equal(matchStep(r.state, 0x20).length, 0);
  });

  test("minFinish is the length of the shortest completion, at every prefix", () => {
    const schema = { type: "object", properties: { name: { type: "string", minLength: 2 }, tags: { type: "array", items: { enum: ["xy"] }, minItems: 1 } }, required: ["name", "tags"], additionalProperties: false };
    const full = '{"name":"ab","tags":["xy"]}';
    for (let n = 0; n <= full.length; n++) {
      const r = feed(schema, full.slice(0, n));
      assert.equal(r.at, -1);
      assert.ok(minFinish(r.state) <= full.length - n, `prefix ${JSON.stringify(full.slice(0, n))}`);
    }
    assert.equal(minFinish(matchStart(compileSchema(schema, { strict: true }))), full.length);
    assert.equal(minFinish(feed(schema, '{"name":"').state), 'ab","tags":["xy"]}'.length);
  });
});
