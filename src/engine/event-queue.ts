/**
 * A one-consumer async queue: the engine loop pushes events without waiting,
 * the caller pulls them with `for await`. Ending with an error makes the
 * iterator throw it after the events already queued.
 */
export class EventQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiter: (() => void) | null = null;
  private ended = false;
  private error: unknown = undefined;
  private iterating = false;

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    this.wake();
  }

  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.iterating) throw new Error("a generation's events can be iterated only once");
    this.iterating = true;
    for (;;) {
      if (this.items.length > 0) {
        // Take the whole batch: a step produces several events at once.
        const batch = this.items;
        this.items = [];
        for (const item of batch) yield item;
        continue;
      }
      if (this.ended) {
        if (this.error !== undefined) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}
