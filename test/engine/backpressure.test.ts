/**
 * Backpressure (issue 11): a caller that stops reading its events pauses its own sequence
 * while the others go on; one that stays stuck past readerTimeoutMs is cancelled.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { EngineError } from "../../src/engine/errors.js";
import type { EngineOptions, Generation, GenerationEvent } from "../../src/engine/types.js";
import { waitFor } from "../helpers/wait.js";
import { checkpoint, promptIds } from "./helpers.js";

const HIGH_WATER = 32;
// Fail, not hang, when a paused sequence is never resumed or cancelled.
const LIMIT = { timeout: 60_000 };

const isCode = (code: string) => (e: unknown) => e instanceof EngineError && e.code === code;

/** Starts iterating, so the caller counts as a reader, and takes only the first event. */
async function attach(gen: Generation): Promise<AsyncIterator<GenerationEvent>> {
  const it = gen[Symbol.asyncIterator]();
  await it.next();
  return it;
}

async function readAll(it: AsyncIterator<GenerationEvent>): Promise<GenerationEvent[]> {
  const events: GenerationEvent[] = [];
  for (let r = await it.next(); !r.done; r = await it.next()) events.push(r.value);
  return events;
}

const tokenIds = (events: GenerationEvent[]) => events.flatMap((e) => (e.type === "token" ? [e.id] : []));

describe("backpressure: slow and stuck readers", async () => {
  // The default model's preset: real tokenizer, so each token also yields parser deltas.
  const dir = await checkpoint("tiny");
  const load = (options: EngineOptions = {}) =>
    Engine.load(dir, { prefixCache: { enabled: false }, speculative: { enabled: false }, readerHighWaterEvents: HIGH_WATER, ...options });

  test("a generation whose events are not read stops at its high-water mark while a read one completes", LIMIT, async () => {
    const produced = new Map<string, number>();
    const engine = await load({ logitsProcessor: ({ id }) => void produced.set(id, (produced.get(id) ?? 0) + 1) });
    try {
      const unread = engine.generate({ id: "unread", prompt_tokens: promptIds(12, 1), max_tokens: 400, temperature: 0 });
      await attach(unread);
      const read = engine.generate({ id: "read", prompt_tokens: promptIds(12, 2), max_tokens: 300, temperature: 0 });
      const events: GenerationEvent[] = [];
      for await (const e of read) events.push(e);
      assert.equal(tokenIds(events).length, 300);
      assert.equal((await read.result()).finish_reason, "length");
      // Every token is at least one event, so a paused sequence has at most HIGH_WATER tokens
      // (prompt_tokens output is content: a token and usually a content delta each).
      const made = produced.get("unread") ?? 0;
      assert.ok(made >= HIGH_WATER / 4 && made <= HIGH_WATER, `the unread generation made ${made} tokens while the read one made 300`);
      const m = engine.metrics();
      assert.equal(m.reader_blocked_sequences, 1);
      assert.equal(m.active_sequences, 1, "a paused sequence keeps its slot");
      assert.ok(m.state_bytes_in_use > 0, "and its state");
      unread.cancel();
      await assert.rejects(unread.result(), isCode("aborted"));
    } finally {
      await engine.dispose();
    }
  });

  test("once read again, a paused generation completes with the tokens of an undisturbed greedy run", LIMIT, async () => {
    const engine = await load();
    try {
      const request = { prompt_tokens: promptIds(12, 3), max_tokens: 200, temperature: 0 };
      // A caller that only awaits result() reads no events and is never paused.
      const alone = await engine.generate(request).result();
      assert.equal(alone.tokens.length, 200);
      const gen = engine.generate(request);
      const it = await attach(gen);
      await waitFor(() => engine.metrics().reader_blocked_sequences === 1, 10_000, "the unread generation to pause");
      const events = await readAll(it);
      assert.deepEqual(tokenIds(events), alone.tokens);
      assert.deepEqual((await gen.result()).tokens, alone.tokens);
      assert.equal(events.at(-1)?.type, "finish");
    } finally {
      await engine.dispose();
    }
  });

  test("a reader stuck past readerTimeoutMs is cancelled and its slot goes to the next request", LIMIT, async () => {
    const engine = await load({ readerTimeoutMs: 200, maxConcurrentSequences: 1 });
    try {
      const stuck = engine.generate({ prompt_tokens: promptIds(12, 4), max_tokens: 400, temperature: 0 });
      const it = await attach(stuck);
      // Waits for the only slot: it runs once the stuck one is cancelled.
      const next = engine.generate({ prompt_tokens: promptIds(12, 5), max_tokens: 5, temperature: 0 });
      await assert.rejects(stuck.result(), (e: unknown) => {
        assert.ok(isCode("reader_timeout")(e), String(e));
        assert.match((e as Error).message, /its reader took none of the \d+ events waiting for 0\.2 s .*readerTimeoutMs.*--reader-timeout/);
        return true;
      });
      // The events made before the timeout are still delivered, then the error.
      let delivered = 0;
      await assert.rejects(async () => {
        for (let r = await it.next(); !r.done; r = await it.next()) delivered++;
      }, isCode("reader_timeout"));
      assert.ok(delivered >= HIGH_WATER - 1, `${delivered} events delivered before the error`);
      assert.equal((await next.result()).tokens.length, 5);
      const m = engine.metrics();
      assert.equal(m.active_sequences, 0);
      assert.equal(m.reader_blocked_sequences, 0);
      assert.equal(m.state_bytes_in_use, 0);
      assert.equal(m.requests_cancelled_total, 1);
    } finally {
      await engine.dispose();
    }
  });

  test("while every sequence waits for its reader the engine sleeps, and wakes when one reads", LIMIT, async () => {
    const engine = await load({ readerTimeoutMs: Infinity });
    try {
      const gen = engine.generate({ prompt_tokens: promptIds(12, 6), max_tokens: 100, temperature: 0 });
      const it = await attach(gen);
      await waitFor(() => engine.metrics().reader_blocked_sequences === 1, 10_000, "the unread generation to pause");
      const cpu = process.cpuUsage();
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 300));
      const used = process.cpuUsage(cpu);
      const cpuMs = (used.user + used.system) / 1000;
      const wallMs = performance.now() - t0;
      // A loop spinning on setImmediate burns a whole core; a parked one next to nothing.
      assert.ok(cpuMs < wallMs / 2, `${cpuMs.toFixed(0)} ms of CPU in ${wallMs.toFixed(0)} ms with nothing to run`);
      assert.equal(engine.metrics().active_sequences, 1, "an infinite timeout never cancels");
      assert.equal(tokenIds(await readAll(it)).length, 100);
    } finally {
      await engine.dispose();
    }
  });
});
