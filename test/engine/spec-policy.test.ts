import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SpecPolicy } from "../../src/engine/spec-policy.js";

/** Synthetic step times: `base` ms plus `perRow` ms per row (a CPU MoE: each verify row reads its own experts). */
function measured(policy: SpecPolicy, base: number, perRow: number, rows: number[]): void {
  for (let i = 0; i < 5; i++) for (const r of rows) policy.recordStep(r, base + perRow * r);
}

const verify = (policy: SpecPolicy, k: number, accepted: number, times: number, confidence?: number[]) => {
  for (let i = 0; i < times; i++) policy.recordVerify(k, accepted, confidence);
};

describe("speculation cost model", () => {
  test("with cheap verify rows and high acceptance, one stream verifies the longest block", () => {
    const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true });
    measured(p, 10, 0.5, [1, 2, 4, 6]);
    p.recordDraft(1, 3);
    verify(p, 5, 5, 40);
    assert.equal(p.choose(1), 5);
  });

  test("a full step (many decode rows) verifies fewer drafts than a lone stream", () => {
    const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: false });
    // Rows are nearly free until the step is large, then each costs a lot.
    for (let i = 0; i < 5; i++) {
      for (const r of [1, 2, 3, 4, 6]) p.recordStep(r, 10 + 0.2 * r);
      for (const r of [16, 32, 48, 64, 96]) p.recordStep(r, 10 + 1.5 * (r - 6));
    }
    p.recordDraft(1, 0.5);
    verify(p, 3, 2, 40); // acceptance about 0.7
    const lone = p.choose(1);
    const full = p.choose(16);
    assert.ok(lone >= 3, `lone stream: ${lone}`);
    assert.ok(full < lone, `16 streams: ${full} vs ${lone}`);
  });

  test("a rarely accepted draft does not win on step times that make extra rows look free", () => {
    const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true });
    // Noise: the 2-row step timed 1% faster than the 1-row one; drafts cost nothing.
    for (let i = 0; i < 5; i++) {
      p.recordStep(1, 10);
      p.recordStep(2, 9.9);
    }
    p.recordDraft(1, 0);
    for (let i = 0; i < 20; i++) p.recordVerify(1, 0); // acceptance decays from its prior to about 0.02
    assert.equal(p.choose(1), 0);
  });

  test("drafts that are all rejected stay off even when a loaded machine inflated the plain step's time", () => {
    const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true });
    // A stale 2-row time from before drafting stopped, and 1-row steps timed in a slow moment.
    for (let i = 0; i < 5; i++) p.recordStep(2, 10);
    for (let i = 0; i < 20; i++) p.recordStep(1, 20);
    p.recordDraft(1, 1);
    verify(p, 1, 0, 30); // acceptance about 0.004
    assert.equal(p.choose(1), 0);
  });

  test("a step of more rows is never estimated cheaper than a measured step of fewer", () => {
    const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true });
    for (let i = 0; i < 5; i++) p.recordStep(2, 10);
    for (let i = 0; i < 20; i++) p.recordStep(1, 20);
    assert.ok(p.stepTime(2)! >= p.stepTime(1)!, `2 rows ${p.stepTime(2)} ms, 1 row ${p.stepTime(1)} ms`);
  });

  test("a stale cheap 2-row time does not bring back drafts accepted a few times in a hundred", () => {
    const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true });
    for (let i = 0; i < 5; i++) p.recordStep(2, 10);
    for (let i = 0; i < 20; i++) p.recordStep(1, 20);
    p.recordDraft(1, 1);
    verify(p, 1, 0, 11); // acceptance 0.5 · 0.85^11, about 0.08: above the floor on expected yield
    assert.ok(p.state().acceptance > 0.05);
    assert.equal(p.choose(1), 0);
  });

  test("when drafts are never accepted, auto verifies none and probes at doubling intervals", () => {
    const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true });
    measured(p, 10, 2, [1, 2, 6]);
    p.recordDraft(1, 0.01);
    verify(p, 1, 0, 60);
    const chosen = Array.from({ length: 16 + 32 + 1 }, () => p.choose(1));
    const probes = chosen.flatMap((k, i) => (k > 0 ? [i] : []));
    assert.deepEqual(probes, [15, 47], "one probe after 16 steps, the next after 32 more");
    assert.ok(chosen.every((k) => k <= 1));
  });

  test("a probe's single draft is reported as probing, not as drafts chosen", () => {
    const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true });
    measured(p, 10, 2, [1, 2, 6]);
    p.recordDraft(1, 0.01);
    verify(p, 1, 0, 60);
    for (let i = 0; i < 15; i++) p.choose(1);
    assert.equal(p.choose(1), 1, "the 16th step probes");
    assert.deepEqual([p.state().chosenDrafts, p.state().probing], [0, true]);
    p.choose(1);
    assert.deepEqual([p.state().chosenDrafts, p.state().probing], [0, false]);
  });

  test("a drafter that costs many steps probes less often: probes stay under 2% of the time", () => {
    const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true });
    measured(p, 4, 0.5, [1, 2]);
    p.recordDraft(1, 90); // a DSpark block at tiny dimensions: twenty steps
    verify(p, 1, 0, 60);
    const first = Array.from({ length: 3000 }, () => p.choose(1)).indexOf(1);
    // (90 + 0.5) ms of probe per 4.5 ms step at 2%: one probe per ~1006 steps.
    assert.ok(first >= 1000 && first < 1010, `first probe at step ${first}`);
  });

  test("a DSpark probe's budget counts the ring rows its sequence owes", () => {
    const setup = () => {
      const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true });
      measured(p, 40, 4, [1, 2]);
      p.recordDraft(1, 100);
      verify(p, 1, 0, 60);
      p.recordSettle(1, 128, 44 + 128 * 1.1); // settling 128 owed rows took 1.1 ms each over a plain step
      return p;
    };
    const firstProbe = (owed: number) => {
      const p = setup();
      return Array.from({ length: 3000 }, () => p.choose(1, owed)).indexOf(1);
    };
    // (4 + 100) ms of row and draft per 44 ms step at 2%: step 119; with 128 owed rows (+140.8 ms): step 279.
    assert.equal(firstProbe(0), 118);
    assert.equal(firstProbe(128), 278);
    assert.equal(setup().stepsToDraft(1, 128), 279);
    assert.ok(Math.abs(setup().state().settleMs! - 1.1) < 1e-9);
  });

  test("a probe that falls due while no sequence can take it waits for one that can", () => {
    const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true });
    measured(p, 10, 2, [1, 2, 6]);
    p.recordDraft(1, 0.01);
    verify(p, 1, 0, 60);
    const blocked = Array.from({ length: 40 }, () => p.choose(1, 0, false));
    assert.ok(blocked.every((k) => k === 0));
    assert.equal(p.choose(1), 1, "due since step 16: the first step that can probe does");
  });

  test("a settling step's time is not taken for a plain step's", () => {
    const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true });
    measured(p, 40, 4, [1, 2]);
    p.recordSettle(1, 100, 200);
    assert.equal(p.stepTime(1), 44);
    assert.equal(p.state().settleMs, 1.56);
  });

  test("steps to the next draft count down to each probe, and are 0 while drafting", () => {
    const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true });
    assert.equal(p.stepsToDraft(1), 0, "nothing measured: the first step drafts");
    measured(p, 4, 0.5, [1, 2]);
    p.recordDraft(1, 90);
    verify(p, 1, 0, 60);
    const seen: number[] = [];
    for (let i = 0; i < 1200; i++) {
      const k = p.choose(1);
      seen.push(p.stepsToDraft(1));
      if (k > 0) break;
    }
    assert.equal(seen.at(-1), 0, "a probing step is a drafting step");
    for (let i = 1; i < seen.length - 1; i++) assert.equal(seen[i], seen[i - 1]! - 1);
    assert.ok(seen[0]! > 900, `first countdown ${seen[0]}`);
  });

  test("a probe that is accepted brings drafting back", () => {
    const p = new SpecPolicy({ maxDrafts: 4, alwaysDraft: false, blockDraft: false });
    measured(p, 10, 0.5, [1, 2, 3, 5]);
    p.recordDraft(1, 0.5);
    verify(p, 1, 0, 60);
    assert.equal(p.choose(1), 0);
    verify(p, 4, 4, 30);
    assert.ok(p.choose(1) > 0);
  });

  test("an explicit drafter always drafts, a forced count is used as is", () => {
    const never = new SpecPolicy({ maxDrafts: 5, alwaysDraft: true, blockDraft: true });
    measured(never, 10, 5, [1, 2]);
    verify(never, 1, 0, 60);
    assert.equal(never.choose(1), 1);
    const forced = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true, forced: 3 });
    verify(forced, 1, 0, 60);
    assert.equal(forced.choose(8), 3);
    assert.equal(forced.trim(3, 8, [-9, -9, -9]), 3);
  });

  test("DSpark blocks are trimmed where the confidence head says the drafts will not survive", () => {
    const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true });
    measured(p, 10, 1, [1, 2, 3, 4, 5, 6]);
    p.recordDraft(1, 2);
    // Calibrated: confidence ~ acceptance.
    verify(p, 5, 3, 40, [3, 3, 3, 0, -3]);
    const sure = p.trim(5, 1, [4, 4, 4, 4, 4]);
    const doubtful = p.trim(5, 1, [4, 1, -2, -4, -6]);
    assert.equal(sure, 5);
    assert.ok(doubtful < sure && doubtful >= 1, `trimmed to ${doubtful}`);
  });

  test("step time is interpolated from measurements and never below a smaller measured step", () => {
    const p = new SpecPolicy({ maxDrafts: 5, alwaysDraft: false, blockDraft: true });
    assert.equal(p.stepTime(3), null);
    measured(p, 10, 1, [1, 5]);
    assert.ok(Math.abs(p.stepTime(3)! - 13) < 1e-9);
    assert.ok(p.stepTime(9)! >= p.stepTime(5)!);
  });
});
