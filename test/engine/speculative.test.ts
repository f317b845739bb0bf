import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { checkpoint, promptIds } from "./helpers.js";

describe("speculative decoding (MTP)", async () => {
  const dir = await checkpoint("micro");
  const prompts = [promptIds(30, 1), promptIds(7, 2), promptIds(50, 3)];
  const N = 16;

  const plainTokens = async () => {
    const e = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: { enabled: false } });
    try {
      return await Promise.all(prompts.map((p) => e.generate({ prompt_tokens: p, max_tokens: N, temperature: 0 }).result().then((r) => r.tokens)));
    } finally {
      await e.dispose();
    }
  };

  test("speculative greedy equals plain greedy (MTP drafts, batched)", async () => {
    const plain = await plainTokens();
    const e = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: { enabled: true, warmupTokens: 4 } });
    try {
      const rs = await Promise.all(prompts.map((p) => e.generate({ prompt_tokens: p, max_tokens: N, temperature: 0 }).result()));
      rs.forEach((r, i) => assert.deepEqual(r.tokens, plain[i], `prompt ${i}`));
      assert.ok(rs.every((r) => r.stats.speculative.drafted > 0));
    } finally {
      await e.dispose();
    }
  });

  test("accepted and rejected drafts both give plain greedy output (oracle drafter)", async () => {
    const plain = await plainTokens();
    // Propose the true next token except at every third position: exercises the accept path,
    // the bonus token, and rollback of rejected drafts.
    const byPrefix = new Map<string, number>();
    for (const t of plain) for (let i = 0; i < t.length; i++) byPrefix.set(t.slice(0, i).join(","), t[i]!);
    const e = await Engine.load(dir, {
      prefixCache: { enabled: false },
      speculative: {
        enabled: true,
        draftOverride: ({ generated, proposed }) => {
          const truth = byPrefix.get(generated.join(","));
          return truth !== undefined && generated.length % 3 !== 0 ? truth : (proposed + 1) % 1024;
        },
      },
    });
    try {
      const rs = await Promise.all(prompts.map((p) => e.generate({ prompt_tokens: p, max_tokens: N, temperature: 0 }).result()));
      rs.forEach((r, i) => assert.deepEqual(r.tokens, plain[i], `prompt ${i}`));
      const drafted = rs.reduce((n, r) => n + r.stats.speculative.drafted, 0);
      const accepted = rs.reduce((n, r) => n + r.stats.speculative.accepted, 0);
      assert.ok(accepted > 0 && accepted < drafted, `${accepted}/${drafted} accepted`);
      // Each accepted draft saves a step.
      assert.ok(e.metrics().steps_total < prompts.length * N);
    } finally {
      await e.dispose();
    }
  });

  test("sampled speculative output is reproducible with a seed", async () => {
    const e = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: { enabled: true } });
    try {
      const run = () => e.generate({ prompt_tokens: prompts[0]!, max_tokens: 10, temperature: 0.8, top_p: 0.95, seed: 42 }).result();
      const a = await run();
      const b = await run();
      assert.deepEqual(a.tokens, b.tokens);
      assert.equal(a.tokens.length, 10);
    } finally {
      await e.dispose();
    }
  });
});
