import assert from "node:assert/strict";
import { test } from "node:test";
import { RefBackend } from "../../src/kernels/ref/index.js";
import { parseConfig } from "../../src/model/config.js";
import { RopeTable, ropeFrequencies } from "../../src/model/rope.js";

test("plain RoPE frequencies are base^(-2i/d)", () => {
  const f = ropeFrequencies(64, 10000, null);
  assert.equal(f.length, 32);
  assert.equal(f[0], 1);
  for (let i = 0; i < 32; i++) assert.ok(Math.abs(f[i]! - 10000 ** (-(2 * i) / 64)) < 1e-15 * Math.max(1, f[i]!));
});

test("YaRN with Flash's settings keeps dims <= 15, divides dims >= 25 by the factor, ramps between (spec §10)", () => {
  const plain = ropeFrequencies(64, 160000, null);
  const yarn = ropeFrequencies(64, 160000, { factor: 16, originalMaxPositions: 65536, betaFast: 32, betaSlow: 1 });
  for (let i = 0; i <= 15; i++) assert.equal(yarn[i], plain[i]);
  for (let i = 25; i < 32; i++) assert.ok(Math.abs(yarn[i]! - plain[i]! / 16) <= 1e-16 * plain[i]!);
  for (let i = 16; i < 25; i++) {
    const ramp = (i - 15) / 10;
    const expected = (plain[i]! / 16) * ramp + plain[i]! * (1 - ramp);
    assert.ok(Math.abs(yarn[i]! - expected) <= 1e-15 * plain[i]!, `dim ${i}`);
  }
});

test("window-only layers use rope_theta without YaRN; compressed layers compress_rope_theta with YaRN", () => {
  const cfg = parseConfig({
    model_type: "deepseek_v4", vocab_size: 16, hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 1, head_dim: 128,
    qk_rope_head_dim: 64, q_lora_rank: 128, o_groups: 1, o_lora_rank: 128, index_head_dim: 64, index_n_heads: 1, index_topk: 4,
    compress_ratios: [0, 4], sliding_window: 8, n_routed_experts: 2, num_experts_per_tok: 1, moe_intermediate_size: 128,
    compress_rope_theta: 160000, rope_theta: 10000, hc_mult: 4, hc_sinkhorn_iters: 20, hc_eps: 1e-6, rms_norm_eps: 1e-6,
    max_position_embeddings: 1024, rope_scaling: { type: "yarn", factor: 4, original_max_position_embeddings: 256, beta_fast: 32, beta_slow: 1 },
  });
  assert.deepEqual(RopeTable.forLayer(cfg, cfg.layers[0]!).freqs, ropeFrequencies(64, 10000, null));
  assert.deepEqual(RopeTable.forLayer(cfg, cfg.layers[1]!).freqs, ropeFrequencies(64, 160000, cfg.yarn));
});

test("rotation is interleaved pairs, and the inverse rotation undoes it", () => {
  const table = new RopeTable(ropeFrequencies(8, 10000, null));
  const { cos, sin } = table.angles(7);
  const b = new RefBackend();
  const x = Float64Array.from([1, 0, 0, 1, 2, 3, -1, 0.5]);
  const y = x.slice();
  b.rope(y, 0, 1, 8, cos, sin, false);
  // pair 0 rotates (1, 0) by 7 rad
  assert.ok(Math.abs(y[0]! - Math.cos(7)) < 1e-15 && Math.abs(y[1]! - Math.sin(7)) < 1e-15);
  b.rope(y, 0, 1, 8, cos, sin, true);
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(y[i]! - x[i]!) < 1e-14);
});
