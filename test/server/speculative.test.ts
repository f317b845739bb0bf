import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import type { SpeculativeMode } from "../../src/engine/types.js";
import { writeTinyCheckpoint } from "../../src/tiny/tiny.js";
import { MODEL, postJson, serve } from "./helpers.js";

const root = mkdtempSync(join(tmpdir(), "dsv4-spec-server-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("speculative decoding through the server (tiny-0731, DSpark)", async () => {
  const dir = join(root, "tiny-0731");
  await writeTinyCheckpoint(dir, { preset: "tiny-0731", seed: 3 });
  const body = { model: MODEL, messages: [{ role: "user", content: "Count to twenty." }], max_tokens: 24, temperature: 0, thinking: { type: "disabled" } };

  /** The chat answer and /metrics text of a server whose engine speculates as `mode` says. */
  async function answer(mode: SpeculativeMode, drafts?: number): Promise<{ content: string; metrics: string }> {
    const engine = await Engine.load(dir, { prefixCache: { enabled: false }, speculative: { mode, drafts } });
    const server = await serve(engine, {}, () => engine.dispose());
    try {
      const r = await postJson(`${server.url}/chat/completions`, body);
      assert.equal(r.status, 200, r.text);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      return { content: r.json.choices[0].message.content, metrics };
    } finally {
      await server.close();
    }
  }

  test("greedy text with --speculative dspark equals --speculative off; /metrics counts drafts and accepted lengths", async () => {
    const off = await answer("off");
    const spec = await answer("dspark", 4);
    assert.equal(spec.content, off.content);
    assert.ok(off.content.length > 0);
    const value = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
    assert.equal(value(off.metrics, "dsv4_spec_draft_tokens_total"), 0);
    const drafted = value(spec.metrics, "dsv4_spec_draft_tokens_total");
    const accepted = value(spec.metrics, "dsv4_spec_accepted_tokens_total");
    assert.ok(drafted > 0 && accepted <= drafted, `${accepted}/${drafted}`);
    // A Prometheus histogram: cumulative buckets le="0" … le="5", +Inf, _sum (= accepted) and _count (= verify steps).
    assert.match(spec.metrics, /^# TYPE dsv4_spec_accepted_length histogram$/m);
    const buckets = [...spec.metrics.matchAll(/^dsv4_spec_accepted_length_bucket\{le="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])] as const);
    assert.deepEqual(buckets.map(([le]) => le), ["0", "1", "2", "3", "4", "5", "+Inf"]);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]![1] >= buckets[i - 1]![1]);
    assert.equal(value(spec.metrics, "dsv4_spec_accepted_length_sum"), accepted);
    assert.equal(value(spec.metrics, "dsv4_spec_accepted_length_count"), buckets[buckets.length - 1]![1]);
    const steps = buckets[buckets.length - 1]![1];
    assert.ok(steps <= drafted && drafted <= 4 * steps, `${drafted} drafts in ${steps} verify steps of at most 4`);
  });
});
