import assert from "node:assert/strict";
import { test } from "node:test";
import { Utf8StreamDecoder } from "../../src/text/byte-level.js";

const feed = (chunks: number[][]) => {
  const d = new Utf8StreamDecoder();
  return chunks.map((c) => d.push(Uint8Array.from(c))).join("") + d.flush();
};

test("a character split across pushes comes out whole, once complete", () => {
  const bytes = [...Buffer.from("a😀é温", "utf8")];
  const d = new Utf8StreamDecoder();
  const out = bytes.map((b) => d.push(Uint8Array.of(b)));
  assert.equal(out.join(""), "a😀é温");
  assert.ok(out.every((piece) => !piece.includes("\uFFFD")));
});

test("bytes that can never form a character are dropped, not turned into U+FFFD", () => {
  assert.equal(feed([[0x61, 0xff, 0x62]]), "ab");
  assert.equal(feed([[0x80, 0x61]]), "a"); // stray continuation
  assert.equal(feed([[0xe6, 0x61]]), "a"); // lead byte cut short by ASCII
  assert.equal(feed([[0xc0, 0xaf, 0x61]]), "a"); // overlong lead
  assert.equal(feed([[0xed, 0xa0, 0x80]]), ""); // surrogate
  assert.equal(feed([[0x61, 0xe6, 0xb8]]), "a"); // dangling partial at the end
});

test("a U+FFFD the model spells out in valid bytes is kept", () => {
  assert.equal(feed([[0xef, 0xbf], [0xbd]]), "\uFFFD");
});

test("an aborted sequence does not swallow the lead byte that follows it", () => {
  assert.equal(feed([[0xe6, 0xc3, 0xa9]]), "é");
});
