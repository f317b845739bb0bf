import assert from "node:assert/strict";
import { test } from "node:test";
import { parsePyJson, pyFloatRepr, pyJsonDumps, PyJsonError } from "../../src/text/pyjson.js";

// Expected strings were produced by CPython's json.loads / json.dumps(ensure_ascii=False).
test("loads then dumps round-trips as Python does", () => {
  const src = '{"b": 1, "10": [1.0, -0.0, 1e400, 12345678901234567890123, 0.1, 1e-7, 123e-2], "a": {"x": "\\u00e9\\n\\u0007/\\ud83d\\ude00"}, "b": 2}';
  assert.equal(pyJsonDumps(parsePyJson(src)), '{"b": 2, "10": [1.0, -0.0, Infinity, 12345678901234567890123, 0.1, 1e-07, 1.23], "a": {"x": "é\\n\\u0007/😀"}}');
});

test("float repr follows Python's short repr", () => {
  const cases: Array<[number, string]> = [
    [1e16, "1e+16"],
    [9999999999999998, "9999999999999998.0"],
    [1e-4, "0.0001"],
    [0.00001234, "1.234e-05"],
    [3e21, "3e+21"],
    [2.5, "2.5"],
    [100, "100.0"],
    [-0, "-0.0"],
  ];
  for (const [x, s] of cases) assert.equal(pyFloatRepr(x), s);
});

test("plain JS values dump with Python separators", () => {
  assert.equal(pyJsonDumps({ a: [1, 2.5, null, true], s: "q\"\\\t", n: undefined }), '{"a": [1, 2.5, null, true], "s": "q\\"\\\\\\t"}');
});

test("rejects what Python rejects", () => {
  for (const bad of ["{", "[1,]", "{'a': 1}", '"\u0001"', "01", "1 2", '{"a" 1}']) {
    assert.throws(() => parsePyJson(bad), PyJsonError, bad);
  }
  assert.equal(pyJsonDumps(parsePyJson("-Infinity")), "-Infinity");
});
