/**
 * DSpark ring entries a sequence owes (spec §8b): the positions whose main-stream ring rows
 * have not been written yet, kept as their taps. Writing a position's ring rows costs a
 * main_proj product (a [dim, targets·dim] FP8 matrix) and a key projection per stage; a
 * sequence that is not drafting (speculation `auto` while drafts do not pay) would pay them
 * every step for rings it may never read. Owing them instead, a draft first writes them all in
 * one batched product: the rings are then exactly what writing every step would have left,
 * and since a draft reads only the newest `window` positions, only those are kept.
 */
import type { Backend, Vec } from "../kernels/backend.js";

export class DsparkOwed {
  /** Taps by ring slot (position mod window), [window, width]; allocated at the first debt. */
  private taps: Vec | null = null;
  /** Owed positions, ascending. */
  private positions: number[] = [];

  /** `width` = targets·dim: one position's taps. */
  constructor(private readonly backend: Backend, private readonly window: number, readonly width: number) {}

  get count(): number {
    return this.positions.length;
  }

  /** Held bytes: the whole buffer once anything was owed (it is kept for the next debt). */
  get bytes(): number {
    return this.taps ? this.taps.byteLength : 0;
  }

  /** Owes position `pos` (after every owed one) with its taps at `src[offset … offset + width)`. */
  add(pos: number, src: Vec, offset: number): void {
    const last = this.positions[this.positions.length - 1];
    if (last !== undefined && pos <= last) throw new Error(`DSpark owed rows: position ${pos} after ${last}`);
    this.taps ??= this.backend.alloc(this.window * this.width);
    this.taps.set(src.subarray(offset, offset + this.width), (pos % this.window) * this.width);
    this.positions.push(pos);
    // Positions a window behind the newest are never read again (and their slot is reused).
    const oldest = pos - this.window + 1;
    let drop = 0;
    while (this.positions[drop]! < oldest) drop++;
    if (drop > 0) this.positions = this.positions.slice(drop);
  }

  clear(): void {
    this.positions = [];
  }

  /** The owed positions, ascending, and their taps packed [count, width] in that order; owes nothing after. */
  take(): { positions: number[]; taps: Vec } {
    const positions = this.positions;
    const out = this.backend.alloc(positions.length * this.width);
    positions.forEach((p, i) => out.set(this.taps!.subarray((p % this.window) * this.width, (p % this.window + 1) * this.width), i * this.width));
    this.positions = [];
    return { positions, taps: out };
  }
}
