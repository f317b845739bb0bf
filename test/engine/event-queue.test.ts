/** The generation event queue's high/low-water marks, as the engine's backpressure relies on them. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EventQueue } from "../../src/engine/event-queue.js";

describe("EventQueue backpressure", () => {
  test("a queue nobody iterates never blocks (callers that only await result())", () => {
    const q = new EventQueue<number>({ highWater: 4 });
    for (let i = 0; i < 100; i++) q.push(i);
    assert.equal(q.backlog, 100);
    assert.equal(q.blocked, false);
    assert.equal(q.blockedSince, null);
  });

  test("blocks at high water, never drops, and calls onDrain once read below low water", async () => {
    let drains = 0;
    const q = new EventQueue<number>({ highWater: 4, onDrain: () => drains++ });
    const it = q[Symbol.asyncIterator]();
    q.push(0);
    assert.deepEqual(await it.next(), { value: 0, done: false });
    const before = performance.now();
    for (let i = 1; i <= 10; i++) q.push(i);
    assert.equal(q.blocked, true);
    assert.ok(q.blockedSince! >= before);
    assert.equal(q.backlog, 10, "push past the mark still queues");
    // Low water defaults to half: reading down to 2 left unblocks.
    for (let i = 1; i <= 8; i++) assert.equal((await it.next()).value, i);
    assert.equal(drains, 0);
    assert.equal(q.blocked, true);
    assert.equal((await it.next()).value, 9);
    assert.equal(q.blocked, false);
    assert.equal(q.blockedSince, null);
    assert.equal(drains, 1);
    q.end();
    assert.deepEqual(await it.next(), { value: 10, done: false });
    assert.deepEqual(await it.next(), { value: undefined, done: true });
  });

  test("a blocked reader that still reads moves blockedSince forward: slow is not stuck", async () => {
    const q = new EventQueue<number>({ highWater: 4, lowWater: 1 });
    const it = q[Symbol.asyncIterator]();
    q.push(0);
    await it.next();
    for (let i = 1; i <= 6; i++) q.push(i);
    const first = q.blockedSince!;
    await new Promise((r) => setTimeout(r, 5));
    await it.next();
    assert.ok(q.blockedSince! > first);
  });

  test("a consumer that stops iterating unblocks the queue for good; end clears it too", async () => {
    let drains = 0;
    const q = new EventQueue<number>({ highWater: 2, onDrain: () => drains++ });
    q.push(0);
    for await (const _ of q) {
      for (let i = 1; i <= 5; i++) q.push(i);
      assert.equal(q.blocked, true);
      break;
    }
    assert.equal(q.blocked, false);
    assert.equal(drains, 1, "the engine is told to resume it");
    q.push(6);
    assert.equal(q.blocked, false);

    const ended = new EventQueue<number>({ highWater: 2 });
    const it = ended[Symbol.asyncIterator]();
    ended.push(0);
    await it.next();
    for (let i = 1; i <= 5; i++) ended.push(i);
    assert.equal(ended.blocked, true);
    ended.end(new Error("x"));
    assert.equal(ended.blocked, false);
  });
});
