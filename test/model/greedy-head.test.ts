import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { Backend } from "../../src/kernels/backend.js";
import { NativeBackend } from "../../src/kernels/native/backend.js";
import { RefBackend } from "../../src/kernels/ref/index.js";
import { argmaxJs } from "../../src/engine/softmax.js";
import { Dsv4Model } from "../../src/model/transformer.js";
import { writeTinyCheckpoint } from "../../src/tiny/tiny.js";
import { nativeSkip } from "../kernels/native-available.js";

// ForwardRequest.greedy: positions that need only their greedy token get it instead of their
// logits, and it must be the token argmax over those logits (masked ids at -Infinity) gives,
// whichever way the head finds it (the native backend's greedyRows, or exact logits).
const root = mkdtempSync(join(tmpdir(), "dsv4-greedy-head-"));
after(() => rmSync(root, { recursive: true, force: true }));

function masked(row: ArrayLike<number>, ids: readonly number[]): number {
  const r = Float32Array.from(row);
  for (const id of ids) r[id] = -Infinity;
  return argmaxJs(r);
}

/**
 * Two sequences fed the same tokens, one asking for logits and one for greedy tokens, for a
 * prompt and then single-token and 4-token (verification-shaped) steps: the greedy tokens are
 * the argmaxes of the other's logits at every position.
 */
function sameAsLogits(model: Dsv4Model): number {
  const V = model.cfg.vocabSize;
  const withLogits = model.newSequence();
  const greedy = model.newSequence();
  let checked = 0;
  const steps = [[5, 9, 13, 200, 7], [11], [3, 4, 5, 6], [17], [100, 101, 102, 103], [8]];
  steps.forEach((tokens, s) => {
    const logits = model.forward([{ seq: withLogits, tokens, logits: "all" }])[0]!.logits;
    // Per position: nothing masked, the unmasked winner masked, or a few ids.
    const masks = tokens.map((_, i) => (i % 3 === 0 ? [] : i % 3 === 1 ? [masked(logits[i]!, [])] : [1, 2, (s * 31 + i) % V]));
    const out = model.forward([{ seq: greedy, tokens, logits: "all", greedy: masks }])[0]!;
    assert.equal(out.logits.length, 0, "greedy positions return no logits");
    assert.deepEqual(out.greedy, logits.map((row, i) => masked(row, masks[i]!)));
    checked += tokens.length;
  });
  return checked;
}

describe("greedy positions of a forward", async () => {
  const dir = join(root, "tiny");
  await writeTinyCheckpoint(dir, { preset: "tiny", seed: 5 });
  const skip = nativeSkip();

  test("native backend: the tokens argmax over the logits gives", { skip }, () => {
    const model = Dsv4Model.load(dir, { backend: new NativeBackend() });
    try {
      assert.ok(sameAsLogits(model) > 0);
    } finally {
      model.close();
    }
  });

  test("rows the backend leaves undecided come from their exact logits", { skip }, () => {
    const native = new NativeBackend();
    let asked = 0;
    // greedyRows that decides nothing: the model must fall back for every row.
    const backend = new Proxy(native, {
      get(target, prop, receiver) {
        if (prop === "greedyRows") return (_x: unknown, rows: number) => ((asked += rows), new Int32Array(rows).fill(-1));
        const v = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      },
    }) as Backend;
    const model = Dsv4Model.load(dir, { backend });
    try {
      sameAsLogits(model);
      assert.ok(asked > 0);
    } finally {
      model.close();
    }
  });

  test("a backend without greedyRows (ref): the same rule from the logits", () => {
    const model = Dsv4Model.load(dir, { backend: new RefBackend() });
    try {
      sameAsLogits(model);
    } finally {
      model.close();
    }
  });

  test("greedy masks must match the request's logits positions", () => {
    const model = Dsv4Model.load(dir, { backend: new RefBackend() });
    try {
      assert.throws(() => model.forward([{ seq: model.newSequence(), tokens: [1, 2, 3], logits: "last", greedy: [[], []] }]), /2 greedy masks for a request with 1 logits positions/);
    } finally {
      model.close();
    }
  });
});
