import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import type { ConformReport } from "../../src/conform/lockstep.js";

/** The acceptance: no disagreement beyond 1e-5 of a boundary, aligned logits within 1e-4; the maxima go to the test log. */
export function assertConforms(t: TestContext, r: ConformReport): void {
  t.diagnostic(`${r.positions} positions, ${r.quantValues} values at ${r.quantPoints} points: ${r.flips} flips (${r.scaleFlips} scale), max distance ${r.maxFlipDistance.toExponential(2)}, max |logit diff| ${r.maxLogitDiff.toExponential(2)}, selections aligned ${r.selectionFlips.length}`);
  assert.equal(r.farDisagreements, 0, r.failures.join("; "));
  assert.ok(r.maxFlipDistance <= 1e-5, `flip ${r.maxFlipDistance} from its boundary`);
  assert.ok(r.maxLogitDiff <= 1e-4, `aligned logits differ by ${r.maxLogitDiff}`);
  assert.ok(r.ok, r.failures.join("; "));
  assert.ok(r.quantPoints > 0 && r.quantValues > 0, "nothing was compared");
}
