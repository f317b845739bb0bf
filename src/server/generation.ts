/**
 * Starting a generation so that request errors still become HTTP statuses:
 * the engine validates and fit-checks before any work, so the first event
 * (or the error) arrives quickly. The response is committed (200 + stream
 * headers) only once that first event is in or a short wait has passed.
 */
import type { EngineApi, GenerateRequest, Generation, GenerationEvent } from "../engine/types.js";

export class StartedGeneration implements AsyncIterable<GenerationEvent> {
  private readonly iterator: AsyncIterator<GenerationEvent>;
  private first: Promise<IteratorResult<GenerationEvent>> | undefined;

  private constructor(
    readonly generation: Generation,
    private readonly observe?: (e: GenerationEvent) => void,
  ) {
    this.iterator = generation[Symbol.asyncIterator]();
    this.first = this.iterator.next();
    // Observed later by the iterator; this only keeps an early rejection from being "unhandled".
    this.first.catch(() => undefined);
  }

  /**
   * Starts `request` and waits up to `waitMs` for its first event. A request
   * error within that time is thrown here, before anything was sent. `observe` sees every event
   * as it is taken (the ledger's tab counts what was consumed, billing.ts).
   */
  static async start(engine: EngineApi, request: GenerateRequest, waitMs: number, observe?: (e: GenerationEvent) => void): Promise<StartedGeneration> {
    const started = new StartedGeneration(engine.generate(request), observe);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs);
    });
    try {
      await Promise.race([started.first, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return started;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<GenerationEvent> {
    if (this.first) {
      const r = await this.first;
      this.first = undefined;
      if (r.done) return;
      this.observe?.(r.value);
      yield r.value;
    }
    for (;;) {
      const r = await this.iterator.next();
      if (r.done) return;
      this.observe?.(r.value);
      yield r.value;
    }
  }

  /** Stops the engine's work (client gone, or the response failed). */
  cancel(): void {
    this.generation.cancel();
  }
}
