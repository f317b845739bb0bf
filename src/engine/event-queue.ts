/**
 * A one-consumer async queue: the engine loop pushes events without waiting,
 * the caller pulls them with `for await`. Ending with an error makes the
 * iterator throw it after the events already queued.
 *
 * Backpressure: push never waits, throws or drops (a finishing sequence's
 * usage and finish events must always get in), so the bound is kept by the
 * producer: once a consumer lets `highWater` events pile up the queue reports
 * `blocked`, and the engine stops stepping that sequence until the consumer
 * has pulled the backlog below `lowWater` (then `onDrain` tells it to resume).
 * The gap between the two marks makes a resumed sequence run a batch of steps
 * instead of one step per event read.
 */

export interface EventQueueOptions {
  /** Unread events at which the queue reports blocked (default 256). */
  highWater?: number;
  /** Unread events below which a blocked queue unblocks and calls onDrain (default highWater / 2). */
  lowWater?: number;
  /** Called when a blocked queue has been read back below lowWater. */
  onDrain?: () => void;
}

export const DEFAULT_HIGH_WATER = 256;

export class EventQueue<T> implements AsyncIterable<T> {
  // Unread events are items[head..]; the consumed prefix is dropped in bulk (see take).
  private items: T[] = [];
  private head = 0;
  private waiter: (() => void) | null = null;
  private ended = false;
  private error: unknown = undefined;
  private iterating = false;
  /** A consumer is iterating: only then can the queue block (a caller awaiting result() never reads events). */
  private attached = false;
  private since: number | null = null;
  readonly highWater: number;
  readonly lowWater: number;
  private readonly onDrain: (() => void) | undefined;

  constructor(options: EventQueueOptions = {}) {
    this.highWater = Math.max(1, options.highWater ?? DEFAULT_HIGH_WATER);
    this.lowWater = Math.min(this.highWater, Math.max(1, options.lowWater ?? Math.ceil(this.highWater / 2)));
    this.onDrain = options.onDrain;
  }

  /** Events pushed and not yet taken by the consumer. */
  get backlog(): number {
    return this.items.length - this.head;
  }

  /** The consumer has let highWater events pile up and not yet read them back below lowWater. */
  get blocked(): boolean {
    return this.since !== null;
  }

  /**
   * performance.now() when the consumer last made no progress while blocked: when the queue
   * became blocked, moved forward each time a blocked consumer takes an event, so that a slow
   * reader that still reads is paused but never counted as stuck. Null when not blocked.
   */
  get blockedSince(): number | null {
    return this.since;
  }

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    if (this.attached && this.since === null && this.backlog >= this.highWater) this.since = performance.now();
    this.wake();
  }

  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    // Nothing left to pause: the producer is done.
    this.since = null;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** The next unread event; the caller checked backlog > 0. */
  private take(): T {
    const item = this.items[this.head]!;
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      // Bounded memory for a long-lived backlog without an O(n) shift per event.
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (this.since !== null) {
      if (this.backlog < this.lowWater) {
        this.since = null;
        this.onDrain?.();
      } else {
        this.since = performance.now();
      }
    }
    return item;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.iterating) throw new Error("a generation's events can be iterated only once");
    this.iterating = true;
    this.attached = true;
    try {
      for (;;) {
        // One event at a time: what the consumer has not taken counts against the high-water mark.
        if (this.backlog > 0) {
          yield this.take();
          continue;
        }
        if (this.ended) {
          if (this.error !== undefined) throw this.error;
          return;
        }
        await new Promise<void>((resolve) => (this.waiter = resolve));
      }
    } finally {
      // A consumer that stopped iterating (break, return) is not a slow reader: never pause for it again.
      this.attached = false;
      if (this.since !== null) {
        this.since = null;
        this.onDrain?.();
      }
    }
  }
}
