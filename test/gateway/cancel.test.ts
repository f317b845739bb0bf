import assert from "node:assert/strict";
import { test } from "node:test";
import { Cancel } from "../../src/gateway/cancel.js";

test("abort runs each listener once; one removed first does not run; one added after runs at once", () => {
  const c = new Cancel();
  const calls: string[] = [];
  c.onAbort(() => calls.push("a"));
  const remove = c.onAbort(() => calls.push("b"));
  remove();
  assert.equal(c.aborted, false);
  c.abort();
  c.abort();
  assert.equal(c.aborted, true);
  c.onAbort(() => calls.push("late"));
  assert.deepEqual(calls, ["a", "late"]);
});
