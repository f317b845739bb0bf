import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { decodeOptionsFromArgs, runDecodeBench } from "../../bench/decode.js";
import { nativeBackendStatus } from "../../src/kernels/index.js";

// The benchmark's output is an interface (tools read --json): check its shape on a tiny preset.
const cache = mkdtempSync(join(tmpdir(), "dsv4-bench-"));
process.env.DSV4_CACHE_DIR = cache;
after(() => rmSync(cache, { recursive: true, force: true }));

test("bench decode reports tokens/s, bytes per token and the fraction of the ceiling", async () => {
  const backend = nativeBackendStatus().available ? "native" : "ref";
  const r = await runDecodeBench({ preset: "micro", backend, prefillTokens: 6, decodeTokens: 3, probeBytes: 64 * 2 ** 20 });
  assert.equal(r.backend, backend);
  assert.equal(r.preset, "micro");
  assert.equal(r.prompt_tokens, 6);
  assert.ok(r.decode_tok_s > 0 && r.prefill_tok_s > 0 && r.prefill_all_rows_tok_s! > 0);
  // Every decode step multiplies with the head at least: vocab x dim bf16.
  assert.ok(r.bytes_per_token > 1024 * 128 * 2, `bytes per token ${r.bytes_per_token}`);
  if (r.bandwidth_gbs !== null) {
    assert.ok(r.bandwidth_gbs > 0);
    assert.ok(Math.abs(r.fraction_of_ceiling! - (r.decode_tok_s * r.bytes_per_token) / (r.bandwidth_gbs * 1e9)) < 1e-9);
  }
});

test("bench decode: --prompt N sets the prompt length (--prefill N is the same option)", () => {
  const opts = (args: Record<string, string>) => decodeOptionsFromArgs((f) => args[f], () => false);
  assert.equal(opts({ prompt: "256" }).prefillTokens, 256);
  assert.equal(opts({ prefill: "32" }).prefillTokens, 32);
  assert.equal(opts({}).prefillTokens, undefined);
  assert.throws(() => opts({ prompt: "8", prefill: "8" }), /same option/);
  assert.throws(() => opts({ prompt: "0" }), /positive integer/);
});
