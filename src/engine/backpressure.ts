/**
 * Backpressure on the engine side (issue 11). A caller that stops reading a
 * generation's events blocks its EventQueue; the scheduler then skips that
 * sequence (it keeps its slot, state and reservation), so a slow reader slows
 * only itself. What is left for the loop is here: cancelling sequences whose
 * reader stays stuck past the timeout, and sleeping instead of spinning when
 * every running sequence waits for its reader. Kept out of engine.ts so its
 * few call sites are easy to carry over to another loop.
 */
import { EngineError } from "./errors.js";
import type { Sequence } from "./sequence.js";

export const DEFAULT_READER_TIMEOUT_MS = 60_000;

export class ReaderWatch {
  private timer: NodeJS.Timeout | undefined;

  /** `wake` restarts the engine loop; it must be safe to call while the loop runs. */
  constructor(readonly timeoutMs: number, private readonly wake: () => void) {}

  /** Fails (through `cancel`, which frees the slot) every running sequence whose reader has taken nothing for timeoutMs. */
  cancelStuck(running: readonly Sequence[], cancel: (seq: Sequence, error: EngineError) => void, now = performance.now()): void {
    for (const seq of [...running]) {
      const since = seq.readerBlockedSince;
      if (since !== null && now - since >= this.timeoutMs) cancel(seq, this.timeoutError(seq));
    }
  }

  /**
   * Call when a step found nothing to run (every running sequence waits for its reader) and
   * the loop stops: a reader catching up wakes it through the queue's onDrain, and this
   * timer wakes it when the first stuck reader is due to be cancelled.
   */
  park(running: readonly Sequence[]): void {
    this.dispose();
    let due = Infinity;
    for (const seq of running) {
      const since = seq.readerBlockedSince;
      if (since !== null) due = Math.min(due, since + this.timeoutMs);
    }
    if (!Number.isFinite(due)) return;
    // +1: timers have millisecond resolution; waking a hair early would only park again.
    const delay = Math.max(0, Math.ceil(due - performance.now())) + 1;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.wake();
    }, delay);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private timeoutError(seq: Sequence): EngineError {
    const seconds = Math.round(this.timeoutMs) / 1000;
    return new EngineError(
      "reader_timeout",
      `generation ${seq.id} was cancelled: its reader took none of the ${seq.events.backlog} events waiting for ${seconds} s ` +
        `(reader timeout: EngineOptions.readerTimeoutMs, dsv4 serve --reader-timeout); read the stream as it arrives, or raise the timeout`,
    );
  }
}
