import type { MatrixHandle, Vec } from "../kernels/backend.js";
import { compareDecisions, referenceDecisions, type Disagreement, type Grid } from "./decisions.js";
import { DelegatingBackend } from "./delegating-backend.js";

/** Activation quantisation block along the input dimension (spec §3.5). */
const ACT_BLOCK = 128;

export type QuantOp = "act-quant" | "fp8-sim" | "fp4-sim";

/** One quantisation point as the reference decided it. */
export interface QuantEvent {
  op: QuantOp;
  /** The matrix quantised for (act-quant) or the last matrix applied before the simulation. */
  site: string;
  /** Rows of `width` values, each row quantised in blocks of `block` from its start. */
  rows: number;
  width: number;
  block: number;
  /** The reference's dequantised decisions [rows, width] and block scales [rows, ceil(width/block)]. */
  values: Float64Array;
  scales: Float64Array;
}

/** What the backend under test decided differently at one quantisation point. */
export interface QuantDisagreement extends Disagreement {
  op: QuantOp;
  site: string;
  row: number;
}

/** The sequence of quantisation decisions of one model step, written by the reference, read back in order. */
export class DecisionTape {
  private events: QuantEvent[] = [];
  private cursor = 0;
  /** Quantisation points and values the backend has been compared on, over all steps. */
  points = 0;
  values = 0;

  push(e: QuantEvent): void {
    this.events.push(e);
  }

  /** Starts a new step: the reference records, then the backend replays. */
  clear(): void {
    this.events = [];
    this.cursor = 0;
  }

  rewind(): void {
    this.cursor = 0;
  }

  next(op: QuantOp, site: string): QuantEvent {
    const e = this.events[this.cursor];
    if (!e || e.op !== op || e.site !== site) {
      const want = e ? `${e.op} at ${e.site}` : "nothing more";
      throw new LockstepLostError(`the backend reached ${op} at ${site} (quantisation point ${this.cursor}) where the reference had ${want}`);
    }
    this.cursor++;
    this.points++;
    this.values += e.rows * e.width;
    return e;
  }

  /** Points the reference recorded that the backend never reached. */
  remaining(): number {
    return this.events.length - this.cursor;
  }
}

/** The two runs took different paths through the model (a selection differed that was not aligned). */
export class LockstepLostError extends Error {
  constructor(message: string) {
    super(`lockstep lost: ${message}`);
    this.name = "LockstepLostError";
  }
}

const GRID: Record<"fp8-sim" | "fp4-sim", Grid> = { "fp8-sim": "e4m3", "fp4-sim": "e2m1" };

/** Wraps the reference backend: runs it unchanged and records every rounding decision on the tape. */
export class RecordingBackend extends DelegatingBackend {
  private lastMatrix = "(start)";

  constructor(inner: DelegatingBackend["inner"], private readonly tape: DecisionTape) {
    super(inner);
  }

  override linear(x: Vec, rows: number, w: MatrixHandle, actQuant: boolean, out?: Vec): Vec {
    this.lastMatrix = w.name;
    if (actQuant) this.tape.push({ op: "act-quant", site: w.name, ...rowDecisions(x, rows, w.inFeatures) });
    return this.inner.linear(x, rows, w, actQuant, out);
  }

  override fp8Simulate(x: Vec, start: number, length: number, block: number): void {
    this.record("fp8-sim", x, start, length, block, () => this.inner.fp8Simulate(x, start, length, block));
  }

  override fp4Simulate(x: Vec, start: number, length: number, block: number): void {
    this.record("fp4-sim", x, start, length, block, () => this.inner.fp4Simulate(x, start, length, block));
  }

  private record(op: "fp8-sim" | "fp4-sim", x: Vec, start: number, length: number, block: number, run: () => void): void {
    const { scales } = referenceDecisions(GRID[op], x, start, length, block);
    run();
    // The reference's own output is the decision (the scales above are the same rule's).
    this.tape.push({ op, site: this.lastMatrix, rows: 1, width: length, block, values: Float64Array.from(x.subarray(start, start + length)), scales });
  }
}

function rowDecisions(x: Vec, rows: number, K: number): Pick<QuantEvent, "rows" | "width" | "block" | "values" | "scales"> {
  const nb = Math.ceil(K / ACT_BLOCK);
  const values = new Float64Array(rows * K);
  const scales = new Float64Array(rows * nb);
  for (let r = 0; r < rows; r++) {
    const d = referenceDecisions("e4m3", x, r * K, K, ACT_BLOCK);
    values.set(d.values, r * K);
    scales.set(d.scales, r * nb);
  }
  return { rows, width: K, block: ACT_BLOCK, values, scales };
}

/**
 * Wraps the backend under test: at every quantisation point it lets the backend decide,
 * compares with the reference's decision from the tape, reports each disagreement, then
 * moves the backend's values to the reference's decision so both runs stay in lockstep.
 *
 * Activation quantisation is fused into the backend's `linear`; here it runs unfused, as
 * the backend's own `fp8Simulate` with block 128 on each row (the native addon's fused
 * quantiser is the same function), and the aligned values go into `linear` with actQuant,
 * which re-quantises grid values to themselves.
 */
export class AligningBackend extends DelegatingBackend {
  private lastMatrix = "(start)";

  constructor(inner: DelegatingBackend["inner"], private readonly tape: DecisionTape, private readonly report: (d: QuantDisagreement) => void) {
    super(inner);
  }

  override linear(x: Vec, rows: number, w: MatrixHandle, actQuant: boolean, out?: Vec): Vec {
    this.lastMatrix = w.name;
    if (!actQuant) return this.inner.linear(x, rows, w, actQuant, out);
    const ev = this.tape.next("act-quant", w.name);
    const K = w.inFeatures;
    const xq = this.inner.alloc(rows * K);
    xq.set(x.subarray(0, rows * K));
    for (let r = 0; r < rows; r++) this.inner.fp8Simulate(xq, r * K, K, ACT_BLOCK);
    this.compare(ev, "e4m3", x, 0, xq, 0);
    xq.set(ev.values);
    return this.inner.linear(xq, rows, w, true, out);
  }

  override fp8Simulate(x: Vec, start: number, length: number, block: number): void {
    this.simulate("fp8-sim", x, start, length, block, () => this.inner.fp8Simulate(x, start, length, block));
  }

  override fp4Simulate(x: Vec, start: number, length: number, block: number): void {
    this.simulate("fp4-sim", x, start, length, block, () => this.inner.fp4Simulate(x, start, length, block));
  }

  private simulate(op: "fp8-sim" | "fp4-sim", x: Vec, start: number, length: number, block: number, run: () => void): void {
    const ev = this.tape.next(op, this.lastMatrix);
    if (ev.width !== length || ev.block !== block) throw new LockstepLostError(`${op} at ${ev.site}: the backend quantises ${length} values in blocks of ${block}, the reference ${ev.width} in blocks of ${ev.block}`);
    const input = Float64Array.from(x.subarray(start, start + length));
    run();
    this.compare(ev, GRID[op], input, 0, x, start);
    x.set(ev.values, start);
  }

  /** Compares row by row: `input` holds the backend's values before rounding, `decided` after. */
  private compare(ev: QuantEvent, grid: Grid, input: Vec, inputStart: number, decided: Vec, decidedStart: number): void {
    const nb = Math.ceil(ev.width / ev.block);
    for (let r = 0; r < ev.rows; r++) {
      const o = r * ev.width;
      const found = compareDecisions(
        grid, ev.block, this.inner.precision,
        input.subarray(inputStart + o, inputStart + o + ev.width), decided.subarray(decidedStart + o, decidedStart + o + ev.width),
        ev.values.subarray(o, o + ev.width), ev.scales.subarray(r * nb, (r + 1) * nb), ev.width,
      );
      for (const d of found) this.report({ ...d, op: ev.op, site: ev.site, row: r });
    }
  }
}
