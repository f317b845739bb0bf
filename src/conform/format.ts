import { describeSite, type ConformReport } from "./lockstep.js";

const e = (v: number): string => (Number.isFinite(v) ? v.toExponential(2) : String(v));

/** The report as lines for a terminal: the verdict, the figures, and the logged disagreements. */
export function formatConformReport(r: ConformReport, maxLines = 20): string {
  const lines = [
    `conform ${r.backend} vs ref on ${r.model}: ${r.positions} positions${r.prefill > 0 ? ` (first ${r.prefill} as one prefill chunk)` : ""}`,
    `  quantisation points compared: ${r.quantPoints} (${r.quantValues} values)`,
    `  rounding flips: ${r.flips} values (${r.scaleFlips} block-scale flips), largest distance from a rounding boundary ${e(r.maxFlipDistance)} (limit ${r.limits.maxDistance})`,
    `  disagreements farther than the limit: ${r.farDisagreements}`,
    `  router/indexer selections aligned: ${r.selectionFlips.length} (limit ${r.limits.maxSelectionFlips})`,
    `  aligned logits: max |diff| ${e(r.maxLogitDiff)} at position ${r.maxLogitDiffPosition} (limit ${r.limits.tolerance}; largest |logit| ${r.maxAbsLogit.toFixed(3)})`,
    `  time: reference ${r.seconds.reference.toFixed(2)} s, ${r.backend} ${r.seconds.backend.toFixed(2)} s`,
  ];
  for (const s of r.log.slice(0, maxLines)) {
    lines.push(`  flip: ${describeSite(s)}: input ${s.input} -> ${s.backend} (reference ${s.reference}), distance ${e(s.distance)}${s.scaleFlip ? " [block scale flipped]" : ""}`);
  }
  if (r.flips > Math.min(r.log.length, maxLines)) lines.push(`  … ${r.flips - Math.min(r.log.length, maxLines)} more flips (--json lists the first ${r.log.length})`);
  lines.push(r.ok ? "PASS" : `FAIL: ${r.failures.join("; ")}`);
  return lines.join("\n");
}
