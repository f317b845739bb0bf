import assert from "node:assert/strict";
import { test } from "node:test";
import { splitSinkhorn, type HcMix } from "../../src/model/mhc.js";
import type { HcWeights } from "../../src/model/weights.js";

function mixOf(raw: number[], iters: number): HcMix {
  const hc = 4;
  const w = { fn: null as unknown as HcWeights["fn"], base: new Float64Array(24), scale: Float64Array.of(1, 1, 1) };
  const mix: HcMix = { pre: new Float64Array(hc), post: new Float64Array(hc), comb: new Float64Array(hc * hc) };
  splitSinkhorn(raw, 0, w, hc, iters, 1e-6, mix, 0);
  return mix;
}

const raw = Array.from({ length: 24 }, (_, i) => Math.sin(i * 1.7) * 3);

test("Sinkhorn makes the comb matrix doubly stochastic after 20 iterations", () => {
  const { comb } = mixOf(raw, 20);
  for (let j = 0; j < 4; j++) {
    let row = 0, col = 0;
    for (let k = 0; k < 4; k++) {
      row += comb[j * 4 + k]!;
      col += comb[k * 4 + j]!;
    }
    assert.ok(Math.abs(row - 1) < 1e-4, `row ${j} sums to ${row}`);
    assert.ok(Math.abs(col - 1) < 1e-5, `column ${j} sums to ${col}`);
  }
});

test("one iteration is softmax over rows, +eps, then a single column normalisation", () => {
  const { comb } = mixOf(raw, 1);
  const m = Array.from({ length: 4 }, (_, j) => raw.slice(8 + 4 * j, 12 + 4 * j));
  const soft = m.map((row) => {
    const mx = Math.max(...row);
    const e = row.map((v) => Math.exp(v - mx));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s + 1e-6);
  });
  for (let k = 0; k < 4; k++) {
    const col = soft.reduce((s, row) => s + row[k]!, 0) + 1e-6;
    for (let j = 0; j < 4; j++) assert.ok(Math.abs(comb[j * 4 + k]! - soft[j]![k]! / col) < 1e-15);
  }
});

test("pre = sigmoid + eps and post = 2·sigmoid", () => {
  const { pre, post } = mixOf(raw, 20);
  for (let j = 0; j < 4; j++) {
    assert.ok(Math.abs(pre[j]! - (1 / (1 + Math.exp(-raw[j]!)) + 1e-6)) < 1e-15);
    assert.ok(Math.abs(post[j]! - 2 / (1 + Math.exp(-raw[4 + j]!))) < 1e-15);
  }
});
