import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { RefBackend } from "../../src/kernels/ref/index.js";
import { writeTinyCheckpoint } from "../../src/tiny/tiny.js";
import { Dsv4Model } from "../../src/model/transformer.js";

// Configurations other than tiny-a (other dims, rope dims, ratios, windows, top-k, expert
// dtypes and hash-layer counts): the per-token semantics must hold on every one of them.
const PRESETS: Array<{ preset: string; tokens: number }> = [
  { preset: "micro", tokens: 40 },
  { preset: "small-fp8experts", tokens: 72 },
  { preset: "small-nohash", tokens: 140 },
];

const root = mkdtempSync(join(tmpdir(), "dsv4-consistency-"));
after(() => rmSync(root, { recursive: true, force: true }));

function tokensFor(vocab: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + 13) % vocab);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

for (const { preset, tokens: T } of PRESETS) {
  describe(`preset ${preset}`, async () => {
    const dir = join(root, preset);
    await writeTinyCheckpoint(dir, { preset, seed: 3 });
    const model = Dsv4Model.load(dir, { backend: new RefBackend() });
    after(() => model.close());
    const ids = tokensFor(model.cfg.vocabSize, T);

    const decodeSeq = model.newSequence();
    const decoded = ids.map((t) => Float64Array.from(model.forward([{ seq: decodeSeq, tokens: [t] }])[0]!.logits[0]!));

    test("logits are finite, spread over the vocabulary, and depend on the earlier tokens", () => {
      for (const l of decoded) {
        assert.ok(l.every(Number.isFinite));
        assert.ok(Math.max(...l) - Math.min(...l) > 1e-3, "logits nearly constant over the vocabulary");
      }
      // The same tokens after a different first token: attention must carry the difference.
      const seq = model.newSequence();
      const changed = [(ids[0]! + 1) % model.cfg.vocabSize, ...ids.slice(1, 6)];
      const l = model.forward([{ seq, tokens: changed }], { logits: "all" })[0]!.logits;
      for (let t = 1; t < 6; t++) assert.ok(maxDiff(l[t]!, decoded[t]!) > 1e-9, `position ${t} ignores token 0`);
    });

    test("prefill in uneven chunks equals token-by-token decode", () => {
      const seq = model.newSequence();
      const got: Float64Array[] = [];
      for (let i = 0, c = 1; i < T; i += c, c = (c * 3) % 17 + 1) {
        for (const l of model.forward([{ seq, tokens: ids.slice(i, i + c) }], { logits: "all" })[0]!.logits) got.push(Float64Array.from(l));
      }
      assert.equal(got.length, T);
      got.forEach((l, t) => assert.ok(maxDiff(l, decoded[t]!) <= 1e-12, `position ${t}: ${maxDiff(l, decoded[t]!)}`));
    });

    test("rows without output skip the last layer's output but leave the same state", () => {
      // logits "last" lets the last layer drop every row but one after its state update; a
      // trace keeps all rows, so the two runs differ only in that pruning.
      const pruned = model.newSequence();
      const full = model.newSequence();
      const cut = T - 3;
      const lp = model.forward([{ seq: pruned, tokens: ids.slice(0, cut) }], { logits: "last" })[0]!.logits;
      const lf = model.forward([{ seq: full, tokens: ids.slice(0, cut) }], { logits: "last", trace: {} })[0]!.logits;
      assert.equal(lp.length, 1);
      assert.equal(maxDiff(lp[0]!, lf[0]!), 0);
      assert.ok(maxDiff(lp[0]!, decoded[cut - 1]!) <= 1e-12);
      for (let t = cut; t < T; t++) {
        const a = model.forward([{ seq: pruned, tokens: [ids[t]!] }])[0]!.logits[0]!;
        const b = model.forward([{ seq: full, tokens: [ids[t]!] }])[0]!.logits[0]!;
        assert.equal(maxDiff(a, b), 0, `position ${t}`);
      }
    });

    test("output rows interleaved with pruned rows come back in their own requests", () => {
      const a = model.newSequence();
      const b = model.newSequence();
      const c = model.newSequence();
      const [ra, rb, rc] = model.forward(
        [
          { seq: a, tokens: ids.slice(0, 5) },
          { seq: b, tokens: ids.slice(0, 4), logits: "all", residual: "last" },
          { seq: c, tokens: ids.slice(0, 6), logits: "none" },
        ],
        { logits: "last" },
      );
      assert.equal(ra!.logits.length, 1);
      assert.ok(maxDiff(ra!.logits[0]!, decoded[4]!) <= 1e-12);
      assert.equal(rb!.logits.length, 4);
      rb!.logits.forEach((l, t) => assert.ok(maxDiff(l, decoded[t]!) <= 1e-12, `position ${t}`));
      assert.equal(rb!.residual.length, 1);
      assert.equal(rc!.logits.length, 0);
      const next = model.forward([{ seq: c, tokens: [ids[6]!] }])[0]!.logits[0]!;
      assert.ok(maxDiff(next, decoded[6]!) <= 1e-12);
    });

    test("two sequences batched in one step equal each run alone", () => {
      const a = model.newSequence();
      const b = model.newSequence();
      const other = ids.map((t) => (t + 1) % model.cfg.vocabSize).slice(0, 9);
      const [ra, rb] = model.forward([{ seq: a, tokens: ids.slice(0, 12) }, { seq: b, tokens: other }], { logits: "all" });
      ra!.logits.forEach((l, t) => assert.ok(maxDiff(l, decoded[t]!) <= 1e-12));
      const alone = model.newSequence();
      const rAlone = model.forward([{ seq: alone, tokens: other }], { logits: "all" })[0]!;
      rb!.logits.forEach((l, t) => assert.ok(maxDiff(l, rAlone.logits[t]!) <= 1e-12));
    });

    test("compressed rows appear exactly when their window completes", () => {
      const seq = model.newSequence();
      for (let t = 0; t < T; t++) {
        model.forward([{ seq, tokens: [ids[t]!] }], { logits: "none" });
        model.cfg.layers.forEach((layer, L) => {
          const st = seq.layers[L]!;
          const expected = layer.compressRatio ? Math.floor((t + 1) / layer.compressRatio) : 0;
          assert.equal(st.compressor?.rows.count ?? 0, expected, `layer ${L} after position ${t}`);
          if (st.indexer) assert.equal(st.indexer.rows.count, expected);
        });
      }
    });

    test("snapshot and restore give identical continuations", () => {
      const seq = model.newSequence();
      const cut = Math.floor(T / 2) + 1;
      model.forward([{ seq, tokens: ids.slice(0, cut) }], { logits: "none" });
      const snap = seq.snapshot();
      const first = model.forward([{ seq, tokens: ids.slice(cut) }], { logits: "all" })[0]!.logits.map((l) => Float64Array.from(l));
      seq.restore(snap);
      assert.equal(seq.length, cut);
      const again = model.forward([{ seq, tokens: ids.slice(cut) }], { logits: "all" })[0]!.logits;
      again.forEach((l, i) => assert.equal(maxDiff(l, first[i]!), 0));
      first.forEach((l, i) => assert.ok(maxDiff(l, decoded[cut + i]!) <= 1e-12));
    });

    test("MTP runs on its own incremental state: batched equals alone, and its token matters", () => {
      // Three sequences with the same history; a and c are fed the same MTP inputs (a batched
      // beside b, c alone), b a different token.
      const [a, b, c] = [model.newSequence(), model.newSequence(), model.newSequence()];
      const out = model.forward([{ seq: a, tokens: ids.slice(0, 10) }], { logits: "none", residual: "all" })[0]!;
      model.forward([{ seq: b, tokens: ids.slice(0, 10) }, { seq: c, tokens: ids.slice(0, 10) }], { logits: "none" });
      for (let i = 0; i < 9; i++) {
        const hidden = out.residual[i]!;
        const [oa, ob] = model.mtpForward([{ seq: a, hidden, token: ids[i + 1]! }, { seq: b, hidden, token: (ids[i + 1]! + 1) % model.cfg.vocabSize }]);
        const [oc] = model.mtpForward([{ seq: c, hidden, token: ids[i + 1]! }]);
        assert.ok(oa!.logits!.every(Number.isFinite));
        assert.ok(maxDiff(oa!.logits!, oc!.logits!) <= 1e-12, `step ${i}: batched MTP differs from alone`);
        assert.ok(maxDiff(oa!.logits!, ob!.logits!) > 1e-9, `step ${i}: MTP ignores its token`);
      }
      assert.equal(a.mtpLength, 9);
    });

    test("MTP: a sequence's several positions in one call equal one call each", () => {
      const [a, b, c] = [model.newSequence(), model.newSequence(), model.newSequence()];
      const out = model.forward([{ seq: a, tokens: ids.slice(0, 6) }], { logits: "none", residual: "all" })[0]!;
      model.forward([{ seq: b, tokens: ids.slice(0, 6) }, { seq: c, tokens: ids.slice(0, 6) }], { logits: "none" });
      // a: positions 0-3 one call each; b: all four in one call, the first three state-only,
      // beside c's single position (the rows of a call take each sequence's next positions).
      const alone = [0, 1, 2, 3].map((i) => model.mtpForward([{ seq: a, hidden: out.residual[i]!, token: ids[i + 1]! }])[0]!);
      const batched = model.mtpForward([
        ...[0, 1, 2].map((i) => ({ seq: b, hidden: out.residual[i]!, token: ids[i + 1]!, logits: false })),
        { seq: c, hidden: out.residual[0]!, token: ids[1]! },
        { seq: b, hidden: out.residual[3]!, token: ids[4]! },
      ]);
      assert.deepEqual(batched.slice(0, 3), [0, 1, 2].map(() => ({ logits: null, residual: null })));
      assert.equal(maxDiff(batched[4]!.logits!, alone[3]!.logits!), 0);
      assert.equal(maxDiff(batched[4]!.residual!, alone[3]!.residual!), 0);
      assert.equal(maxDiff(batched[3]!.logits!, alone[0]!.logits!), 0);
      assert.deepEqual([a.mtpLength, b.mtpLength, c.mtpLength], [4, 4, 1]);
    });

    test("per-request logits and residual modes override the call's", () => {
      const a = model.newSequence();
      const b = model.newSequence();
      const [ra, rb] = model.forward([{ seq: a, tokens: ids.slice(0, 3), logits: "all", residual: "all" }, { seq: b, tokens: ids.slice(0, 4) }], { logits: "last" });
      assert.equal(ra!.logits.length, 3);
      assert.equal(ra!.residual.length, 3);
      assert.equal(rb!.logits.length, 1);
      assert.equal(rb!.residual.length, 0);
      assert.ok(maxDiff(ra!.logits[2]!, decoded[2]!) <= 1e-12);
      const [m1, m2] = model.mtpForward([{ seq: a, hidden: ra!.residual[0]!, token: ids[1]!, logits: false }, { seq: b, hidden: ra!.residual[0]!, token: ids[1]! }]);
      assert.equal(m1!.logits, null);
      assert.ok(m2!.logits!.every(Number.isFinite));
    });

    test("a token outside the vocabulary is refused before any state changes", () => {
      const seq = model.newSequence();
      assert.throws(() => model.forward([{ seq, tokens: [1, model.cfg.vocabSize] }]), /not in the vocabulary/);
      assert.equal(seq.length, 0);
    });
  });
}
