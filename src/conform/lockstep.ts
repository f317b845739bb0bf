import type { Backend, Vec } from "../kernels/backend.js";
import { RefBackend } from "../kernels/ref/index.js";
import type { ForwardTrace } from "../model/transformer.js";
import { Dsv4Model } from "../model/transformer.js";
import { AligningBackend, DecisionTape, RecordingBackend, type QuantDisagreement } from "./lockstep-backends.js";

export interface ConformOptions {
  /** Checkpoint directory (config.json + safetensors). */
  modelDir: string;
  tokens: readonly number[];
  /** The backend under test. */
  backend: Backend;
  /** The float64 reference (default: a RefBackend, which maps large matrices instead of copying them). */
  reference?: Backend;
  /** Run the first this-many tokens as one prefill chunk, then decode the rest one position at a time (default 0). */
  prefill?: number;
  /** A disagreement farther than this (relative) from a rounding boundary fails (default 1e-5). */
  maxDistance?: number;
  /** Aligned logits differing by more than this (absolute) fail (default 1e-4). */
  tolerance?: number;
  /** Router or indexer selections that differed (and were aligned) beyond this count fail (default 0). */
  maxSelectionFlips?: number;
  /** Disagreements kept in the report's log, first come first kept (default 50). Counts cover all. */
  keepLog?: number;
  /** Called after every step (a prefill chunk or one decoded position). */
  onStep?: (s: StepReport) => void;
}

/** One rounding disagreement with where it happened. */
export interface FlipSite extends QuantDisagreement {
  /** Position of the step's first token (decode: the position itself). */
  position: number;
  /** Layer index parsed from the site's name (`layers.N.…`), or null (head, embedding, drafter). */
  layer: number | null;
}

export interface SelectionFlip {
  kind: "router" | "indexer";
  layer: number;
  position: number;
  reference: number[];
  backend: number[];
}

export interface StepReport {
  position: number;
  tokens: number;
  flips: number;
  maxLogitDiff: number;
  /** Seconds the step took on the reference and on the backend (lockstep work included), and the reference's CPU seconds. */
  seconds: { reference: number; backend: number; referenceCpu: number };
}

export interface ConformReport {
  model: string;
  backend: string;
  positions: number;
  prefill: number;
  /** Quantisation points compared, and values compared at them. */
  quantPoints: number;
  quantValues: number;
  /** Disagreeing values: rounding flips (scale flips' blocks included). */
  flips: number;
  /** Blocks whose power-of-two scale itself flipped. */
  scaleFlips: number;
  /** Disagreements farther than maxDistance from a rounding boundary: kernel errors, not flips. */
  farDisagreements: number;
  maxFlipDistance: number;
  worst: FlipSite | null;
  selectionFlips: SelectionFlip[];
  maxLogitDiff: number;
  maxLogitDiffPosition: number;
  /** Largest |logit| of the reference, for scale. */
  maxAbsLogit: number;
  log: FlipSite[];
  seconds: { reference: number; backend: number };
  limits: { maxDistance: number; tolerance: number; maxSelectionFlips: number };
  ok: boolean;
  failures: string[];
}

const layerOf = (site: string): number | null => {
  const m = /^layers\.(\d+)\./.exec(site);
  return m ? Number(m[1]) : null;
};

/**
 * Runs the float64 reference and `backend` in lockstep over `tokens` (spec §3 quantisation
 * points): each step runs on the reference first, recording every rounding decision and
 * selection; then on the backend, which is compared with and aligned to those decisions at
 * every quantisation point; then the two steps' logits are compared.
 */
export function runConform(opts: ConformOptions): ConformReport {
  const maxDistance = opts.maxDistance ?? 1e-5;
  const tolerance = opts.tolerance ?? 1e-4;
  const maxSelectionFlips = opts.maxSelectionFlips ?? 0;
  const keepLog = opts.keepLog ?? 50;
  const prefill = Math.min(opts.prefill ?? 0, opts.tokens.length);
  const tape = new DecisionTape();
  const report: ConformReport = {
    model: opts.modelDir, backend: opts.backend.name, positions: opts.tokens.length, prefill,
    quantPoints: 0, quantValues: 0, flips: 0, scaleFlips: 0, farDisagreements: 0, maxFlipDistance: 0, worst: null,
    selectionFlips: [], maxLogitDiff: 0, maxLogitDiffPosition: -1, maxAbsLogit: 0, log: [],
    seconds: { reference: 0, backend: 0 }, limits: { maxDistance, tolerance, maxSelectionFlips }, ok: true, failures: [],
  };
  let position = 0;
  let stepFlips = 0;
  const scaleBlocks = new Set<string>();
  const onDisagreement = (d: QuantDisagreement): void => {
    const site: FlipSite = { ...d, position, layer: layerOf(d.site) };
    report.flips++;
    stepFlips++;
    if (d.scaleFlip) {
      const key = `${tape.points}:${d.row}:${d.block}`;
      if (!scaleBlocks.has(key)) {
        scaleBlocks.add(key);
        report.scaleFlips++;
      }
    }
    if (d.distance > maxDistance) report.farDisagreements++;
    if (d.distance > report.maxFlipDistance || !report.worst) {
      report.maxFlipDistance = Math.max(report.maxFlipDistance, d.distance);
      report.worst = site;
    }
    if (report.log.length < keepLog) report.log.push(site);
  };

  const refBackend = new RecordingBackend(opts.reference ?? new RefBackend(), tape);
  const testBackend = new AligningBackend(opts.backend, tape, onDisagreement);
  const ref = Dsv4Model.load(opts.modelDir, { backend: refBackend });
  let test: Dsv4Model | undefined;
  try {
    test = Dsv4Model.load(opts.modelDir, { backend: testBackend });
    const bad = opts.tokens.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= ref.cfg.vocabSize);
    if (bad >= 0) throw new RangeError(`token ${opts.tokens[bad]} at index ${bad} is outside the model's vocabulary [0, ${ref.cfg.vocabSize})`);
    const refSeq = ref.newSequence();
    const testSeq = test.newSequence();
    const selections = new Map<string, { experts: Int32Array; weights?: Float64Array }>();
    const recordTrace: ForwardTrace = {
      router: (layer, row, experts, weights) => void selections.set(`router:${layer}:${row}`, { experts: experts.slice(), weights: weights.slice() }),
      indexer: (layer, row, selected) => void selections.set(`indexer:${layer}:${row}`, { experts: selected.slice() }),
    };
    // The backend's selections are moved to the reference's in place: the model uses the
    // arrays only after the trace has seen them.
    const align = (kind: "router" | "indexer", layer: number, row: number, chosen: Int32Array, weights?: Float64Array): void => {
      const want = selections.get(`${kind}:${layer}:${row}`);
      if (!want || want.experts.length !== chosen.length) throw new Error(`lockstep lost: ${kind} of layer ${layer} row ${row} has no matching reference selection`);
      if (sameSet(want.experts, chosen)) return;
      report.selectionFlips.push({ kind, layer, position: position + row, reference: Array.from(want.experts), backend: Array.from(chosen) });
      chosen.set(want.experts);
      if (weights && want.weights) weights.set(want.weights);
    };
    const alignTrace: ForwardTrace = {
      router: (layer, row, experts, weights) => align("router", layer, row, experts, weights),
      indexer: (layer, row, selected) => align("indexer", layer, row, selected),
    };
    const steps: Array<[number, number]> = [];
    if (prefill > 0) steps.push([0, prefill]);
    for (let p = prefill; p < opts.tokens.length; p++) steps.push([p, p + 1]);
    for (const [start, end] of steps) {
      position = start;
      stepFlips = 0;
      const tokens = opts.tokens.slice(start, end);
      tape.clear();
      selections.clear();
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const [r] = ref.forward([{ seq: refSeq, tokens }], { logits: "all", trace: recordTrace });
      const cpu = process.cpuUsage(cpu0);
      const t1 = performance.now();
      const [b] = test.forward([{ seq: testSeq, tokens }], { logits: "all", trace: alignTrace });
      const seconds = { reference: (t1 - t0) / 1000, backend: (performance.now() - t1) / 1000, referenceCpu: (cpu.user + cpu.system) / 1e6 };
      report.seconds.reference += seconds.reference;
      report.seconds.backend += seconds.backend;
      if (tape.remaining() > 0) throw new Error(`lockstep lost at position ${start}: the backend skipped ${tape.remaining()} quantisation points the reference reached`);
      let stepMax = 0;
      r!.logits.forEach((lr, i) => {
        const d = maxAbsDiff(lr, b!.logits[i]!);
        report.maxAbsLogit = Math.max(report.maxAbsLogit, maxAbs(lr));
        stepMax = Math.max(stepMax, d);
        if (d > report.maxLogitDiff || report.maxLogitDiffPosition < 0) {
          report.maxLogitDiff = Math.max(report.maxLogitDiff, d);
          report.maxLogitDiffPosition = start + i;
        }
      });
      opts.onStep?.({ position: start, tokens: tokens.length, flips: stepFlips, maxLogitDiff: stepMax, seconds });
    }
  } finally {
    test?.close();
    ref.close();
  }
  report.quantPoints = tape.points;
  report.quantValues = tape.values;
  judge(report);
  return report;
}

function judge(report: ConformReport): void {
  const { maxDistance, tolerance, maxSelectionFlips } = report.limits;
  if (report.farDisagreements > 0) {
    const w = report.worst!;
    report.failures.push(`${report.farDisagreements} rounding disagreement(s) farther than ${maxDistance} from a rounding boundary (worst ${w.distance.toExponential(2)} at ${describeSite(w)}): the backend computes a different value there, not a float rounding flip`);
  }
  if (!(report.maxLogitDiff <= tolerance)) {
    report.failures.push(`aligned logits differ by ${report.maxLogitDiff.toExponential(2)} at position ${report.maxLogitDiffPosition}, more than the tolerance ${tolerance}`);
  }
  if (report.selectionFlips.length > maxSelectionFlips) {
    const s = report.selectionFlips[0]!;
    report.failures.push(`${report.selectionFlips.length} router/indexer selection(s) differed (first: ${s.kind} of layer ${s.layer} at position ${s.position}), more than the ${maxSelectionFlips} allowed (--max-selection-flips)`);
  }
  report.ok = report.failures.length === 0;
}

export function describeSite(s: FlipSite): string {
  return `position ${s.position}, ${s.layer === null ? "" : `layer ${s.layer}, `}${s.op} ${s.op === "act-quant" ? "into" : "after"} ${s.site}, row ${s.row}, element ${s.element}`;
}

function sameSet(a: Int32Array, b: Int32Array): boolean {
  const s = new Set(a);
  return b.every((v) => s.has(v));
}

function maxAbsDiff(a: Vec, b: Vec): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = d; // NaN propagates as a failure
  }
  return m;
}

function maxAbs(a: Vec): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}
