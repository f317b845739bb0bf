/** The page's SSE reader: events cut anywhere by the network come out whole. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { SseParser } from "../../web/src/sse.js";

const stream = 'data: {"a":1}\n\n: keep-alive\n\ndata: {"b":2}\r\n\r\nevent: ping\ndata: x\ndata: y\n\ndata: [DONE]\n\n';

test("events come out whole however the text is cut", () => {
  const whole = new SseParser().push(stream);
  assert.deepEqual(whole, [
    { event: "message", data: '{"a":1}' },
    { event: "message", data: '{"b":2}' },
    { event: "ping", data: "x\ny" },
    { event: "message", data: "[DONE]" },
  ]);
  for (let cut = 1; cut < stream.length; cut++) {
    const p = new SseParser();
    assert.deepEqual([...p.push(stream.slice(0, cut)), ...p.push(stream.slice(cut))], whole, `cut at ${cut}`);
  }
});

test("an event waits for its blank line", () => {
  const p = new SseParser();
  assert.deepEqual(p.push('data: {"a":1}\n'), []);
  assert.deepEqual(p.push("\n"), [{ event: "message", data: '{"a":1}' }]);
});
