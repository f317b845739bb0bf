import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { decodeOptionsFromArgs, runDecodeBench } from "../../bench/decode.js";
import { cachedPreset } from "../../bench/checkpoints.js";
import { DTYPE_BYTES } from "../../src/formats/dtypes.js";
import { Checkpoint, elementCount } from "../../src/formats/safetensors.js";
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
  // The bytes a decode token reads, bounded from the checkpoint itself (not from the
  // benchmark's own accounting): at least every matrix each token multiplies with (the
  // attention projections but wo_a, which the loader re-lays out, the router, the shared
  // expert, the head) and at most every tensor of the main model, widened to f32.
  const ckpt = Checkpoint.open(await cachedPreset("micro"));
  try {
    const bytes = (n: string) => elementCount(ckpt.info(n).shape) * DTYPE_BYTES[ckpt.info(n).dtype];
    const main = ckpt.names().filter((n) => !n.startsWith("mtp.") && n !== "embed.weight");
    const everyToken = main.filter((n) => /^head\.|\.attn\.(wq_a|wq_b|wkv)\.|\.ffn\.gate\.weight|\.shared_experts\./.test(n));
    const lower = everyToken.reduce((a, n) => a + bytes(n), 0);
    const upper = main.reduce((a, n) => a + elementCount(ckpt.info(n).shape) * 4, 0);
    assert.ok(lower > 1024 * 128 * 2, "the head alone is vocab x dim bf16");
    assert.ok(r.bytes_per_token >= lower && r.bytes_per_token <= upper, `bytes per token ${r.bytes_per_token} outside [${lower}, ${upper}]`);
  } finally {
    ckpt.close();
  }
  if (r.bandwidth_gbs !== null) {
    assert.ok(r.bandwidth_gbs > 0);
    assert.ok(r.fraction_of_ceiling! > 0 && Number.isFinite(r.fraction_of_ceiling!));
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
