import assert from "node:assert/strict";
import { test } from "node:test";
import { ModelHost } from "../../src/engine/runner/model-host.js";
import { createBackend } from "../../src/kernels/index.js";
import type { SequenceState } from "../../src/model/state.js";
import { Dsv4Model, type MtpRequest } from "../../src/model/transformer.js";
import { checkpoint, promptIds } from "./helpers.js";

test("an MTP draft whose chained step throws puts its scratch ring slots back", async () => {
  const model = Dsv4Model.load(await checkpoint("micro"), { backend: createBackend("ref") });
  const host = new ModelHost(model);
  host.create(1);
  const ids = promptIds(12, 5);
  const [out] = host.step([{ id: 1, tokens: ids, logits: "last", residualLast: 3 }]);
  const seq = (host as unknown as { states: Map<number, SequenceState> }).states.get(1)!;
  const ring = seq.mtp[0]!.window;
  const before = ring.slice();
  // The first pass writes the entries' real positions 9-11; chained drafts go to 12 and on,
  // scratch. The second MTP call (the first chained draft) writes its slot, then fails.
  const mtpForward = model.mtpForward.bind(model);
  let calls = 0;
  model.mtpForward = (requests: readonly MtpRequest[]) => {
    const r = mtpForward(requests);
    if (++calls === 2) throw new Error("injected failure");
    return r;
  };
  const entries = out!.residual.map((hidden, k) => ({ hidden, token: ids[10 + k] ?? 7 }));
  assert.throws(() => host.draft([{ kind: "mtp", id: 1, mtpLength: 9, entries, count: 3, wantLogits: false }]), /injected failure/);
  assert.equal(calls, 2);
  assert.equal(seq.mtpLength, 12);
  const width = ring.length / model.cfg.window;
  const slot = (pos: number) => ring.subarray((pos % model.cfg.window) * width, (pos % model.cfg.window + 1) * width);
  const slotBefore = (pos: number) => before.subarray((pos % model.cfg.window) * width, (pos % model.cfg.window + 1) * width);
  assert.deepEqual(slot(12), slotBefore(12), "the scratch position's ring slot was not put back");
  assert.notDeepEqual(slot(11), slotBefore(11), "the entries' real positions stay written");
});
