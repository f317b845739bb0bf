import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { Vec } from "../../src/kernels/backend.js";
import { RefBackend } from "../../src/kernels/ref/index.js";
import { Dsv4Model, type DsparkDraft } from "../../src/model/transformer.js";
import type { SequenceState } from "../../src/model/state.js";
import { blockShapeError, captureBlock, restoreBlocks } from "../../src/model/state-blocks.js";
import { writeTinyCheckpoint } from "../../src/tiny/tiny.js";

// DSpark drafting on generated 0731 configurations other than the golden's (other stage
// counts, block sizes, ranks, windows and tap layers): drafting must not depend on how the
// committed positions reached the state (one forward, chunks, token by token, a batch).
const PRESETS: Array<{ preset: string; tokens: number }> = [
  { preset: "micro-0731", tokens: 30 },
  { preset: "tiny-0731", tokens: 40 },
];

const root = mkdtempSync(join(tmpdir(), "dsv4-dspark-"));
after(() => rmSync(root, { recursive: true, force: true }));

const tokensFor = (vocab: number, n: number) => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % vocab);

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

function sameDraft(a: DsparkDraft, b: DsparkDraft, what: string, tol = 1e-12): void {
  assert.deepEqual(a.tokens, b.tokens, what);
  a.logits.forEach((l, i) => assert.ok(maxDiff(l, b.logits[i]!) <= tol, `${what}: logits row ${i} ${maxDiff(l, b.logits[i]!)}`));
  assert.ok(maxDiff(a.confidence, b.confidence) <= tol, `${what}: confidence`);
}

for (const { preset, tokens: T } of PRESETS) {
  describe(`DSpark on preset ${preset}`, async () => {
    const dir = join(root, preset);
    await writeTinyCheckpoint(dir, { preset, seed: 5 });
    const model = Dsv4Model.load(dir, { backend: new RefBackend() });
    after(() => model.close());
    const ds = model.cfg.dspark!;
    const ids = tokensFor(model.cfg.vocabSize, T);

    // Reference: token by token, drafting after every position.
    const stepSeq = model.newSequence();
    const stepDrafts: DsparkDraft[] = [];
    const stepMainX: Vec[] = [];
    for (let t = 0; t < T - 1; t++) {
      const [o] = model.forward([{ seq: stepSeq, tokens: [ids[t]!], dspark: true, mainXLast: 1 }]);
      stepMainX.push(o!.mainX[0]!.slice() as Vec);
      stepDrafts.push(model.dsparkDraft([{ seq: stepSeq, mainX: o!.mainX[0]!, anchor: ids[t + 1]! }])[0]!);
    }

    test("the config is a DSpark one with the preset's stages and block", () => {
      assert.equal(model.cfg.drafter, "dspark");
      assert.equal(model.weights.mtp.length, ds.stages);
      assert.equal(model.cfg.window < T - 1, true, "the ring wraps within the test");
      for (const d of stepDrafts) {
        assert.equal(d.tokens.length, ds.blockSize);
        assert.equal(d.logits.length, ds.blockSize);
        assert.ok(d.confidence.every(Number.isFinite));
      }
    });

    test("prefill, then draft, equals token by token, then draft (at every prefill length)", () => {
      for (const P of [1, 2, model.cfg.window - 1, model.cfg.window, model.cfg.window + 3, T - 1]) {
        const seq = model.newSequence();
        const [o] = model.forward([{ seq, tokens: ids.slice(0, P), dspark: true, mainXLast: 1 }]);
        assert.ok(maxDiff(o!.mainX[0]!, stepMainX[P - 1]!) <= 1e-12);
        sameDraft(model.dsparkDraft([{ seq, mainX: o!.mainX[0]!, anchor: ids[P]! }])[0]!, stepDrafts[P - 1]!, `prefill ${P}`);
      }
    });

    test("verification-sized chunks (B+1 positions) keep the rings as token by token does", () => {
      const seq = model.newSequence();
      for (let at = 0; at < T - 1; at += ds.blockSize + 1) {
        const n = Math.min(ds.blockSize + 1, T - 1 - at);
        const [o] = model.forward([{ seq, tokens: ids.slice(at, at + n), dspark: true, mainXLast: n }]);
        o!.mainX.forEach((x, k) => assert.ok(maxDiff(x, stepMainX[at + k]!) <= 1e-12, `position ${at + k}`));
        const t = at + n - 1;
        sameDraft(model.dsparkDraft([{ seq, mainX: o!.mainX[n - 1]!, anchor: ids[t + 1]! }])[0]!, stepDrafts[t]!, `chunk ending at ${t}`);
      }
    });

    test("owed ring rows (dspark: defer), written by the next step, give the drafts of rings written every step", () => {
      const W = model.cfg.window;
      for (const owed of [1, 2, W - 1, W, W + 3, T - 3]) {
        const seq = model.newSequence();
        const P = T - 2 - owed;
        model.forward([{ seq, tokens: ids.slice(0, P), dspark: true }]);
        for (let t = P; t < P + owed; t++) model.forward([{ seq, tokens: [ids[t]!], dspark: "defer" }]);
        assert.equal(seq.dsparkOwed!.count, Math.min(owed, W), "only a window of positions is owed");
        const t = P + owed;
        const [o] = model.forward([{ seq, tokens: [ids[t]!], dspark: true, mainXLast: 1 }]);
        assert.equal(seq.dsparkOwed!.count, 0);
        assert.ok(maxDiff(o!.mainX[0]!, stepMainX[t]!) <= 1e-12);
        sameDraft(model.dsparkDraft([{ seq, mainX: o!.mainX[0]!, anchor: ids[t + 1]! }])[0]!, stepDrafts[t]!, `${owed} owed`);
      }
    });

    test("a draft writes the rows its sequence owes first; settling writes each ring as every step would", () => {
      const t = T - 2;
      const seq = model.newSequence();
      model.forward([{ seq, tokens: ids.slice(0, 3), dspark: true }]);
      let mainX: Vec | undefined;
      for (let p = 3; p <= t; p++) mainX = model.forward([{ seq, tokens: [ids[p]!], dspark: "defer", mainXLast: p === t ? 1 : 0 }])[0]!.mainX[0];
      assert.ok(maxDiff(mainX!, stepMainX[t]!) <= 1e-12);
      sameDraft(model.dsparkDraft([{ seq, mainX: mainX!, anchor: ids[t + 1]! }])[0]!, stepDrafts[t]!, "drafted while owing");
      assert.equal(seq.dsparkOwed!.count, 0);
      const fed = model.newSequence();
      model.forward([{ seq: fed, tokens: ids.slice(0, t + 1), dspark: true }]);
      seq.mtp.forEach((l, k) => assert.ok(maxDiff(l.window, fed.mtp[k]!.window) <= 1e-12, `stage ${k} ring`));
    });

    test("a droppable tail starts from settled rings and owes nothing (verify steps write their rows)", () => {
      const seq = model.newSequence();
      const L = T - 8;
      model.forward([{ seq, tokens: ids.slice(0, L), dspark: "defer" }]);
      assert.throws(() => seq.beginTail(4, 3), /owes DSpark ring rows; settle them first/);
      model.settleDspark([seq]);
      const undo = seq.beginTail(4, 3);
      assert.throws(() => model.forward([{ seq, tokens: [ids[L]!, 1, 2, 3], dspark: "defer" }]), /tail may be dropped/);
      model.forward([{ seq, tokens: [ids[L]!, 1, 2, 3], dspark: true }]);
      seq.endTail();
      seq.dropTail(undo, 3);
      const [o] = model.forward([{ seq, tokens: [ids[L + 1]!], dspark: true, mainXLast: 1 }]);
      sameDraft(model.dsparkDraft([{ seq, mainX: o!.mainX[0]!, anchor: ids[L + 2]! }])[0]!, stepDrafts[L + 1]!, "after the drop");
    });

    test("a snapshot or a block capture of a sequence that owes ring rows is refused until they are settled", () => {
      const seq = model.newSequence();
      model.forward([{ seq, tokens: ids.slice(0, 5), dspark: "defer" }]);
      assert.throws(() => seq.snapshot(), /owes DSpark ring rows/);
      assert.throws(() => captureBlock(seq, 0), /owes DSpark ring rows/);
      model.settleDspark([seq]);
      const block = captureBlock(seq, 0);
      const b = model.newSequence();
      restoreBlocks(b, [block]);
      const [o] = model.forward([{ seq: b, tokens: [ids[5]!], dspark: true, mainXLast: 1 }]);
      sameDraft(model.dsparkDraft([{ seq: b, mainX: o!.mainX[0]!, anchor: ids[6]! }])[0]!, stepDrafts[5]!, "restored after settling");
    });

    test("a prefix-cache chain carries the DSpark rings: restored, then one token, drafts as token by token", () => {
      const a = model.newSequence();
      const P1 = model.cfg.window + 2;
      const P2 = T - 4;
      model.forward([{ seq: a, tokens: ids.slice(0, P1), dspark: true }]);
      const first = captureBlock(a, 0);
      model.forward([{ seq: a, tokens: ids.slice(P1, P2), dspark: true }]);
      const second = captureBlock(a, P1);
      assert.equal(blockShapeError(model.cfg, second), null);
      assert.equal(second.tip!.length, model.cfg.numLayers + ds.stages);
      const b = model.newSequence();
      restoreBlocks(b, [first, second]);
      const [o] = model.forward([{ seq: b, tokens: [ids[P2]!], dspark: true, mainXLast: 1 }]);
      sameDraft(model.dsparkDraft([{ seq: b, mainX: o!.mainX[0]!, anchor: ids[P2 + 1]! }])[0]!, stepDrafts[P2]!, "restored");
      assert.match(blockShapeError(model.cfg, { ...second, tip: second.tip!.slice(0, model.cfg.numLayers) }) ?? "", /a tip of \d+ rings, the model has/);
    });

    test("two sequences drafted in one batch equal each drafted alone, and drafting changes no state", () => {
      const a = model.newSequence();
      const b = model.newSequence();
      const ta = T - 2;
      const tb = 5;
      const [oa, ob] = model.forward([
        { seq: a, tokens: ids.slice(0, ta + 1), dspark: true, mainXLast: 1 },
        { seq: b, tokens: ids.slice(0, tb + 1), dspark: true, mainXLast: 1 },
      ]);
      const [da, db] = model.dsparkDraft([
        { seq: a, mainX: oa!.mainX[0]!, anchor: ids[ta + 1]! },
        { seq: b, mainX: ob!.mainX[0]!, anchor: ids[tb + 1]! },
      ]);
      const [, oc] = model.forward([{ seq: model.newSequence(), tokens: ids.slice(0, 3), mainXLast: 1 }, { seq: model.newSequence(), tokens: ids.slice(0, 2), mainXLast: 5, tapsLast: 5 }]);
      assert.equal(oc!.mainX.length, 2, "mainXLast beyond the request's tokens gives its own positions only");
      assert.equal(oc!.taps.length, 2);
      assert.ok(maxDiff(oc!.mainX[1]!, stepMainX[1]!) <= 1e-12);
      sameDraft(da!, stepDrafts[ta]!, "sequence a");
      sameDraft(db!, stepDrafts[tb]!, "sequence b");
      assert.equal(a.length, ta + 1);
      sameDraft(model.dsparkDraft([{ seq: b, mainX: ob!.mainX[0]!, anchor: ids[tb + 1]! }])[0]!, db!, "drafting again");
    });

    test("choose is called once per draft position, in order, with the biased logits, and its picks feed the Markov chain", () => {
      const t = T - 2;
      const seq = model.newSequence();
      const [o] = model.forward([{ seq, tokens: ids.slice(0, t + 1), dspark: true, mainXLast: 1 }]);
      const calls: number[] = [];
      const picks = Array.from({ length: ds.blockSize }, (_, i) => (i * 31 + 7) % model.cfg.vocabSize);
      const seen: Float64Array[] = [];
      const [d] = model.dsparkDraft([{ seq, mainX: o!.mainX[0]!, anchor: ids[t + 1]!, choose: (i, logits) => (calls.push(i), seen.push(Float64Array.from(logits)), picks[i]!) }]);
      assert.deepEqual(calls, picks.map((_, i) => i));
      assert.deepEqual(d!.tokens, picks);
      d!.logits.forEach((l, i) => assert.equal(maxDiff(l, seen[i]!), 0));
      // Row 0 depends only on the anchor; later rows on the chosen tokens, so they differ from greedy's.
      assert.ok(maxDiff(d!.logits[0]!, stepDrafts[t]!.logits[0]!) <= 1e-12);
      const greedy = stepDrafts[t]!;
      if (greedy.tokens[0] !== picks[0]) assert.ok(maxDiff(d!.logits[1]!, greedy.logits[1]!) > 1e-6);
    });

    test("dspark on a forward of a checkpoint without DSpark, and drafting, are refused clearly", () => {
      assert.throws(() => model.mtpForward([{ seq: model.newSequence(), hidden: new Float64Array(model.cfg.hcMult * model.cfg.dim), token: 1 }]), /no April MTP block \(drafter: 0731 DSpark/);
      assert.throws(() => model.dsparkDraft([{ seq: model.newSequence(), mainX: stepMainX[0]!, anchor: 1 }]), /no committed position/);
    });
  });
}

describe("DSpark requests on an April checkpoint", async () => {
  const dir = join(root, "micro");
  await writeTinyCheckpoint(dir, { preset: "micro", seed: 5 });
  const model = Dsv4Model.load(dir, { backend: new RefBackend() });
  after(() => model.close());
  const seq: SequenceState = model.newSequence();

  test("forward with dspark and dsparkDraft name the layout found", () => {
    assert.throws(() => model.forward([{ seq, tokens: [1, 2], dspark: true }]), /no DSpark drafter \(drafter: April MTP \(1 block\)\)/);
    assert.equal(seq.length, 0);
    assert.throws(() => model.dsparkDraft([{ seq, mainX: new Float64Array(model.cfg.dim), anchor: 1 }]), /no DSpark drafter/);
  });
});
