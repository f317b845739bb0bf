import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Rng } from "../../src/engine/rng.js";
import { argmax, drawFrom, sampleToken, samplingProbs, tokenLogprobs, type SamplingParams } from "../../src/engine/sampler.js";
import { judgeDraft } from "../../src/engine/speculative.js";

const LOGITS = Float64Array.from([2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0, 0.25, 1.25]);
const params = (p: Partial<SamplingParams>): SamplingParams => ({ temperature: 1, topP: 1, topK: 0, minP: 0, ...p });

function softmax(x: ArrayLike<number>, t = 1): number[] {
  const m = Array.from(x).reduce((a, b) => Math.max(a, b), -Infinity);
  const e = Array.from(x, (v) => Math.exp((v - m) / t));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Pearson chi-square of counts against expected probabilities (cells with p = 0 must be empty). */
function chiSquare(counts: number[], probs: ArrayLike<number>, n: number): { chi2: number; dof: number } {
  let chi2 = 0;
  let dof = -1;
  for (let i = 0; i < counts.length; i++) {
    const p = probs[i]!;
    if (p === 0) {
      assert.equal(counts[i], 0, `token ${i} is filtered out but was drawn`);
      continue;
    }
    const e = n * p;
    chi2 += (counts[i]! - e) ** 2 / e;
    dof++;
  }
  return { chi2, dof };
}

/** A generous 99.9% bound: mean dof, sd sqrt(2 dof). */
const chiBound = (dof: number) => dof + 4.5 * Math.sqrt(2 * dof) + 5;

describe("sampler", () => {
  test("temperature 0 is greedy, lowest id on ties", () => {
    assert.equal(sampleToken(LOGITS, params({ temperature: 0 }), new Rng(1)), 0);
    assert.equal(argmax([1, 3, 3, 2]), 1);
  });

  test("the filtered distributions are what the parameters say", () => {
    const full = softmax(LOGITS, 0.7);
    const p = samplingProbs(LOGITS, params({ temperature: 0.7 }));
    for (let i = 0; i < full.length; i++) assert.ok(Math.abs(p[i]! - full[i]!) < 1e-12);

    const k3 = samplingProbs(LOGITS, params({ topK: 3 }));
    assert.deepEqual([...k3].map((v, i) => (v > 0 ? i : -1)).filter((i) => i >= 0), [0, 1, 9]);

    // top_p: smallest prefix of the ranking whose mass reaches p.
    const sm = softmax(LOGITS);
    const tp = samplingProbs(LOGITS, params({ topP: 0.5 }));
    const kept = [...tp].map((v, i) => (v > 0 ? i : -1)).filter((i) => i >= 0);
    assert.deepEqual(kept, [0, 1]);
    assert.ok(sm[0]! < 0.5 && sm[0]! + sm[1]! >= 0.5);

    const mp = samplingProbs(LOGITS, params({ minP: 0.3 }));
    for (let i = 0; i < sm.length; i++) assert.equal(mp[i]! > 0, sm[i]! >= 0.3 * sm[0]!);
    assert.ok(Math.abs(mp.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  });

  test("top_k and top_p keep the lower ids among exactly tied tokens", () => {
    const tied = [0, 0, 0, 0, 5, 0];
    assert.deepEqual([...samplingProbs(tied, params({ topK: 3 }))].map((v) => v > 0), [true, true, false, false, true, false]);
    const flat = [1, 1, 1, 1];
    assert.deepEqual([...samplingProbs(flat, params({ topP: 0.5 }))].map((v) => v > 0), [true, true, false, false]);
  });

  test("top_k / top_p keep exactly the tokens a full sort keeps (random rows, ties, peaks, masks)", () => {
    // The reference: rank by probability (lower id first on ties), keep until k are kept or the mass reaches p.
    const reference = (logits: Float64Array, p: SamplingParams): boolean[] => {
      const probs = softmax(logits, p.temperature);
      const order = probs.map((v, i) => ({ v, i })).sort((a, b) => b.v - a.v || a.i - b.i);
      const keep = new Array<boolean>(probs.length).fill(false);
      let kept = 0;
      let mass = 0;
      for (const { v, i } of order) {
        if (p.topK > 0 && kept >= p.topK) break;
        if (p.topP < 1 && kept > 0 && mass >= p.topP) break;
        keep[i] = v > 0; // a masked token has no probability to keep
        kept++;
        mass += v;
      }
      return keep;
    };
    const rng = new Rng(5);
    for (let row = 0; row < 300; row++) {
      const V = row % 50 === 0 ? 129_280 : 1 + Math.floor(rng.next() * 3000);
      const kind = row % 4;
      const logits = Float64Array.from({ length: V }, (_, i) => {
        const u = rng.next();
        if (kind === 0) return u * 4 - 2; // flat
        if (kind === 1) return Math.round(u * 6) / 2; // few distinct values: many exact ties
        if (kind === 2) return i % 97 === 0 ? 12 + u : u * 6 - 3; // a few strong tokens
        return u < 0.3 ? -Infinity : Math.log(u) * 8; // masked tokens and a long tail
      });
      if (kind === 3) logits[0] = 0; // at least one token is allowed
      const p = params({ temperature: [0.05, 0.7, 1, 1.5][row % 4]!, topP: rng.next() < 0.7 ? rng.next() : 1, topK: rng.next() < 0.5 ? 1 + Math.floor(rng.next() * 200) : 0 });
      if (p.topP === 1 && p.topK === 0) p.topK = 7;
      const got = [...samplingProbs(logits, p)].map((v) => v > 0);
      assert.deepEqual(got, reference(logits, p), `row ${row}: V ${V}, kind ${kind}, ${JSON.stringify(p)}`);
    }
  });

  for (const p of [params({}), params({ temperature: 0.6 }), params({ temperature: 1.3, topK: 5 }), params({ topP: 0.8 }), params({ minP: 0.2, temperature: 0.9 })]) {
    test(`a seeded sampler matches the target distribution (${JSON.stringify(p)})`, () => {
      const target = samplingProbs(LOGITS, p);
      const rng = new Rng(1234);
      const n = 40000;
      const counts = new Array<number>(LOGITS.length).fill(0);
      for (let i = 0; i < n; i++) counts[sampleToken(LOGITS, p, rng)]!++;
      const { chi2, dof } = chiSquare(counts, target, n);
      assert.ok(chi2 < chiBound(dof), `chi2 ${chi2.toFixed(1)} with ${dof} dof`);
    });
  }

  test("same seed, same draws; another seed, other draws", () => {
    const draw = (seed: number) => {
      const r = new Rng(seed);
      return Array.from({ length: 50 }, () => sampleToken(LOGITS, params({}), r));
    };
    assert.deepEqual(draw(7), draw(7));
    assert.notDeepEqual(draw(7), draw(8));
  });

  test("logprobs: log-softmax of the logits, up to 20 alternatives in order", () => {
    const V = 100;
    const logits = Float64Array.from({ length: V }, (_, i) => Math.sin(i * 1.7) * 3);
    const sm = softmax(logits);
    const r = tokenLogprobs(logits, 5, 20);
    assert.ok(Math.abs(r.logprob - Math.log(sm[5]!)) < 1e-12);
    assert.equal(r.top.length, 20);
    const ranked = sm.map((p, i) => ({ i, p })).sort((a, b) => b.p - a.p).slice(0, 20);
    assert.deepEqual(r.top.map((t) => t.id), ranked.map((x) => x.i));
    for (const t of r.top) assert.ok(Math.abs(t.logprob - Math.log(sm[t.id]!)) < 1e-12);
  });

  test("speculative rejection sampling preserves the target distribution", () => {
    const p = params({ temperature: 0.8 });
    const target = samplingProbs(LOGITS, p);
    // A deliberately different draft distribution.
    const draftLogits = Float64Array.from(LOGITS, (v, i) => (i % 3 === 0 ? v + 1.5 : -v));
    const q = samplingProbs(draftLogits, p);
    const rng = new Rng(99);
    const n = 40000;
    const counts = new Array<number>(LOGITS.length).fill(0);
    let accepted = 0;
    for (let i = 0; i < n; i++) {
      const d = drawFrom(q, rng);
      const v = judgeDraft({ tokens: [d], q: [q], confidence: null }, 0, LOGITS, p, rng);
      if (v.accepted) accepted++;
      counts[v.accepted ? d : v.token]!++;
    }
    const { chi2, dof } = chiSquare(counts, target, n);
    assert.ok(chi2 < chiBound(dof), `chi2 ${chi2.toFixed(1)} with ${dof} dof`);
    // Acceptance probability is sum_i min(p_i, q_i).
    const expected = [...target].reduce((s, t, i) => s + Math.min(t, q[i]!), 0);
    assert.ok(Math.abs(accepted / n - expected) < 0.02, `acceptance ${accepted / n} vs ${expected}`);
  });
});
