import type { Backend } from "../../src/kernels/backend.js";
import { Dsv4Model, type ForwardTrace } from "../../src/model/transformer.js";
import type { Golden } from "./conformance.js";

export interface DsparkRun {
  /** Main logits [T][vocab]. */
  logits: Float64Array[];
  /** Draft rows by start position t (row j = t − 1): [anchor, d_1 .. d_B]. */
  draftIds: Map<number, number[]>;
  /** [B][vocab] per start position, Markov bias included. */
  draftLogits: Map<number, Float64Array[]>;
  confidence: Map<number, number[]>;
  /** DSpark router choices per start position: [stage][block row] expert ids. */
  router: Map<number, Int32Array[][]>;
}

/**
 * The DSpark goldens' call pattern (golden.json "conventions"): the main model runs position t
 * (writing the DSpark rings), then drafts from t with the anchor input_ids[t+1] (teacher
 * forced); t = 0 only fills the rings. With `prefill` P the first P positions go through one
 * forward and drafting starts at P − 1 (spec §8b: equivalent to the official pattern).
 */
export function runDsparkGolden(golden: Golden, backend: Backend, opts: { prefill?: number; positions?: number } = {}): DsparkRun {
  const model = Dsv4Model.load(golden.dir, { backend });
  try {
    const ids = golden.inputIds().slice(0, opts.positions);
    const T = ids.length;
    const stages = model.cfg.dspark!.stages;
    const firstStage = model.cfg.numLayers;
    const run: DsparkRun = { logits: [], draftIds: new Map(), draftLogits: new Map(), confidence: new Map(), router: new Map() };
    let routes: Int32Array[][] = [];
    const trace: ForwardTrace = {
      router: (layer, row, experts) => {
        if (layer >= firstStage) (routes[layer - firstStage] ??= [])[row] = experts.slice();
      },
    };
    const seq = model.newSequence();
    const draft = (t: number, mainX: Float64Array | Float32Array) => {
      routes = Array.from({ length: stages }, () => []);
      const [d] = model.dsparkDraft([{ seq, mainX, anchor: ids[t + 1]! }], { trace });
      run.draftIds.set(t, [ids[t + 1]!, ...d!.tokens]);
      run.draftLogits.set(t, d!.logits.map((l) => Float64Array.from(l)));
      run.confidence.set(t, d!.confidence);
      run.router.set(t, routes);
    };
    let t = 0;
    if (opts.prefill) {
      const [out] = model.forward([{ seq, tokens: ids.slice(0, opts.prefill), logits: "all", dspark: true, mainXLast: 1 }]);
      out!.logits.forEach((l) => run.logits.push(Float64Array.from(l)));
      t = opts.prefill;
      if (t <= T - 2) draft(t - 1, out!.mainX[0]!);
    }
    for (; t < T; t++) {
      const [out] = model.forward([{ seq, tokens: [ids[t]!], logits: "all", dspark: true, mainXLast: 1 }]);
      run.logits.push(Float64Array.from(out!.logits[0]!));
      if (t >= 1 && t <= T - 2) draft(t, out!.mainX[0]!);
    }
    return run;
  } finally {
    model.close();
  }
}

/** The largest |a − golden| over the rows of a [rows, width] golden tensor. */
export function maxAbsDiff(rows: ArrayLike<number>[], golden: Float64Array, width: number, firstRow = 0): number {
  let d = 0;
  rows.forEach((row, i) => {
    for (let v = 0; v < width; v++) d = Math.max(d, Math.abs(row[v]! - golden[(firstRow + i) * width + v]!));
  });
  return d;
}
