import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeToFloat64 } from "../../src/formats/dtypes.js";
import { SafetensorsFile } from "../../src/formats/safetensors.js";
import type { Backend } from "../../src/kernels/backend.js";
import { Dsv4Model, type ForwardTrace } from "../../src/model/transformer.js";
import { testDataDir } from "../helpers/paths.js";

/** A golden directory: the checkpoint, its golden.json and the golden tensors of the official run. */
export class Golden {
  readonly dir: string;
  readonly json: Record<string, any>;
  private readonly file: SafetensorsFile;

  constructor(name: string) {
    this.dir = join(testDataDir, "golden", name);
    this.json = JSON.parse(readFileSync(join(this.dir, "golden.json"), "utf8"));
    this.file = SafetensorsFile.open(join(this.dir, "golden.safetensors"));
  }

  tensor(name: string): Float64Array {
    const info = this.file.get(name);
    return decodeToFloat64(info.dtype, this.file.read(name));
  }

  shape(name: string): number[] {
    return this.file.get(name).shape;
  }

  inputIds(): number[] {
    return Array.from(this.tensor("input_ids"));
  }
}

export interface DecodeRun {
  /** [T][vocab] */
  logits: Float64Array[];
  /** [T-1][vocab], when MTP ran */
  mtpLogits: Float64Array[];
  /** router choices per main layer: [layer][t] expert ids */
  router: Map<number, Int32Array[]>;
  /** indexer choices per CSA layer: [layer][t] row ids */
  indexer: Map<number, Int32Array[]>;
}

/**
 * The golden conventions (golden.json "conventions"): main logits by token-by-token decode,
 * or by prefill in chunks of `chunk` tokens; MTP fed the main model's final streams at i
 * with token i+1, on its own incremental state.
 */
export function runGolden(golden: Golden, backend: Backend, opts: { mtp?: boolean; chunk?: number; positions?: number } = {}): DecodeRun {
  const model = Dsv4Model.load(golden.dir, { backend });
  try {
    const ids = golden.inputIds().slice(0, opts.positions);
    const T = ids.length;
    const run: DecodeRun = { logits: [], mtpLogits: [], router: new Map(), indexer: new Map() };
    let base = 0;
    const trace: ForwardTrace = {
      router: (layer, row, experts) => {
        if (!run.router.has(layer)) run.router.set(layer, []);
        run.router.get(layer)![base + row] = experts.slice();
      },
      indexer: (layer, row, selected) => {
        if (!run.indexer.has(layer)) run.indexer.set(layer, []);
        run.indexer.get(layer)![base + row] = selected.slice();
      },
    };
    const seq = model.newSequence();
    const residual: Float64Array[] = [];
    const chunk = opts.chunk ?? 1;
    for (base = 0; base < T; base += chunk) {
      const tokens = ids.slice(base, base + chunk);
      const [out] = model.forward([{ seq, tokens }], { logits: "all", residual: "all", trace });
      out!.logits.forEach((l) => run.logits.push(Float64Array.from(l)));
      out!.residual.forEach((r) => residual.push(Float64Array.from(r)));
    }
    if (opts.mtp) {
      for (let i = 0; i + 1 < T; i++) {
        const [o] = model.mtpForward([{ seq, hidden: backend.fromValues(residual[i]!), token: ids[i + 1]! }]);
        run.mtpLogits.push(Float64Array.from(o!.logits!));
      }
    }
    return run;
  } finally {
    model.close();
  }
}

/** max |a - b| per position against a golden [T, V] tensor. */
export function maxAbsDiffPerPosition(run: Float64Array[], golden: Float64Array, V: number): number[] {
  return run.map((row, t) => {
    let d = 0;
    for (let v = 0; v < V; v++) d = Math.max(d, Math.abs(row[v]! - golden[t * V + v]!));
    return d;
  });
}

export function argmax(a: ArrayLike<number>, offset = 0, n = a.length - offset): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[offset + i]! > a[offset + best]!) best = i;
  return best;
}

/** Fraction of positions whose argmax agrees with the golden's. */
export function argmaxAgreement(run: Float64Array[], golden: Float64Array, V: number): number {
  let same = 0;
  run.forEach((row, t) => {
    if (argmax(row) === argmax(golden, t * V, V)) same++;
  });
  return same / run.length;
}
