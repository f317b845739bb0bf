/**
 * The scheduler's step budget: decode rows first, prefill chunks sized in time next to them
 * (step-cost.ts), whole budget when nothing decodes; preemption takes the newest (or, by priority, the lowest priority).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { PROMPT_LOGPROBS_CHUNK, Scheduler, type SchedulerHooks } from "../../src/engine/scheduler.js";
import type { Sequence } from "../../src/engine/sequence.js";
import { StepCost } from "../../src/engine/step-cost.js";

/** Just the fields the scheduler reads. */
function fakeSeq(id: number, prompt: number, decoding = false, priority = 0): Sequence {
  const context = Array.from({ length: prompt }, (_, i) => i);
  return {
    id: String(id), context, prefilled: decoding ? prompt : 0, finished: false, readerBlocked: false, state: { id, length: decoding ? prompt : 0, bytes: 0 },
    reservedBytes: 0, reservedTokens: 0, promptLength: prompt, req: { maxTokens: 1000, useCache: true, promptTokens: context, priority },
    get contextLength(): number {
      return (this as unknown as Sequence).context.length;
    },
    get prefilling(): boolean {
      const me = this as unknown as Sequence;
      return me.prefilled < me.context.length;
    },
  } as unknown as Sequence;
}

const hooks = (over: Partial<SchedulerHooks> = {}): SchedulerHooks => ({
  bytesFor: (t) => t, decodeWidth: () => 1, start: () => undefined, preempt: (s) => ((s as { state: unknown }).state = null), ...over,
});

const config = { maxRunning: 16, maxQueued: 16, stateBudgetBytes: 1e9, maxBatchTokens: 2048, prefillChunk: Infinity, blockTokens: 64, reserveTokens: 4096, prefillLatencyFactor: 2 };

describe("scheduler", () => {
  test("step cost: decode-only time per row bucket, prefill time per token next to decoding", () => {
    const c = new StepCost();
    assert.equal(c.prefillBudget(4, 2, 64), 64, "nothing measured: the fallback");
    c.record(4, 0, 100);
    c.record(4, 50, 200);
    assert.equal(c.decodeStepMs(4), 100);
    assert.equal(c.prefillTokenMs, 2);
    assert.equal(c.prefillBudget(4, 2, 64), 42, "0.85 x (2 - 1) x 100 ms / 2 ms per token");
    assert.equal(c.prefillBudget(4, 3, 64), 85);
    const alone = new StepCost();
    alone.record(4, 0, 100);
    alone.record(0, 2048, 2048);
    assert.equal(alone.prefillBudget(4, 2, 64), 64, "prefill-only steps do not make the first guess larger");
    const costly = new StepCost();
    costly.record(16, 0, 240);
    costly.record(0, 4096, 4096 * 6.8);
    assert.equal(costly.prefillBudget(16, 1.5, 64), 15, "a first guess the prefill-only cost says is too long shrinks: 0.85 x 0.5 x 240 ms / 6.8 ms");
  });

  test("a prompt whose logprobs are wanted goes in chunks of PROMPT_LOGPROBS_CHUNK (a row of logits per position)", () => {
    const s = new Scheduler(config);
    const seq = fakeSeq(1, 5000);
    (seq.req as { promptLogprobs: number }).promptLogprobs = 0;
    s.enqueue(seq);
    assert.equal(s.schedule(hooks()).prefill[0]!.tokens.length, PROMPT_LOGPROBS_CHUNK);
  });

  test("alone, a long prompt takes the whole token budget in one chunk, ending on a block boundary", () => {
    const s = new Scheduler(config);
    s.enqueue(fakeSeq(1, 5000));
    const plan = s.schedule(hooks());
    assert.equal(plan.prefill.length, 1);
    assert.equal(plan.prefill[0]!.tokens.length, 2048);
    assert.equal(plan.prefill[0]!.final, false);
  });

  test("next to decoding streams, the prompt's chunk is what the latency budget allows", () => {
    const s = new Scheduler(config);
    for (let i = 0; i < 4; i++) s.enqueue(fakeSeq(i, 10, true));
    s.enqueue(fakeSeq(9, 5000));
    s.cost.record(4, 0, 100);
    s.cost.record(4, 64, 228); // 2 ms per prompt token next to 4 rows
    const plan = s.schedule(hooks());
    assert.equal(plan.decode.length, 4);
    assert.equal(plan.prefill[0]!.tokens.length, 42, "0.85 x (2 - 1) x 100 ms / 2 ms, not block-aligned below one block");
  });

  test("a sequence whose reservation cannot grow preempts the newest running one", () => {
    const s = new Scheduler({ ...config, stateBudgetBytes: 100, reserveTokens: 10 });
    const a = fakeSeq(1, 30, true);
    const b = fakeSeq(2, 30, true);
    s.enqueue(a);
    s.enqueue(b);
    const preempted: Sequence[] = [];
    s.schedule(hooks({ preempt: (seq) => preempted.push(seq) }));
    assert.deepEqual(s.running, [a, b]);
    (a.state as { length: number }).length = 60; // a outgrows its reservation of 40 tokens by more than the free 20
    s.schedule(hooks({ preempt: (seq) => preempted.push(seq) }));
    assert.deepEqual(preempted, [b]);
    assert.deepEqual(s.running, [a]);
    assert.deepEqual(s.waiting, [b], "the preempted sequence waits at the head of the queue");
  });
});

describe("scheduler, priority policy", () => {
  const byPriority = { ...config, policy: "priority" as const };
  const ids = (list: readonly Sequence[]) => list.map((q) => q.id);
  /** Enqueues `seqs` and runs one schedule; returns the sequences it preempted. */
  const scheduled = (s: Scheduler, ...seqs: Sequence[]): Sequence[] => {
    const preempted: Sequence[] = [];
    seqs.forEach((q) => s.enqueue(q));
    s.schedule(hooks({ preempt: (q) => preempted.push(q) }));
    return preempted;
  };

  test("the queue admits by priority (lower first), then by arrival", () => {
    const s = new Scheduler({ ...byPriority, maxRunning: 2 });
    scheduled(s, fakeSeq(1, 8, false, 5), fakeSeq(2, 8, false, 0), fakeSeq(3, 8, false, 5), fakeSeq(4, 8, false, -1));
    assert.deepEqual(ids(s.running), ["4", "2"]);
    assert.deepEqual(ids(s.waiting), ["1", "3"]);
  });

  test("with every slot taken, a higher-priority arrival preempts the lowest-priority running sequence, the newest among equals", () => {
    const s = new Scheduler({ ...byPriority, maxRunning: 2 });
    scheduled(s, fakeSeq(1, 8, true, 5), fakeSeq(2, 8, true, 5));
    assert.deepEqual(ids(scheduled(s, fakeSeq(3, 8, false, 0))), ["2"]);
    assert.deepEqual(ids(s.running), ["1", "3"]);
    assert.deepEqual(ids(s.waiting), ["2"]);
  });

  test("an arrival of equal or lower priority waits for a slot", () => {
    const s = new Scheduler({ ...byPriority, maxRunning: 2 });
    scheduled(s, fakeSeq(1, 8, true, 0), fakeSeq(2, 8, true, 3));
    assert.deepEqual(scheduled(s, fakeSeq(3, 8, false, 3), fakeSeq(4, 8, false, 7)), []);
    assert.deepEqual(ids(s.waiting), ["3", "4"]);
  });

  test("an arrival is not let in at the cost of preemptions that would still not make room for it", () => {
    // The budget holds 100 bytes: 1 (priority 0) keeps 60, so preempting 2 (priority 9) cannot free enough for 3's 80.
    const s = new Scheduler({ ...byPriority, stateBudgetBytes: 100, reserveTokens: 0 });
    scheduled(s, fakeSeq(1, 60, true, 0), fakeSeq(2, 30, true, 9));
    assert.deepEqual(scheduled(s, fakeSeq(3, 80, false, 1)), []);
    assert.deepEqual(ids(s.running), ["1", "2"]);
  });

  test("a sequence that cannot grow its reservation preempts the lowest-priority one, not the newest", () => {
    const s = new Scheduler({ ...byPriority, stateBudgetBytes: 100, reserveTokens: 10 });
    const high = fakeSeq(2, 30, true, 0);
    assert.deepEqual(scheduled(s, fakeSeq(1, 30, true, 9), high), []);
    (high.state as { length: number }).length = 60;
    assert.deepEqual(ids(scheduled(s)), ["1"]);
    assert.deepEqual(ids(s.running), ["2"]);
  });

  test("a step's prompt budget goes to the most urgent prompt first", () => {
    const s = new Scheduler({ ...byPriority, maxBatchTokens: 100 });
    s.enqueue(fakeSeq(1, 300, false, 4));
    s.enqueue(fakeSeq(2, 300, false, 1));
    const plan = s.schedule(hooks());
    // 2's chunk ends on its block boundary; 1, which came first, gets what is left.
    assert.deepEqual(plan.prefill.map((w) => [w.seq.id, w.tokens.length]), [["2", 64], ["1", 36]]);
  });

  test("under fcfs the same priorities change nothing: no preemption for admission", () => {
    const s = new Scheduler({ ...config, maxRunning: 2 });
    scheduled(s, fakeSeq(1, 8, true, 5), fakeSeq(2, 8, true, 5));
    assert.deepEqual(scheduled(s, fakeSeq(3, 8, false, 0)), []);
    assert.deepEqual(ids(s.waiting), ["3"]);
  });
});
