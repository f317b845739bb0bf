/**
 * The runner on the calling thread (`EngineOptions.runner: "inline"`): the same
 * protocol with no thread in between, for debugging and profiling. A step then
 * blocks the event loop for its whole duration.
 */
import type { Vec } from "../../kernels/backend.js";
import type { StateBlock } from "../../model/state-blocks.js";
import type { ModelHost } from "./model-host.js";
import type { DraftRequest, Runner, RunnerInfo, StepOutput, StepRequest } from "./protocol.js";

export class InlineRunner implements Runner {
  readonly info: RunnerInfo;
  // Mirrors the worker: an error in a call without a reply fails the next call that has one.
  private deferred: Error | null = null;

  constructor(private readonly host: ModelHost) {
    this.info = host.info;
  }

  private later(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.deferred ??= err as Error;
    }
  }

  private now<T>(f: () => T): Promise<T> {
    try {
      if (this.deferred) {
        const err = this.deferred;
        this.deferred = null;
        throw err;
      }
      return Promise.resolve(f());
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  create(id: number): void {
    this.later(() => this.host.create(id));
  }
  free(id: number): void {
    this.later(() => this.host.free(id));
  }
  restore(id: number, chain: StateBlock[]): void {
    this.later(() => this.host.restore(id, chain));
  }
  dropTail(id: number): void {
    this.later(() => this.host.dropTail(id));
  }
  step(requests: StepRequest[]): Promise<StepOutput[]> {
    return this.now(() => this.host.step(requests));
  }
  draft(requests: DraftRequest[]): Promise<Vec[]> {
    return this.now(() => this.host.draft(requests));
  }
  async close(): Promise<void> {
    this.host.close();
  }
}
